"""The process drain time: how long a SIGTERM drain waits for open connections."""

from __future__ import annotations

# The process drain time (Envoy's `--drain-time-s`) when none is given. Envoy's default is
# 600 s; meshcore's is 5 s because it runs as a sidecar: Kubernetes sends SIGTERM and kills
# the pod `terminationGracePeriodSeconds` (30 s by default) later, and that budget also
# covers preStop hooks and the application's own shutdown, so the proxy's part must be short
# (Istio's sidecar default, `terminationDrainDuration`, is 5 s as well). HCM `drain_timeout`
# is not this: in Envoy it is the HTTP/2 GOAWAY grace period of one connection.
DEFAULT_DRAIN_TIME_S = 5.0


def drain_time_s(option_s: float | None) -> float:
    """The drain time: `--drain-time-s` if given, else `DEFAULT_DRAIN_TIME_S`."""
    return DEFAULT_DRAIN_TIME_S if option_s is None else option_s
