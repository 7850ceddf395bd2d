"""A fast gRPC unary backend for the HTTP/2 benchmark: Debian nginx over h2c answering every
`/test.Echo/` call with a framed 16-byte message and the `grpc-status: 0` trailer.

The grpcio server is the realistic backend but, written in Python, it sets the rate on a
2-core machine; this one is cheap enough that the proxy's own work sets it. The answer is a
valid gRPC response (grpcio clients accept it), so the proxy does exactly what it does for a
real gRPC server: HTTP/2 streams with trailers, end to end."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.backend import nginx_binary
from benchmarks.procs import Proc, wait_port

MESSAGE = b"x" * 16

# A POST to a static file is a 405 in nginx; `error_page 405 =200 $uri` serves the file
# instead (nginx discards the request body first).
_CONF = """
worker_processes 1;
daemon off;
pid {dir}/grpc-backend.pid;
error_log {dir}/grpc-backend-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 3600s;
    server {{
        listen 127.0.0.1:{port} http2;
        location /test.Echo/ {{
            types {{ }}
            default_type application/grpc;
            root {dir}/grpc-www;
            error_page 405 =200 $uri;
            add_trailer grpc-status 0;
            etag off;
        }}
    }}
}}
"""


def framed(message: bytes) -> bytes:
    """A gRPC length-prefixed message, uncompressed."""
    return b"\0" + len(message).to_bytes(4, "big") + message


def start(workdir: Path, port: int, cpu: int | None) -> Proc:
    """Starts the backend on 127.0.0.1:`port`, pinned to `cpu`; every method under
    `/test.Echo/` answers `MESSAGE`."""
    nginx = nginx_binary()
    if nginx is None:
        raise SystemExit("nginx not found (the backend needs it): apt-get install -y nginx-light")
    workdir.chmod(0o755)  # nginx workers run as www-data when started as root
    www = workdir / "grpc-www" / "test.Echo"
    www.mkdir(parents=True, exist_ok=True)
    (www / "Unary").write_bytes(framed(MESSAGE))
    conf = workdir / "grpc-backend.conf"
    conf.write_text(_CONF.format(dir=workdir, port=port))
    cmd = [nginx, "-c", str(conf), "-e", str(workdir / "grpc-backend-error.log")]
    proc = Proc.start("grpc-backend", cmd, cpu=cpu, log=workdir / "grpc-backend.out")
    wait_port(port)
    time.sleep(0.1)
    return proc
