"""Decompressor for raw Snappy blocks (the format LevelDB uses for compressed blocks).

The index builder compresses blocks with Snappy when asked to; LevelDB keeps a compressed
block only if it saves 12.5%, so a reader meets both raw and Snappy blocks in one file. Only
decompression is needed here and the format is small, so it is implemented directly rather
than adding a native dependency to the store process.

Format: a varint with the uncompressed length, then elements whose tag byte's low two bits
select a literal (0) or a back-reference copy with a 1, 2 or 4 byte offset (1, 2, 3).
"""
from __future__ import annotations

from . import varint


class SnappyError(ValueError):
    """The input is not a valid raw Snappy block."""


# Snappy caps a block's declared length at 2^32 - 1; refuse silly sizes before allocating.
_MAX_LENGTH = 0xFFFFFFFF


def uncompressed_length(data: bytes) -> tuple[int, int]:
    """Return (declared uncompressed length, position of the first element)."""
    try:
        result, pos = varint.decode(data, 0, len(data), max_bytes=5)
    except varint.VarintError as exc:
        raise SnappyError("truncated length preamble" if str(exc) == "truncated"
                          else "length preamble is longer than 5 bytes") from None
    if result > _MAX_LENGTH:
        raise SnappyError("declared length does not fit in 32 bits")
    return result, pos


def decompress(data: bytes, max_length: int | None = None) -> bytes:
    """Decompress one raw Snappy block; raise :class:`SnappyError` on any inconsistency."""
    data = bytes(data)
    expected, pos = uncompressed_length(data)
    if max_length is not None and expected > max_length:
        raise SnappyError(f"declared length {expected} exceeds the limit {max_length}")
    # No element expands more than 32-fold (a 3-byte copy yields at most 64 bytes), so a
    # larger declared length is a lie; refusing it early bounds memory on hostile input.
    if expected > 64 * len(data):
        raise SnappyError(f"declared length {expected} is impossible for {len(data)} input bytes")
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = (tag >> 2) + 1
            if length > 60:
                extra = length - 60  # 1..4 little-endian bytes hold length - 1
                if pos + extra > end:
                    raise SnappyError("truncated literal length")
                length = int.from_bytes(data[pos:pos + extra], "little") + 1
                pos += extra
            if pos + length > end:
                raise SnappyError("literal runs past the end of the input")
            out += data[pos:pos + length]
            pos += length
        else:
            if kind == 1:
                if pos + 1 > end:
                    raise SnappyError("truncated copy element")
                length = ((tag >> 2) & 7) + 4
                offset = ((tag >> 5) << 8) | data[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                if pos + width > end:
                    raise SnappyError("truncated copy element")
                length = (tag >> 2) + 1
                offset = int.from_bytes(data[pos:pos + width], "little")
                pos += width
            size = len(out)
            if offset == 0 or offset > size:
                raise SnappyError(f"copy offset {offset} points outside the {size} bytes produced so far")
            start = size - offset
            if offset >= length:
                out += out[start:start + length]
            else:
                # Overlapping copy: the last `offset` bytes repeat as a pattern.
                pattern = out[start:]
                repeats = -(-length // offset)
                out += (pattern * repeats)[:length]
        if len(out) > expected:
            raise SnappyError(f"output exceeds the declared length {expected}")
    if len(out) != expected:
        raise SnappyError(f"produced {len(out)} bytes, the block declares {expected}")
    return bytes(out)
