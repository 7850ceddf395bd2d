"""Process lifecycle of a running meshcore: state, signals, drain, logging, control stats."""
