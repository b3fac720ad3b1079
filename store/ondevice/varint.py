"""Base-128 varints, shared by the SSTable, protobuf and Snappy readers.

Each format bounds them differently (LevelDB block entries: 32 bits, handles: 64; protobuf:
10 bytes, truncated to 64 bits; Snappy's length preamble: 5 bytes, 32 bits), so the decoder
only counts bytes and callers phrase their own one-line errors.
"""
from __future__ import annotations


class VarintError(ValueError):
    """``str()`` is ``"truncated"`` or ``"too long"``."""


def decode(buf, pos: int, limit: int, max_bytes: int = 10) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``, reading no further than ``limit``."""
    result = shift = 0
    for _ in range(max_bytes):
        if pos >= limit:
            raise VarintError("truncated")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise VarintError("too long")
