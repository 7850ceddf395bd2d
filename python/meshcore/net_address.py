"""IP and port pairs printed the way Envoy prints them: `127.0.0.1:80`, `[::1]:80`."""


def format_host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
