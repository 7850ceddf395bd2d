# Type stubs for the compiled data path meshcore._fastpath (checked by tests/test_stub.py).
from typing import final

__version__: str
# Bucket upper bounds (ms) of every engine histogram: Envoy's defaults.
HISTOGRAM_BOUNDS_MS: tuple[float, ...]

def explain(snapshot: bytes, request: bytes) -> bytes:
    """`meshcore explain`: compiles `snapshot` (engine snapshot JSON) with the data path's
    compiler and runs its filter chain matcher, router (recording each step) and HTTP
    filters on `request` (JSON: method, authority, path, headers [[name, value]], and the
    optional listener, port, sni, alpn, tls, source, random); returns the explanation as
    JSON (docs/explain.md). Nothing is bound or sent. ValueError: "config: ..." for a bad
    snapshot (the message `Engine.apply` gives), "request...: ..." for a bad request."""

def access_log_operators() -> list[str]:
    """The access-log command operators that take no argument, as the engine's format
    compiler knows them (`fastpath/src/access_log/format.rs`): the config check's list."""

@final
class Engine:
    """The Rust data path: `concurrency` worker threads, each with its own tokio runtime,
    SO_REUSEPORT listening sockets, upstream pools and stats shard."""

    def __init__(self, concurrency: int) -> None: ...
    def apply(self, snapshot: bytes) -> int:
        """Compiles a JSON snapshot and swaps it in atomically; returns its generation.
        Raises ValueError (bad snapshot) or OSError (a listener cannot bind) and keeps the
        previous snapshot serving. Unchanged listeners keep their sockets, unchanged
        clusters their pools."""
    def apply_listeners(self, snapshot: bytes) -> int:
        """`apply` for a snapshot whose `clusters` is empty: compiles its listeners against
        the applied clusters, which stay exactly as they are (settings, hosts with their
        health, pools), and swaps them in; returns the generation. O(listeners): a route
        change costs the same with 10,000 clusters as with 10. Raises as `apply` (a route
        naming a cluster the engine does not have is a ValueError) and keeps the previous
        snapshot serving."""
    def apply_clusters(self, snapshot: bytes, removed: list[str]) -> int:
        """`apply` for a cluster change: the snapshot's `clusters` are the changed and added
        ones (a cluster takes the place of the applied one of the same name, which it keeps
        exactly as it is, hosts with their health and pools, when its settings are
        unchanged; a new one goes last), the `removed` ones are retired, and every other
        applied cluster stays untouched; the snapshot's listeners (all of them) are compiled
        against the result and swapped in. Returns the generation. O(changed clusters +
        listeners). Raises as `apply` (also ValueError for a route naming a cluster no
        longer there, a name both in `clusters` and `removed`, or an unknown removed name)
        and keeps the previous snapshot serving."""
    def update_endpoints(self, cluster: str, endpoints: bytes) -> None:
        """Swaps one cluster's hosts (JSON list of snapshot `Endpoint`s) without touching
        anything else. KeyError for an unknown cluster, ValueError for bad JSON."""
    def set_jwks(self, provider_key: str, jwks_json: bytes) -> None:
        """Stores the JWKS fetched for a jwt_authn `remote_jwks` source (the snapshot's
        `remote_jwks.key`); requests use it at once, and it survives re-applies while a
        provider names the source. KeyError: no applied provider uses `provider_key`;
        ValueError: not a JWKS with a usable key (the previous keys stay)."""
    def listener_ports(self) -> dict[str, int]:
        """Bound port of each listener by name (resolves port 0)."""
    def stats(self) -> tuple[bytes, bytes, bytes]:
        """(counters, gauges, histograms), merged from the worker shards, each a run of
        lines sorted by stat name: `name\\0value\\n` (gauges may be negative);
        histograms `name\\0count[ sum_ms b0 ... b19[ ib0 ... ib19]]\\n`: the count alone
        while every slot is zero, else the sum (ms, shortest round-trip decimal), the
        bucket counts per HISTOGRAM_BOUNDS_MS bound plus overflow, and the bucket counts of
        the last complete flush interval when it had samples. NUL and newline in a name are
        written as `_`. Status-code counters (`upstream_rq_503`) appear once non-zero."""
    def flush_histograms(self) -> None:
        """Ends a stats flush interval: each histogram's samples since the previous call
        become its interval reading in `stats()` (Envoy's `stats_flush_interval`)."""
    def capture_histogram_samples(self, on: bool) -> None:
        """Turns on (or off, discarding what is buffered) keeping every histogram sample
        for `take_histogram_samples` (the statsd sink's timers). Process-wide; off by
        default. Each worker keeps at most 65,536 samples between takes and drops the rest."""
    def take_histogram_samples(self) -> tuple[bytes, int]:
        """(samples captured since the last call as `name:ms|ms\\n` lines with the
        histogram's full stat name and whole milliseconds, samples dropped meanwhile); the
        drops are also counted in `statsd.histogram_samples_dropped`."""
    def clusters(self) -> bytes:
        """JSON: [{"name": str, "observability_name": str, "hosts": [{"address": str,
        "port": int, "weight": int, "healthy": bool, "priority": int, "ejected": bool,
        "cx_active": int, "cx_total": int, "rq_active": int, "rq_total": int, "rq_error": int}]}].
        `observability_name`: the cluster's stats name (`alt_stat_name`, else `name`).
        `ejected`: outlier detection took the host out of load balancing (Envoy's
        `/failed_outlier_check`)."""
    def drain(self) -> None:
        """Stops accepting, closes idle downstream connections, and answers the rest with
        `connection: close`. Returns at once; poll `active_connections()`."""
    def active_connections(self) -> int:
        """Open downstream connections over all workers."""
    def stop(self) -> None:
        """Closes everything and joins the workers. Idempotent."""
    def reopen_access_logs(self) -> None:
        """Every access log file is reopened (same path) before its next lines are written:
        log rotation (SIGUSR1). Returns at once."""
    def take_spans(self) -> bytes:
        """The spans of sampled requests queued since the last call, one JSON object per
        line (`tracer`, `traceId`, `id`, `parentId`, `kind`, `shared`, `name`, `timestamp`,
        `duration` in microseconds, `tags`); empty when there are none."""
