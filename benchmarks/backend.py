"""The benchmark backend: Debian nginx, one worker, a 12-byte answer, a 1 MiB file, stub_status."""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path

from benchmarks.procs import Proc, free_port, wait_port

BODY = b"hello world\n"
DOWNLOAD_PATH = "/static/1m.bin"
DOWNLOAD_BYTES = 1 << 20

# `return 200` answers GET and POST alike (nginx reads and discards a POST body first);
# the status server is on its own port so scraping it never goes through a proxy.
_CONF = """
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {dir}/backend.pid;
error_log {dir}/backend-error.log warn;
events {{ worker_connections 16000; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 3600s;  # a full run's round lasts minutes: keep proxies' pools
    client_body_temp_path {dir}/backend-body;
    client_body_buffer_size 128k;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ return 200 "hello world\\n"; }}
        location /static/ {{ root {dir}/www; }}
    }}
    server {{
        listen 127.0.0.1:{status_port};
        location = /status {{ stub_status; }}
    }}
}}
"""


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


class Backend:
    """The running backend: `port` serves the benchmark, `accepts()` counts its connections."""

    def __init__(self, proc: Proc, port: int, status_port: int) -> None:
        self.proc = proc
        self.port = port
        self.status_port = status_port

    def accepts(self) -> int:
        """Connections nginx accepted so far (stub_status), including this scrape's own."""
        with socket.create_connection(("127.0.0.1", self.status_port), timeout=5) as s:
            s.sendall(b"GET /status HTTP/1.0\r\nHost: status\r\n\r\n")
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
        return parse_accepts(b"".join(chunks).decode("latin-1"))

    def stop(self) -> None:
        self.proc.stop()


def parse_accepts(text: str) -> int:
    """The `accepts` counter of an nginx stub_status page."""
    m = re.search(r"server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)", text)
    if not m:
        raise ValueError(f"not an nginx stub_status page: {text[:200]!r}")
    return int(m.group(1))


def start(workdir: Path, port: int, cpu: int | None) -> Backend:
    """Starts nginx on 127.0.0.1:`port` (status on another free port), pinned to `cpu`."""
    nginx = nginx_binary()
    if nginx is None:
        raise SystemExit("nginx not found (the backend needs it): apt-get install -y nginx-light")
    workdir.chmod(0o755)  # nginx workers run as www-data when started as root
    www = workdir / "www" / "static"
    www.mkdir(parents=True, exist_ok=True)
    (www / "1m.bin").write_bytes(b"x" * DOWNLOAD_BYTES)
    status_port = free_port()
    conf = workdir / "backend.conf"
    conf.write_text(_CONF.format(dir=workdir, port=port, status_port=status_port))
    cmd = [nginx, "-c", str(conf), "-e", str(workdir / "backend-error.log")]
    proc = Proc.start("backend", cmd, cpu=cpu, log=workdir / "backend.out")
    wait_port(port)
    wait_port(status_port)
    time.sleep(0.1)
    return Backend(proc, port, status_port)
