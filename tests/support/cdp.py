"""Headless Chromium driven over the Chrome DevTools Protocol on `--remote-debugging-pipe`
(NUL-terminated JSON messages: commands on the child's fd 3, answers and events on its fd 4),
so tests need no WebSocket library: open a page, evaluate JavaScript, collect its errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--remote-debugging-pipe",
)


_TRAMPOLINE = """
import os, sys
read_end, write_end = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
for fd, target in ((read_end, 3), (write_end, 4)):
    os.dup2(fd, target)
    os.set_inheritable(target, True)  # dup2 onto itself keeps os.dup's close-on-exec
os.execv(sys.argv[3], sys.argv[3:])
"""


class CdpError(RuntimeError):
    pass


def chromium_binary() -> str | None:
    """`$MESHCORE_CHROMIUM`, else `chromium` (Debian) or `chromium-browser` on PATH."""
    return (
        os.environ.get("MESHCORE_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


class Browser:
    """One headless Chromium process; `close()` stops it (by PID, SIGKILL after 5 s)."""

    def __init__(self, binary: str, profile_dir: Path, log_path: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        self._log = log_path.open("wb")
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"]
        # The protocol pipes must be the child's fds 3 and 4: a Python trampoline moves them
        # there (dash cannot redirect fds above 9) and execs Chromium.
        self.process = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_child_r), str(from_child_w), binary, *flags],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._lock = threading.Condition()
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    self._closed = True
                    self._lock.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._lock:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._lock.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Runs one command; its `result`, or CdpError naming the method."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._lock:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    why = "Chromium closed the pipe" if self._closed else f"{timeout} s"
                    raise CdpError(f"{method}: no answer ({why})")
                self._lock.wait(left)
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open(self, url: str) -> Page:
        """A new tab with Runtime, Log and Page events on, navigated to `url` and loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self._wait_event("Page.loadEventFired", session)
        return Page(self, session)

    def _wait_event(self, method: str, session: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not any(
                e.get("method") == method and e.get("sessionId") == session for e in self.events
            ):
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise CdpError(f"no {method} within {timeout} s")
                self._lock.wait(left)

    def errors(self) -> list[str]:
        """JavaScript errors so far: uncaught exceptions, console.error/assert, and browser
        log errors other than the network's (a refused fetch is logged by the network
        layer; the page itself must handle it)."""
        out = []
        with self._lock:
            events = list(self.events)
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text")
                out.append(f"exception: {text}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                out.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                if entry.get("level") == "error" and entry.get("source") != "network":
                    out.append(f"log ({entry.get('source')}): {entry.get('text')}")
        return out

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(CdpError, OSError):
                self.send("Browser.close", timeout=5)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(5)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str, timeout: float = 10.0) -> Any:
        """The JSON value of `expression` in the page (promises awaited)."""
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise CdpError(f"evaluate {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0, interval: float = 0.1) -> Any:
        """Polls `expression` until it is truthy; returns its value (CdpError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError(f"not true within {timeout} s: {expression}")
            time.sleep(interval)
