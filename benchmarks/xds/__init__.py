"""xDS benchmarks (`python -m benchmarks.xds`): push-to-applied latency of a route change
and the cost of 10,000 clusters via CDS+EDS, meshcore and Envoy in the same run, both
driven by the test ADS server (tests/xds/ads_server.py)."""
