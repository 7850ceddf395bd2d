"""`meshcore top`: a terminal view of a running proxy's busiest connection managers and
clusters, polled from its admin API (`/stats/summary`)."""
