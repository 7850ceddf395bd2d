"""The xDS client: ADS over gRPC (state of the world and delta) and watched files, feeding
Listener, RouteConfiguration, Cluster and ClusterLoadAssignment resources through the config
layer's checks into engine snapshots. Imported only when a bootstrap has
`dynamic_resources` (it pulls in gRPC)."""
