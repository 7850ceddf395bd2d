"""This machine's addresses as Envoy sees them (for x-forwarded-for expectations)."""

from __future__ import annotations

import fcntl
import socket
import struct

SIOCGIFADDR = 0x8915


def envoy_local_address() -> str:
    """The first non-loopback IPv4 interface address, else 127.0.0.1.

    With `use_remote_address: true`, Envoy appends this address (its `local_info` address),
    not the peer's, to x-forwarded-for when the peer is a loopback address.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                return address
    return "127.0.0.1"
