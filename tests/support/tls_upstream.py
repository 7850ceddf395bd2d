"""An HTTPS upstream on Python's `ssl` (threads): answers every HTTP/1.1 request with 200 and a
JSON body telling the SNI it saw and the client certificate's URI SANs; optionally requires a
client certificate."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

from tests.support.threaded_server import ThreadedServer, recv_head


class TlsUpstream(ThreadedServer):
    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.context.sni_callback = self._sni
        self.snis: list[str | None] = []
        self.handshake_failures = 0
        super().__init__()

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.snis.append(name)

    def serve(self, raw: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            raw.close()
            return
        with conn:
            peer = conn.getpeercert() or {}
            uris = [v for k, v in peer.get("subjectAltName", ()) if k == "URI"]
            buf = b""
            try:
                while (got := recv_head(conn, buf)) is not None:
                    buf = got[1]
                    body = json.dumps(
                        {"sni": self.snis[-1] if self.snis else None, "client_uris": uris}
                    ).encode()
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        + f"content-length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
            except (ssl.SSLError, OSError):
                return
