"""`meshcore explain`: which listener, filter chain, virtual host, route and cluster a request
would get, decided by the data path's own compiled matchers (`meshcore._fastpath.explain`)."""
