"""The node's own address as Envoy's `local_info` has it: the first non-loopback IPv4 address
of the host's interfaces, else 127.0.0.1. Read from the kernel (no network traffic)."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable

LOOPBACK = "127.0.0.1"
# Linux `SIOCGIFADDR` (<linux/sockios.h>): an interface's primary IPv4 address.
SIOCGIFADDR = 0x8915
_IFNAMSIZ = 16  # interface names are at most 15 bytes and a NUL

InterfaceAddress = Callable[[str], str | None]


def first_non_loopback(names: Iterable[str], address_of: InterfaceAddress) -> str:
    """The first IPv4 address of the interfaces `names` (in order) that is not in 127.0.0.0/8,
    else 127.0.0.1, as Envoy's `Network::Utility::getLocalAddress(v4)` picks it."""
    for name in names:
        address = address_of(name)
        if address is not None and not ipaddress.IPv4Address(address).is_loopback:
            return address
    return LOOPBACK


def _interface_names() -> list[str]:
    """The host's interface names in index order ([] where the OS cannot list them)."""
    try:
        return [name for _, name in sorted(socket.if_nameindex())]
    except OSError:
        return []


def local_address() -> str:
    """This host's `local_info` address (see the module docstring)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

        def address_of(name: str) -> str | None:
            request = struct.pack(f"{_IFNAMSIZ}s240x", name.encode()[: _IFNAMSIZ - 1])
            try:
                reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:  # no IPv4 address, interface gone, or not Linux
                return None
            # struct ifreq: the name, then a struct sockaddr_in (family, port, address).
            return socket.inet_ntoa(reply[_IFNAMSIZ + 4 : _IFNAMSIZ + 8])

        return first_non_loopback(_interface_names(), address_of)
