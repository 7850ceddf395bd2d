"""`/server_info`: version, state, uptime, command line and node, in the shape of Envoy's
`envoy.admin.v3.ServerInfo` (fields meshcore has no notion of are left out)."""

from __future__ import annotations

from typing import Any

from meshcore import __version__
from meshcore.lifecycle.state import ServerState


def duration(seconds: float) -> str:
    """A protobuf JSON Duration: `38s`, `0.500s`."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"


def version_parts(version: str = __version__) -> tuple[int, int, int]:
    """(major, minor, patch) of a `0.1.0` style version; missing or odd parts are 0."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major, minor, patch


def _version_json() -> dict[str, int]:
    major, minor, patch = version_parts()
    return {"major_number": major, "minor_number": minor, "patch": patch}


def server_info(state: ServerState, drain_time_s: float) -> dict[str, Any]:
    options = state.options
    config = state.config
    uptime = duration(state.uptime_s())
    command_line: dict[str, Any] = {
        "concurrency": options.concurrency,
        "config_path": options.config_path,
        "log_level": options.log_level,
        "drain_time": duration(drain_time_s),
        "mode": "Serve",
        "disable_hot_restart": True,
        "restart_epoch": 0,
    }
    if options.admin_address_path:
        command_line["admin_address_path"] = options.admin_address_path
    return {
        "version": f"meshcore/{__version__}",
        "state": state.reported_phase().name,
        "uptime_current_epoch": uptime,
        "uptime_all_epochs": uptime,
        "hot_restart_version": "disabled",
        "command_line_options": command_line,
        "node": {
            "id": config.node_id if config else "",
            "cluster": config.node_cluster if config else "",
            "user_agent_name": "meshcore",
            "user_agent_build_version": {"version": _version_json()},
        },
    }
