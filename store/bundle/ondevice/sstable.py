"""Reader and streamed writer for one LevelDB table file ("SSTable"), the container of an
on-device ScaNN index.

The Task Library opens the index with ``leveldb::Table::Open`` over an in-memory buffer and
looks keys up with ``Seek``; this module reads and writes the same bytes in Python (CRC32C from
``google-crc32c``, Snappy from pyarrow) so the store process can write, inspect, verify and
summarise an index without tflite-support's native code.

Layout (LevelDB ``table_format.md``)::

    [data block]* [metaindex block] [index block] [footer: 48 bytes]
    block   = entries, uint32 restart offsets, uint32 restart count, then a 5-byte trailer
              (compression type, masked CRC32C of contents + type byte)
    entry   = varint shared, varint non_shared, varint value_len, key suffix, value
    footer  = metaindex handle, index handle (varint offset + size each), zero padding to
              40 bytes, fixed64 magic 0xdb4775248b80fb57

The reader is stricter than LevelDB where LevelDB would silently misbehave: keys must be
strictly ascending (``Seek`` relies on it), restart points must mark real entries, and the
index block's separator keys must really separate the data blocks. Any violation raises
:class:`IndexFormatError` with a one-line message.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass

import google_crc32c
import pyarrow as pa

from scannlite.store.bundle.ondevice.errors import IndexFormatError

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1

_NOT_INDEX = "not an on-device ScaNN index"
_CORRUPT = "corrupt on-device ScaNN index"
_MASK_DELTA = 0xA282EAD8
_SNAPPY = pa.Codec("snappy")
# No Snappy element yields more than 64 bytes (a 3-byte copy): a longer declared length is a lie.
_SNAPPY_MAX_EXPANSION = 64
#: Uncompressed blocks this large (an index's ``E_<leaf>`` blocks) are read as views, not copies.
VIEW_BLOCKS_FROM = 1 << 16
#: How many bytes of blocks a reader checks between two calls of its ``release``.
RELEASE_EVERY = 1 << 26


@dataclass(frozen=True)
class BlockInfo:
    """Where a block sits in the file and how it was stored (for summaries and tests)."""

    kind: str  # "data", "index" or "metaindex"
    offset: int
    size: int  # stored size, without the 5-byte trailer
    compression: int  # 0 raw, 1 snappy


class Table(dict):
    """The key/value pairs of an SSTable, in file (ascending key) order, and how they were stored."""

    def __init__(self, items: dict[bytes, bytes | memoryview], blocks: list[BlockInfo], file_size: int) -> None:
        super().__init__(items)
        self.blocks, self.file_size = blocks, file_size

    def __repr__(self) -> str:
        return f"<Table {len(self)} keys, {len(self.blocks)} blocks, {self.file_size} bytes>"


def crc32c(data, crc: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``, continuing from a previous ``crc32c`` result."""
    return google_crc32c.extend(crc, bytes(data))


def mask(crc: int) -> int:
    """LevelDB stores CRCs masked, so that CRCs of data that embeds CRCs stay well spread."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def read_varint(buf, pos: int, limit: int, what: str, max_bits: int = 64) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos`` (not past ``limit``); return (value, next pos)."""
    result = shift = 0
    for _ in range(-(-max_bits // 7)):
        if pos >= limit:
            raise IndexFormatError(f"{_CORRUPT}: truncated varint in {what}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> max_bits:
                raise IndexFormatError(f"{_CORRUPT}: bad varint in {what} (exceeds {max_bits} bits)")
            return result, pos
        shift += 7
    raise IndexFormatError(f"{_CORRUPT}: bad varint in {what} (too long)")


def snappy_decompress(raw: bytes | memoryview, where: str) -> bytes:
    """One raw Snappy block (a varint with the uncompressed length, then elements), by pyarrow.

    The declared length is checked before anything is allocated: at most 2^32 - 1 (Snappy's
    limit) and at most 64 times the input.
    """
    length, _ = read_varint(raw, 0, len(raw), f"the snappy length of {where}", 32)
    if length > _SNAPPY_MAX_EXPANSION * len(raw):
        raise IndexFormatError(
            f"{_CORRUPT}: bad snappy data in {where}: declared length {length} is impossible for {len(raw)} input bytes"
        )
    try:
        return _SNAPPY.decompress(raw, decompressed_size=length, asbytes=True)
    except (OSError, pa.ArrowException) as exc:  # "Corrupt snappy compressed data."
        raise IndexFormatError(f"{_CORRUPT}: bad snappy data in {where}: {str(exc).rstrip('.')}") from None


def _read_handle(buf, pos: int, limit: int, what: str) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos, limit, what)
    size, pos = read_varint(buf, pos, limit, what)
    return offset, size, pos


def _read_block(
    data: memoryview, offset: int, size: int, where: str, data_end: int, verify_checksums: bool
) -> tuple[bytes | memoryview, int]:
    """Return the (decompressed) contents of the block at ``offset`` and its compression type.

    A stored block larger than :data:`VIEW_BLOCKS_FROM` comes back as a view of ``data``, not a
    copy: an index's ``E_<leaf>`` values are most of its bytes (640 MB at 5M items)."""
    if offset + size + TRAILER_SIZE > data_end:
        raise IndexFormatError(f"{_CORRUPT}: {where} (size {size}) runs past the end of the table")
    raw: bytes | memoryview = data[offset : offset + size]
    ctype = data[offset + size]
    if size < VIEW_BLOCKS_FROM or ctype != NO_COMPRESSION:
        raw = bytes(raw)
    if verify_checksums:
        stored = unmask(struct.unpack_from("<I", data, offset + size + 1)[0])
        if stored != crc32c(bytes([ctype]), crc32c(raw)):
            raise IndexFormatError(f"{_CORRUPT}: checksum mismatch in {where}")
    if ctype == NO_COMPRESSION:
        return raw, ctype
    if ctype == SNAPPY_COMPRESSION:
        return snappy_decompress(raw, where), ctype
    raise IndexFormatError(f"{_CORRUPT}: unsupported compression type {ctype} in {where}")


def _parse_block(block: bytes | memoryview, where: str) -> list[tuple[bytes, bytes | memoryview]]:
    """Decode the entries of one block, checking restart points and shared-prefix lengths.

    Keys are bytes; values are bytes, except values of at least :data:`VIEW_BLOCKS_FROM` bytes
    in a block given as a view, which are views of it."""
    n = len(block)
    if n < 4:
        raise IndexFormatError(f"{_CORRUPT}: {where} is too small ({n} bytes)")
    num_restarts = struct.unpack_from("<I", block, n - 4)[0]
    if num_restarts > (n - 4) // 4:
        raise IndexFormatError(f"{_CORRUPT}: {where} claims {num_restarts} restart points")
    limit = n - 4 - 4 * num_restarts
    restarts = struct.unpack_from(f"<{num_restarts}I", block, limit)
    if limit > 0 and num_restarts == 0:
        # LevelDB treats such a block as empty, which would hide its entries.
        raise IndexFormatError(f"{_CORRUPT}: {where} has entries but no restart points")
    viewed = isinstance(block, memoryview)
    entries: list[tuple[bytes, bytes | memoryview]] = []
    fresh_starts = set()  # offsets of entries that store their full key
    prev = b""
    pos = 0
    what = f"entry of {where}"
    while pos < limit:
        start = pos
        # Metadata entries (millions of them) have three one-byte varints: read those inline.
        if pos + 3 <= limit and block[pos] < 0x80 and block[pos + 1] < 0x80 and block[pos + 2] < 0x80:
            shared, unshared, vlen = block[pos], block[pos + 1], block[pos + 2]
            pos += 3
        else:
            shared, pos = read_varint(block, pos, limit, what, 32)
            unshared, pos = read_varint(block, pos, limit, what, 32)
            vlen, pos = read_varint(block, pos, limit, what, 32)
        if shared > len(prev):
            raise IndexFormatError(
                f"{_CORRUPT}: {where} shares {shared} key bytes with a {len(prev)}-byte previous key"
            )
        if pos + unshared + vlen > limit:
            raise IndexFormatError(f"{_CORRUPT}: an entry runs past the end of {where}")
        key = (
            prev[:shared] + bytes(block[pos : pos + unshared])
            if viewed
            else prev[:shared] + block[pos : pos + unshared]
        )
        pos += unshared
        value = block[pos : pos + vlen]
        entries.append((key, bytes(value) if viewed and vlen < VIEW_BLOCKS_FROM else value))
        pos += vlen
        if shared == 0:
            fresh_starts.add(start)
        prev = key
    if not entries:
        fresh_starts.add(0)  # an empty block still has its one restart point at 0
    for i, restart in enumerate(restarts):
        if restart not in fresh_starts or (i and restart <= restarts[i - 1]):
            raise IndexFormatError(f"{_CORRUPT}: restart point {i} of {where} does not mark an entry")
    return entries


def _footer(data) -> tuple[memoryview, int, tuple[int, int], tuple[int, int]]:
    """(a read-only view of ``data``, where the blocks end, the metaindex and index blocks'
    (offset, size)), after checking the footer."""
    if not isinstance(data, (bytes, bytearray, memoryview, mmap.mmap)):
        raise TypeError(f"an SSTable is read from bytes or a map, not {type(data).__name__}")
    view = memoryview(data).cast("B")
    if not view.readonly:  # values may come out as views: never of a buffer that can still change
        view = memoryview(bytes(view))
    size = len(view)
    if size == 0:
        raise IndexFormatError(f"{_NOT_INDEX}: the file is empty")
    if size < FOOTER_SIZE:
        raise IndexFormatError(
            f"{_NOT_INDEX}: {size} bytes is too short for an SSTable (the footer alone is {FOOTER_SIZE})"
        )
    footer = size - FOOTER_SIZE
    if struct.unpack_from("<Q", view, size - 8)[0] != MAGIC:
        raise IndexFormatError(f"{_NOT_INDEX}: bad SSTable magic number")
    meta_off, meta_size, pos = _read_handle(view, footer, size - 8, "the footer")
    index_off, index_size, _ = _read_handle(view, pos, size - 8, "the footer")
    return view, footer, (meta_off, meta_size), (index_off, index_size)


def check_blocks(data: bytes, *, release: Callable[[], None] | None = None) -> None:
    """Every block's place, checksum and compression, without decoding the entries of the data
    blocks: what a reader that asks for only a few keys (:func:`lookup`) checks first, at the
    cost of one pass over the file and no more memory than its largest block (``release``: as
    for :func:`read_table`)."""
    view, end, meta, index = _footer(data)
    _read_block(view, *meta, f"metaindex block at offset {meta[0]}", end, True)
    where = f"index block at offset {index[0]}"
    raw, _ = _read_block(view, *index, where, end, True)
    unreleased = 0
    for _, handle in _parse_block(raw, where):
        offset, size, _ = _read_handle(handle, 0, len(handle), "the index block")
        _read_block(view, offset, size, f"data block at offset {offset}", end, True)
        unreleased += size
        if release is not None and unreleased >= RELEASE_EVERY:
            release()
            unreleased = 0


def read_table(data: bytes, *, verify_checksums: bool = True, release: Callable[[], None] | None = None) -> Table:
    """Parse a whole SSTable from ``data``; raise :class:`IndexFormatError` if it is malformed.

    Values of at least :data:`VIEW_BLOCKS_FROM` bytes in uncompressed blocks are read-only views
    of ``data`` (of a mapped file, say: drop them before closing it); everything else is bytes.
    ``release()`` is called after every 64 MiB of blocks read: a mapped file's owner can drop
    the pages checked so far, so that reading a large file never holds all of it resident."""
    view, footer, (meta_off, meta_size), (index_off, index_size) = _footer(data)
    size = len(view)

    blocks: list[BlockInfo] = []

    unreleased = 0

    def entries(offset: int, block_size: int, kind: str) -> tuple[list[tuple[bytes, bytes | memoryview]], str]:
        nonlocal unreleased
        where = f"{kind} block at offset {offset}"
        raw, ctype = _read_block(view, offset, block_size, where, footer, verify_checksums)
        blocks.append(BlockInfo(kind, offset, block_size, ctype))
        unreleased += block_size
        if release is not None and unreleased >= RELEASE_EVERY:
            release()
            unreleased = 0
        return _parse_block(raw, where), where

    entries(meta_off, meta_size, "metaindex")  # checked, otherwise unused: indexes have no filter
    index_entries, _ = entries(index_off, index_size, "index")
    items: dict[bytes, bytes | memoryview] = {}
    last_key: bytes | None = None
    prev_separator: bytes | None = None
    for separator, handle in index_entries:
        if prev_separator is not None and separator <= prev_separator:
            raise IndexFormatError(f"{_CORRUPT}: index block keys are not in ascending order")
        offset, bsize, _ = _read_handle(handle, 0, len(handle), "the index block")
        data_entries, where = entries(offset, bsize, "data")
        for key, value in data_entries:
            if last_key is not None and key <= last_key:
                raise IndexFormatError(
                    f"{_CORRUPT}: keys are not in strictly ascending order ({_show(last_key)} then {_show(key)})"
                )
            if prev_separator is not None and key <= prev_separator:
                raise IndexFormatError(
                    f"{_CORRUPT}: key {_show(key)} in {where} is not after the previous block's index key"
                )
            items[key] = value
            last_key = key
        if last_key is not None and last_key > separator:
            raise IndexFormatError(f"{_CORRUPT}: index key {_show(separator)} is below the last key of {where}")
        prev_separator = separator
    return Table(items, blocks, size)


def lookup(data: bytes, key: bytes, *, verify_checksums: bool = True) -> bytes | memoryview | None:
    """The value of one ``key`` (None if absent), reading only the index block and the one data
    block that may hold it, as LevelDB's ``Seek`` does: for a question about one key of a
    table of millions (``USER_INFO``, say), not a whole-table check (:func:`read_table`)."""
    view, footer, _, (index_off, index_size) = _footer(data)
    where = f"index block at offset {index_off}"
    raw, _ = _read_block(view, index_off, index_size, where, footer, verify_checksums)
    for separator, handle in _parse_block(raw, where):
        if key <= separator:  # the first block whose last key is not below ``key``
            offset, bsize, _ = _read_handle(handle, 0, len(handle), "the index block")
            where = f"data block at offset {offset}"
            block, _ = _read_block(view, offset, bsize, where, footer, verify_checksums)
            return dict(_parse_block(block, where)).get(key)
    return None


def _show(key: bytes, limit: int = 40) -> str:
    text = repr(key[:limit])
    return text + ("..." if len(key) > limit else "")
