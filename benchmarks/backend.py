"""The benchmark backend: Debian nginx, one worker, a 12-byte answer and a 1 MiB file."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.procs import Proc, wait_port

_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = / {{ return 200 "hello world\\n"; }}
        location /static/ {{ root {dir}/www; }}
    }}
}}
"""


def start(workdir: Path, port: int, cpu: int | None) -> Proc:
    """Starts nginx on 127.0.0.1:`port`, pinned to `cpu`."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    www = workdir / "www" / "static"
    www.mkdir(parents=True, exist_ok=True)
    (www / "1m.bin").write_bytes(b"x" * (1 << 20))
    conf = workdir / "nginx.conf"
    conf.write_text(_CONF.format(dir=workdir, port=port))
    cmd = [nginx, "-c", str(conf), "-e", str(workdir / "error.log")]
    proc = Proc.start("nginx", cmd, cpu=cpu, log=workdir / "nginx.out")
    wait_port(port)
    time.sleep(0.1)
    return proc


def check_installed() -> None:
    """Fails with a clear message when nginx is missing."""
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        raise SystemExit("nginx not found: apt-get install -y nginx-light")
    subprocess.run(["wrk", "--version"], capture_output=True, check=False)
