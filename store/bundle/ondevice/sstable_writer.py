"""The streamed writer of one LevelDB table file ("SSTable"), the container of an on-device ScaNN index.

Blocks are encoded (shared key prefixes, restart points), optionally Snappy-compressed where that saves an eighth,
and written with their CRC32C trailers, the index block and the footer, as LevelDB's TableBuilder writes them
(docs/ondevice-format.md, 1.1). The reader is :mod:`.sstable`.
"""

from __future__ import annotations

import io
import struct

from scannlite.store.bundle.ondevice.sstable import (
    _SNAPPY,
    FOOTER_SIZE,
    MAGIC,
    NO_COMPRESSION,
    SNAPPY_COMPRESSION,
    TRAILER_SIZE,
    _show,
    crc32c,
    mask,
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _shared_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def encode_block(
    entries: list[tuple[bytes, bytes]], restarts: list[int] | None = None, restart_interval: int = 16
) -> bytes:
    """One block's contents (no trailer). ``restarts``: indices of entries that store their full
    key; LevelDB readers accept any ascending set that starts at 0, not only every 16th."""
    if restarts is None:
        restarts = list(range(0, max(len(entries), 1), restart_interval))
    fresh = set(restarts)
    out = bytearray()
    offsets = []
    prev = b""
    for i, (key, value) in enumerate(entries):
        shared = 0 if i in fresh else _shared_prefix(prev, key)
        if i in fresh:
            offsets.append(len(out))
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    if not entries:
        offsets = [0]
    out += struct.pack(f"<{len(offsets)}I", *offsets) + struct.pack("<I", len(offsets))
    return bytes(out)


def _stored_block(contents: bytes, compress: bool) -> bytes:
    """Contents + trailer, Snappy-compressed under LevelDB's own rule (kept only if it saves 1/8)."""
    ctype, raw = NO_COMPRESSION, contents
    if compress:
        packed = _SNAPPY.compress(contents, asbytes=True)
        if len(packed) < len(contents) - len(contents) // 8:
            ctype, raw = SNAPPY_COMPRESSION, packed
    crc = mask(crc32c(bytes([ctype]), crc32c(raw)))
    return raw + bytes([ctype]) + struct.pack("<I", crc)


class TableWriter:
    """Writes an SSTable to a binary file one data block at a time, so a table never has to be
    held in memory whole: only the index block's entries (one short key and handle per data
    block) are kept until :meth:`finish`.

    The caller decides where blocks end (LevelDB's builder cuts at 4 KiB; a caller that wants
    blocks to survive insertions cuts by content). Each block's index key is its last key,
    which LevelDB accepts as a separator (it only shortens it to save bytes)."""

    def __init__(self, out) -> None:
        self._out, self._offset = out, 0
        self._index: list[tuple[bytes, bytes]] = []
        self._last: bytes | None = None

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._offset += len(data)

    def add_block(
        self, entries: list[tuple[bytes, bytes]], restarts: list[int] | None = None, compress: bool = False
    ) -> None:
        """One data block of ``entries`` (keys strictly ascending across all blocks);
        ``compress``: Snappy under LevelDB's rule."""
        if not entries:
            return
        for key, _ in entries:
            if self._last is not None and key <= self._last:
                raise ValueError(f"keys must be strictly ascending: {_show(self._last)} then {_show(key)}")
            self._last = key
        stored = _stored_block(encode_block(entries, restarts), compress)
        self._index.append((entries[-1][0], _varint(self._offset) + _varint(len(stored) - TRAILER_SIZE)))
        self._write(stored)

    def finish(self) -> int:
        """Write the (empty) metaindex, the index block and the footer; return the table's size."""
        meta_handle = _varint(self._offset) + _varint(len(encode_block([])))
        self._write(_stored_block(encode_block([]), False))
        index_block = _stored_block(encode_block(self._index, restart_interval=1), False)
        index_handle = _varint(self._offset) + _varint(len(index_block) - TRAILER_SIZE)
        self._write(index_block)
        handles = meta_handle + index_handle
        self._write(handles + bytes(FOOTER_SIZE - 8 - len(handles)) + struct.pack("<Q", MAGIC))
        return self._offset


def write_table(blocks: list[tuple[list[tuple[bytes, bytes]], list[int] | None, bool]]) -> bytes:
    """An SSTable, in memory, from data blocks given as ``(entries, restarts or None, compress)``
    in key order (see :class:`TableWriter`)."""
    out = io.BytesIO()
    writer = TableWriter(out)
    for entries, restarts, compress in blocks:
        writer.add_block(entries, restarts, compress)
    writer.finish()
    return out.getvalue()
