"""HTTP/1.1 health checks (h11 over trio sockets), as Envoy's HTTP health checker: one
request per check on a kept connection, judged by status, `x-envoy-*` headers and body."""

from __future__ import annotations

import h11
import trio

from .probe import NETWORK_ERRORS, Link, connect_for_check, describe_error, payload_matches
from .spec import ClusterHealthCheck, HeaderToAdd, HttpCheck
from .state import Failure, Outcome

USER_AGENT = "Envoy/HC"
DEGRADED_HEADER = b"x-envoy-degraded"
IMMEDIATE_FAIL_HEADER = b"x-envoy-immediate-health-check-fail"
_READ_SIZE = 65536


def in_ranges(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(start <= status < end for start, end in ranges)


def request_headers(spec: ClusterHealthCheck, http: HttpCheck) -> list[tuple[str, str]]:
    """Envoy's check request headers: Host (the configured `host`, else the cluster name) and
    `user-agent: Envoy/HC`, then `request_headers_to_remove` and `request_headers_to_add`
    applied (removals first, as Envoy's header parser)."""
    headers = [("host", http.host or spec.cluster), ("user-agent", USER_AGENT)]
    removed = set(http.headers_to_remove)
    headers = [(k, v) for k, v in headers if k not in removed]
    for add in http.headers_to_add:
        headers = with_header(headers, add)
    return headers


def with_header(headers: list[tuple[str, str]], add: HeaderToAdd) -> list[tuple[str, str]]:
    """`headers` with one `request_headers_to_add` entry applied per its `append_action`."""
    if not add.value and not add.keep_empty_value:
        return headers
    present = any(k == add.key for k, _ in headers)
    if add.append_action == "add_if_absent" and present:
        return headers
    if add.append_action == "overwrite_if_exists" and not present:
        return headers
    if add.append_action in ("overwrite_if_exists_or_add", "overwrite_if_exists"):
        headers = [(k, v) for k, v in headers if k != add.key]
    return [*headers, (add.key, add.value)]


class HttpProbe:
    """Checks one host over HTTP/1.1; the connection is kept between checks when
    `reuse_connection` is set and the host keeps it open."""

    def __init__(self, spec: ClusterHealthCheck, http: HttpCheck, address: str, port: int) -> None:
        self._spec = spec
        self._http = http
        self._address = address
        self._port = port
        self._request = h11.Request(
            method=http.method, target=http.path, headers=request_headers(spec, http)
        )
        self._link: Link | None = None
        self._conn = h11.Connection(h11.CLIENT)

    async def check(self) -> Outcome:
        if self._link is not None and not self._link.still_open():
            # The host closed the kept connection while it was idle: Envoy just drops it
            # (no failure) and the next check connects again.
            self.close()
        if self._link is None:
            link = await connect_for_check(
                self._address, self._port, self._spec.connect_timeout_ms / 1000
            )
            if isinstance(link, Outcome):
                return link
            self._link = link
            self._conn = h11.Connection(h11.CLIENT)
        stream, conn = self._link.stream, self._conn
        try:
            data = conn.send(self._request) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(data)
            response, body = await self._read_response(stream, conn)
        except (*NETWORK_ERRORS, h11.ProtocolError) as exc:
            self.close()
            return Outcome.fail(Failure.NETWORK, describe_error(exc))
        outcome = self._judge(response, body)
        if (
            not self._spec.reuse_connection
            or conn.our_state is not h11.DONE
            or conn.their_state is not h11.DONE
        ):
            self.close()
        else:
            conn.start_next_cycle()
        return outcome

    async def _read_response(
        self, stream: trio.SocketStream, conn: h11.Connection
    ) -> tuple[h11.Response, bytes]:
        response: h11.Response | None = None
        body = bytearray()
        limit = self._http.response_buffer_size
        keep_body = bool(self._http.receive)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                # b"" (the host closed) ends a close-delimited body, or makes h11 raise.
                conn.receive_data(await stream.receive_some(_READ_SIZE))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                if keep_body and (limit == 0 or len(body) < limit):
                    body += event.data if limit == 0 else event.data[: limit - len(body)]
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise trio.BrokenResourceError("connection closed by the host")
            # InformationalResponse (1xx): keep reading

    def _judge(self, response: h11.Response, body: bytes) -> Outcome:
        """Envoy's `healthCheckResult`: body (when `receive` is set), then status, then the
        degraded header."""
        status = response.status_code
        names = {name for name, _ in response.headers}
        immediate = IMMEDIATE_FAIL_HEADER in names
        if self._http.receive and not payload_matches(self._http.receive, body):
            return Outcome.fail(Failure.ACTIVE, f"HTTP {status}: body mismatch", excluded=immediate)
        if not in_ranges(status, self._http.expected_statuses):
            return Outcome.fail(
                Failure.ACTIVE,
                f"HTTP {status}",
                retriable=in_ranges(status, self._http.retriable_statuses),
                excluded=immediate,
            )
        return Outcome.success(degraded=DEGRADED_HEADER in names, detail=f"HTTP {status}")

    async def idle_until(self, deadline: float) -> Outcome | None:
        await trio.sleep_until(deadline)
        return None

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
