"""Stats sinks: stats pushed by the control layer to an external collector (statsd)."""
