"""Tiny real PNG files for the simulated image models.

Clients download and sometimes decode output files, so the bytes must be a valid
PNG; a 16x16 gradient whose colour derives from the file's name keeps them small,
distinct per output and reproducible.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

__all__ = ["PNG_SIGNATURE", "render_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIZE = 16


def render_png(name: str) -> bytes:
    """A 16x16 RGB PNG whose colours are a function of `name`."""
    red, green, blue = hashlib.sha256(name.encode()).digest()[:3]
    rows = bytearray()
    for y in range(_SIZE):
        rows.append(0)  # filter type: none
        for x in range(_SIZE):
            rows += bytes((red, (green + 8 * x) % 256, (blue + 8 * y) % 256))
    header = struct.pack(">IIBBBBB", _SIZE, _SIZE, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)
