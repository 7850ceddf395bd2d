"""Hand-built HTTP/2 frames over raw sockets, for tests that must send what no HTTP/2 library
would (floods, empty frames): frame constants, a frame builder and readers that split what
arrives into (type, stream, payload) tuples."""

from __future__ import annotations

import contextlib
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0,
    1,
    2,
    3,
    4,
    6,
    7,
    8,
    9,
)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
# HPACK: `:method: POST`, `:scheme: http`, `:path: /`, then `:authority: a` (literal,
# indexed name 1).
POST_HEAD = bytes([0x83, 0x86, 0x84, 0x41, 0x01]) + b"a"
# HPACK: `:status: 200` (static table index 8).
STATUS_200 = bytes([0x88])

Frame = tuple[int, int, bytes]


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def priority(stream: int) -> bytes:
    """A PRIORITY frame on `stream` (depends on stream 0, weight 16)."""
    return frame(PRIORITY, 0, stream, struct.pack(">IB", 0, 15))


def window_update(stream: int, increment: int = 1) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def send_all(sock: socket.socket, data: bytes) -> None:
    """Sends `data`, ignoring that the peer has closed already."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The complete frames in `data` and the bytes left over."""
    frames: list[Frame] = []
    while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[:3], "big"):
        length = int.from_bytes(data[:3], "big")
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        frames.append((data[3], stream, data[9 : 9 + length]))
        data = data[9 + length :]
    return frames, data


def read_until_closed(sock: socket.socket) -> list[Frame]:
    """Reads frames until the peer closes (EOF or reset); returns them."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return split_frames(data)[0]


def read_until(sock: socket.socket, want: tuple[int, int]) -> list[Frame]:
    """Reads frames until one of type `want[0]` on stream `want[1]` arrives (or the peer
    closes: then the list ends without it)."""
    data = b""
    frames: list[Frame] = []
    while True:
        done, data = split_frames(data)
        for f in done:
            frames.append(f)
            if f[:2] == want:
                return frames
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return frames
        if not chunk:
            return frames
        data += chunk
