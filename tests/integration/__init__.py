"""Integration tests: real sockets, a real proxy process, trio upstreams."""
