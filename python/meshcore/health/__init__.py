"""Active health checking: per-host HTTP/TCP checks run on trio, Envoy's health state machine,
and the merge of each cluster's hosts with their health before `Engine.update_endpoints`."""
