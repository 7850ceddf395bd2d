"""Small builders for integration tests: upstreams, proxies (meshcore and Envoy), clients."""
