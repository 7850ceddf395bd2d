"""Start a proxy (meshcore or real Envoy) as a subprocess on a generated bootstrap, wait for
it to be ready, talk to its admin API, stop it by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.bootstrap import write_bootstrap
from tests.support.envoy import envoy_command

KINDS = ["envoy", "meshcore"]
START_TIMEOUT = 30.0


def meshcore_command(config: Path, admin_address_path: Path, concurrency: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "meshcore",
        "run",
        "-c",
        str(config),
        "--concurrency",
        str(concurrency),
        "--admin-address-path",
        str(admin_address_path),
    ]


class ProxyError(RuntimeError):
    pass


class Proxy:
    """A running proxy process. `kind` is "envoy" or "meshcore"."""

    def __init__(
        self,
        kind: str,
        config: dict[str, Any],
        workdir: Path,
        concurrency: int = 1,
        extra_args: tuple[str, ...] = (),
    ):
        self.kind = kind
        self.config = config
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = write_bootstrap(workdir / "bootstrap.yaml", config)
        self.admin_address_path = workdir / "admin-address"
        self.log_path = workdir / "proxy.log"
        self.admin_address = ""
        if kind == "envoy":
            command = envoy_command(self.config_path, self.admin_address_path, concurrency)
        elif kind == "meshcore":
            command = meshcore_command(self.config_path, self.admin_address_path, concurrency)
        else:
            raise ValueError(kind)
        self.command = [*command, *extra_args]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    # ---- lifecycle -----------------------------------------------------------------------

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProxyError(
                    f"{self.kind} exited with {self.process.returncode} during start:\n"
                    + self.log_tail()
                )
            text = (
                self.admin_address_path.read_text().strip()
                if self.admin_address_path.exists()
                else ""
            )
            if text:
                self.admin_address = text
                try:
                    status, _ = self.admin("GET", "/ready")
                except OSError:
                    status = 0
                if status == 200 and all(self._accepting(port) for port in self.listener_ports()):
                    return
            time.sleep(0.05)
        raise ProxyError(f"{self.kind} not ready after {START_TIMEOUT}s:\n" + self.log_tail())

    @staticmethod
    def _accepting(port: int) -> bool:
        """True when some socket listens on `port` (read from /proc/net/tcp, so that no test
        connection shows up in the proxy's downstream stats)."""
        suffix = f":{port:04X}"
        try:
            lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return True
        return any(
            fields[1].endswith(suffix) and fields[3] == "0A"
            for fields in (line.split() for line in lines)
        )

    def listener_ports(self) -> list[int]:
        return [
            listener["address"]["socket_address"]["port_value"]
            for listener in self.config["static_resources"]["listeners"]
        ]

    @property
    def port(self) -> int:
        """Port of the first listener."""
        return self.listener_ports()[0]

    @property
    def pid(self) -> int:
        return self.process.pid

    def send_signal(self, sig: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; returns the exit code."""
        if self.process.poll() is None:
            self.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def replace_config(self, config: dict[str, Any] | str) -> None:
        """Rewrites the bootstrap file in place (for SIGHUP reload tests)."""
        if isinstance(config, str):
            self.config_path.write_text(config)
        else:
            self.config = config
            write_bootstrap(self.config_path, config)

    # ---- admin -----------------------------------------------------------------------

    def admin(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """A blocking admin request; returns (status, body)."""
        request = urllib.request.Request(f"http://{self.admin_address}{path}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def stats(self) -> dict[str, str]:
        """Envoy's text `/stats`: name -> value text (counters and gauges are integers)."""
        status, body = self.admin("GET", "/stats")
        assert status == 200, body
        out = {}
        for line in body.splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                out[name] = value
        return out

    def counter(self, name: str) -> int:
        return int(self.stats().get(name, "0"))


def proxy_kinds() -> list[str]:
    """Proxies to test: both, unless `MESHCORE_TEST_PROXIES` names a subset (for local work;
    scripts/test and CI always run both)."""
    chosen = os.environ.get("MESHCORE_TEST_PROXIES", "")
    kinds = [kind.strip() for kind in chosen.split(",") if kind.strip()] or KINDS
    unknown = set(kinds) - set(KINDS)
    assert not unknown, f"MESHCORE_TEST_PROXIES: unknown {sorted(unknown)}"
    return kinds


def start_proxy(
    kind: str,
    config: dict[str, Any],
    tmp_path_factory: Any,
    concurrency: int = 1,
    extra_args: tuple[str, ...] = (),
) -> Proxy:
    """A `Proxy` in a fresh temporary directory (pytest's `tmp_path_factory`)."""
    return Proxy(kind, config, tmp_path_factory.mktemp(kind), concurrency, extra_args)
