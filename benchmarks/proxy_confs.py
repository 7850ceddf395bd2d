"""nginx and HAProxy as reverse proxies, configured like the Envoy bootstrap: one worker,
every path to the backend, upstream keep-alive, no disk buffering."""

from __future__ import annotations

from pathlib import Path

NGINX_UPSTREAM_KEEPALIVE = 256

# `keepalive` is the number of idle upstream connections nginx keeps per worker; with fewer
# than the benchmark's concurrency (200) it closes the surplus after every response (64 gave
# 13,765 new upstream connections per second at c200), so it is sized above it, like the
# unbounded idle pools of Envoy, meshcore and HAProxy.
# Bodies stream or stay in memory: a 64 KiB POST fits client_body_buffer_size and a 1 MiB
# response never goes to a temp file (proxy_max_temp_file_size 0), as in Envoy and meshcore.
_NGINX = """
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {dir}/nginx-proxy-{port}.pid;
error_log {dir}/nginx-proxy-error.log warn;
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/nginx-proxy-body;
    proxy_temp_path {dir}/nginx-proxy-temp;
    client_body_buffer_size 128k;
    proxy_buffers 16 32k;
    proxy_busy_buffers_size 64k;
    proxy_max_temp_file_size 0;
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive {idle_pool};
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

# `http-reuse always` shares idle server connections between client connections, like the
# connection pools of Envoy, meshcore and nginx's `keepalive`.
_HAPROXY = """
global
    nbthread 1
    maxconn {conns}
    log stderr format raw local0 err

defaults
    mode http
    timeout connect 1s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    http-reuse always

frontend bench
    bind 127.0.0.1:{port} backlog 4096
    default_backend backend

backend backend
    server backend 127.0.0.1:{backend_port}
"""


def nginx_conf(workdir: Path, port: int, backend_port: int, nofile: int) -> str:
    conns = max(1024, nofile // 2 - 64)  # each client connection may hold an upstream one
    return _NGINX.format(
        dir=workdir,
        port=port,
        backend_port=backend_port,
        nofile=nofile,
        conns=conns,
        idle_pool=NGINX_UPSTREAM_KEEPALIVE,
    )


def haproxy_conf(port: int, backend_port: int, nofile: int) -> str:
    conns = max(1024, nofile // 2 - 64)
    return _HAPROXY.format(port=port, backend_port=backend_port, conns=conns)
