"""meshcore's test suite (integration tests over real sockets on 127.0.0.1)."""
