"""Deterministic hostile inputs for libscannlite's fuzz driver (libscannlite/fuzz/scannlite_fuzz.c).

Rule: every mutation is derived from a fixed seed and written to one manifest that a single
sanitizer-built driver process runs, because thousands of processes would cost minutes; the
mutations know the formats (LevelDB table, IndexConfig protobuf, TFLite flatbuffer, stored zip)
and recompute checksums (masked CRC32C per block, zip CRC-32) after mutating, so the parser is
exercised past its checksum tests too. See docs/native-port.md ("Hostile input").

Manifest (little-endian): b"SLFUZZ2\\n", u32 bases, per base u64 length + bytes, u32 cases, per
case u32 base, u64 length (a prefix of the base), u32 splices, per splice u64 offset, u64 bytes
removed, u32 bytes inserted + the bytes (applied in order; an overwrite removes what it inserts).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scannlite.plugin.device import tflite_zip
from scannlite.store.bundle.ondevice import sstable, sstable_writer

FOOTER = sstable.FOOTER_SIZE
#: Values a length, count or offset field is set to: the edges where parsers go wrong.
BOUNDARY = (
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    127,
    128,
    255,
    256,
    0x7FFF,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
    1 << 32,
    (1 << 32) + 1,
    1 << 62,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
)
SCANN_INDEX_FILE = 6
#: IndexConfig values up to this size get field mutations (each case re-stores the whole block).
CONFIG_MUTATION_LIMIT = 1 << 17
#: Tables above this size get proportionally fewer mutations (at least a tenth): the cost of a
#: case (building it here, opening it there) grows with the table.
FULL_RATE_BYTES = 1 << 18


def varint(value: int) -> bytes:
    return sstable_writer._varint(value)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at pos; raises ValueError past the end or after 10 bytes."""
    value = shift = 0
    for _ in range(10):
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise ValueError("varint too long")


def fix_block_crc(buf: bytearray, offset: int, size: int) -> None:
    """Rewrite the masked CRC32C of the block at offset (contents + its compression byte)."""
    crc = sstable.mask(sstable.crc32c(bytes(buf[offset : offset + size + 1])))
    struct.pack_into("<I", buf, offset + size + 1, crc)


# ---------------------------------------------------------------------------------------------
# LevelDB tables


@dataclass
class Block:
    kind: str
    offset: int
    size: int
    ctype: int
    separator: bytes = b""


@dataclass
class TableLayout:
    data: bytes
    meta: Block
    index: Block
    blocks: list[Block] = field(default_factory=list)

    def all_blocks(self) -> list[Block]:
        return [*self.blocks, self.meta, self.index]

    def stored(self, b: Block) -> bytes:
        return self.data[b.offset : b.offset + b.size]

    def contents(self, b: Block) -> bytes:
        raw = self.stored(b)
        return sstable.snappy_decompress(raw, "block") if b.ctype == sstable.SNAPPY_COMPRESSION else raw


def layout(data: bytes) -> TableLayout:
    """Where the blocks of a well-formed table are (the bases are well-formed: sstable checks it)."""
    sstable.read_table(data)
    end = len(data) - FOOTER
    mo, p = read_varint(data, end)
    ms, p = read_varint(data, p)
    io_, p = read_varint(data, p)
    is_, p = read_varint(data, p)
    t = TableLayout(data, Block("metaindex", mo, ms, data[mo + ms]), Block("index", io_, is_, data[io_ + is_]))
    for sep, handle in sstable._parse_block(t.contents(t.index), "index"):
        off, q = read_varint(handle, 0)
        size, _ = read_varint(handle, q)
        t.blocks.append(Block("data", off, size, data[off + size], bytes(sep)))
    return t


def stored_block(contents: bytes, ctype: int = 0) -> bytes:
    """contents + trailer with a correct masked CRC32C, whatever the contents and type."""
    return contents + bytes([ctype]) + struct.pack("<I", sstable.mask(sstable.crc32c(contents + bytes([ctype]))))


def assemble(blocks: list[tuple[bytes, bytes, int]], index_entries=None, meta: bytes | None = None) -> bytes:
    """A table from data blocks given as (separator, stored contents, compression type), each
    with a correct CRC; ``index_entries`` (separator, raw handle bytes) replace the real ones."""
    out = bytearray()
    real_index = []
    for sep, stored, ctype in blocks:
        real_index.append((sep, varint(len(out)) + varint(len(stored))))
        out += stored_block(stored, ctype)
    meta_contents = sstable_writer.encode_block([]) if meta is None else meta
    meta_handle = varint(len(out)) + varint(len(meta_contents))
    out += stored_block(meta_contents)
    index_contents = sstable_writer.encode_block(
        index_entries if index_entries is not None else real_index, restart_interval=1
    )
    index_handle = varint(len(out)) + varint(len(index_contents))
    out += stored_block(index_contents)
    handles = meta_handle + index_handle
    out += handles + bytes(FOOTER - 8 - len(handles)) + struct.pack("<Q", sstable.MAGIC)
    return bytes(out)


def table_from_entries(entries: list[tuple[bytes, bytes]], cut: int = 4096, compress: bool = False) -> bytes:
    """A table of these entries in the order given (not checked: disorder is a mutation), cut
    into blocks of about ``cut`` bytes, Snappy where LevelDB's rule would keep it."""
    blocks, group, size = [], [], 0
    for key, value in entries:
        group.append((key, value))
        size += len(key) + len(value) + 3
        if size >= cut:
            blocks.append(group)
            group, size = [], 0
    if group:
        blocks.append(group)
    out = []
    for group in blocks:
        contents = sstable_writer.encode_block(group)
        ctype = 0
        if compress:
            packed = sstable._SNAPPY.compress(contents, asbytes=True)
            if len(packed) < len(contents) - len(contents) // 8:
                contents, ctype = packed, sstable.SNAPPY_COMPRESSION
        out.append((group[-1][0], contents, ctype))
    return assemble(out)


def entry_fields(contents: bytes) -> list[tuple[int, int, int]]:
    """(position, encoded length, value) of each entry's three varints in a block's contents."""
    n = len(contents)
    num = struct.unpack_from("<I", contents, n - 4)[0]
    limit = n - 4 - 4 * num
    fields, pos = [], 0
    while pos < limit:
        vals = []
        for _ in range(3):
            start = pos
            v, pos = read_varint(contents, pos)
            fields.append((start, pos - start, v))
            vals.append(v)
        pos += vals[1] + vals[2]
    return fields


# ---------------------------------------------------------------------------------------------
# Protobuf (IndexConfig): the fields of a message, recursively where a length-delimited field parses


def proto_fields(buf: bytes, base: int = 0, depth: int = 0, out=None) -> list[tuple[str, int, int, int]]:
    """(kind, absolute position, encoded length, value) of every tag's payload: 'varint',
    'fixed32', 'fixed64' or 'length' (the length prefix; nested messages are walked too)."""
    out = [] if out is None else out
    pos = 0
    try:
        while pos < len(buf):
            tag, pos = read_varint(buf, pos)
            wire = tag & 7
            if tag >> 3 == 0:
                return out
            if wire == 0:
                start = pos
                v, pos = read_varint(buf, pos)
                out.append(("varint", base + start, pos - start, v))
            elif wire == 5:
                out.append(
                    ("fixed32", base + pos, 4, struct.unpack_from("<I", buf, pos)[0] if pos + 4 <= len(buf) else 0)
                )
                pos += 4
            elif wire == 1:
                out.append(("fixed64", base + pos, 8, 0))
                pos += 8
            elif wire == 2:
                start = pos
                n, pos = read_varint(buf, pos)
                out.append(("length", base + start, pos - start, n))
                if depth < 8 and n and pos + n <= len(buf):
                    proto_fields(buf[pos : pos + n], base + pos, depth + 1, out)
                pos += n
            else:
                return out
    except (ValueError, struct.error):
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Flatbuffers (the TFLite model and its metadata): every offset, length and scalar the searcher reads

# table -> {field slot: kind}; kinds: "str", "u8", "u32", "u64", ("tables", table), ("bytes", nested root)
SCHEMA = {
    "Model": {0: "u32", 3: "str", 4: ("tables", "Buffer"), 6: ("tables", "Metadata")},
    "Buffer": {0: ("bytes", None), 1: "u64", 2: "u64"},
    "Metadata": {0: "str", 1: "u32"},
    "ModelMetadata": {
        0: "str",
        1: "str",
        2: "str",
        3: ("tables", "SubGraphMetadata"),
        6: ("tables", "AssociatedFile"),
        7: "str",
    },
    "SubGraphMetadata": {
        0: "str",
        2: ("tables", "TensorMetadata"),
        3: ("tables", "TensorMetadata"),
        4: ("tables", "AssociatedFile"),
    },
    "TensorMetadata": {0: "str", 1: "str", 6: ("tables", "AssociatedFile")},
    "AssociatedFile": {0: "str", 1: "str", 2: "u8", 3: "str", 4: "str"},
}


def _u32(b: bytes, p: int) -> int:
    return struct.unpack_from("<I", b, p)[0]


def flatbuffer_fields(data: bytes) -> list[tuple[str, int, int, int]]:
    """(kind, position, width, value) of the fields of a TFLite model and of its metadata
    flatbuffer (the buffer named TFLITE_METADATA): uoffsets, vtable entries, lengths, scalars."""
    out: list[tuple[str, int, int, int]] = []
    seen = set()
    found: dict[str, int] = {}  # "metadata_buffer": the Buffer table that holds the metadata

    def table(pos: int, name: str, limit: int) -> None:
        if (pos, name) in seen or not 0 <= pos <= limit - 4:
            return
        seen.add((pos, name))
        soff = struct.unpack_from("<i", data, pos)[0]
        out.append(("soffset", pos, 4, soff & 0xFFFFFFFF))
        vt = pos - soff
        if not 0 <= vt <= limit - 4:
            return
        vt_len, tbl_len = struct.unpack_from("<HH", data, vt)
        out.append(("vtable", vt, 2, vt_len))
        out.append(("vtable", vt + 2, 2, tbl_len))
        for slot, kind in SCHEMA[name].items():
            if 4 + 2 * slot + 2 > vt_len:
                continue
            fo = struct.unpack_from("<H", data, vt + 4 + 2 * slot)[0]
            out.append(("vtable", vt + 4 + 2 * slot, 2, fo))
            if not fo:
                continue
            fpos = pos + fo
            if kind in ("u8", "u32", "u64"):
                width = {"u8": 1, "u32": 4, "u64": 8}[kind]
                if fpos + width <= limit:
                    out.append((kind, fpos, width, int.from_bytes(data[fpos : fpos + width], "little")))
                continue
            if fpos + 4 > limit:
                continue
            target = fpos + _u32(data, fpos)
            out.append(("uoffset", fpos, 4, _u32(data, fpos)))
            if target + 4 > limit:
                continue
            n = _u32(data, target)
            out.append(("length", target, 4, n))
            if kind == "str":
                continue
            if kind[0] == "bytes":
                start = target + 4
                if found.get("metadata_buffer") == pos and start + n <= limit:
                    nested(start, start + n)
                continue
            for i in range(min(n, 4096)):
                ep = target + 4 + 4 * i
                if ep + 4 > limit:
                    break
                out.append(("uoffset", ep, 4, _u32(data, ep)))
                table(ep + _u32(data, ep), kind[1], limit)

    def nested(start: int, end: int) -> None:
        if end - start < 8:
            return
        out.append(("uoffset", start, 4, _u32(data, start)))
        root = start + _u32(data, start)
        # Offsets inside the nested buffer are relative to positions in it, as in the outer one.
        table(root, "ModelMetadata", end)

    # Find which Buffer the metadata entry "TFLITE_METADATA" names, then walk everything.
    try:
        root = _u32(data, 0)
        mvt = root - struct.unpack_from("<i", data, root)[0]
        vt_len = struct.unpack_from("<H", data, mvt)[0]

        def field_pos(tpos, vt, vlen, slot):
            if 4 + 2 * slot + 2 > vlen:
                return None
            fo = struct.unpack_from("<H", data, vt + 4 + 2 * slot)[0]
            return tpos + fo if fo else None

        md_vec = field_pos(root, mvt, vt_len, 6)
        buf_vec = field_pos(root, mvt, vt_len, 4)
        if md_vec is not None and buf_vec is not None:
            mv = md_vec + _u32(data, md_vec)
            bv = buf_vec + _u32(data, buf_vec)
            for i in range(_u32(data, mv)):
                m = mv + 4 + 4 * i + _u32(data, mv + 4 + 4 * i)
                m_vt = m - struct.unpack_from("<i", data, m)[0]
                m_len = struct.unpack_from("<H", data, m_vt)[0]
                name_pos = field_pos(m, m_vt, m_len, 0)
                buf_pos = field_pos(m, m_vt, m_len, 1)
                if name_pos is None or buf_pos is None:
                    continue
                s = name_pos + _u32(data, name_pos)
                if data[s + 4 : s + 4 + _u32(data, s)] == b"TFLITE_METADATA":
                    bi = _u32(data, buf_pos)
                    b = bv + 4 + 4 * bi + _u32(data, bv + 4 + 4 * bi)
                    found["metadata_buffer"] = b
        table(root, "Model", len(data))
    except struct.error:
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Zip (the archive after the flatbuffer)


@dataclass
class ZipEntry:
    name: bytes
    central: int  # position of the central directory header
    local: int  # position of the local header
    data: int  # position of the stored data
    size: int


def zip_entries(data: bytes) -> tuple[int, list[ZipEntry]]:
    """(position of the end-of-central-directory record, entries) of the appended stored zip."""
    eocd = data.rfind(b"PK\x05\x06")
    count, cd_size, cd_off = struct.unpack_from("<HII", data, eocd + 10)
    # Offsets count from the archive's start, which is not the file's (the flatbuffer comes first).
    concat = eocd - cd_size - cd_off
    entries, p = [], cd_off + concat
    for _ in range(count):
        csize = struct.unpack_from("<I", data, p + 20)[0]
        nlen, xlen, clen = struct.unpack_from("<HHH", data, p + 28)
        local = struct.unpack_from("<I", data, p + 42)[0] + concat
        name = data[p + 46 : p + 46 + nlen]
        lnlen, lxlen = struct.unpack_from("<HH", data, local + 26)
        entries.append(ZipEntry(name, p, local, local + 30 + lnlen + lxlen, csize))
        p += 46 + nlen + xlen + clen
    return eocd, entries


def zip_fields(data: bytes) -> list[tuple[str, int, int, int]]:
    """(kind, position, width, value) of the zip's size, offset, count and method fields."""
    eocd, entries = zip_entries(data)
    out = []
    for off, width in ((4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2)):
        out.append(("zip-eocd", eocd + off, width, int.from_bytes(data[eocd + off : eocd + off + width], "little")))
    for e in entries:
        for off, width in ((10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4)):
            out.append(
                (
                    "zip-central",
                    e.central + off,
                    width,
                    int.from_bytes(data[e.central + off : e.central + off + width], "little"),
                )
            )
        for off, width in ((8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)):
            out.append(
                (
                    "zip-local",
                    e.local + off,
                    width,
                    int.from_bytes(data[e.local + off : e.local + off + width], "little"),
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# The manifest


class Manifest:
    """Bases (whole files) and cases (a prefix of a base plus patches), with a kind per case."""

    def __init__(self) -> None:
        self.bases: list[bytes] = []
        self.cases: list[tuple[int, int, list[tuple[int, bytes]]]] = []
        self.kinds: list[str] = []
        self.pristine: list[int] = []  # cases that are an unmutated base

    def base(self, data: bytes) -> int:
        self.bases.append(bytes(data))
        return len(self.bases) - 1

    def case(self, kind: str, base: int, length: int | None = None, patches=()) -> None:
        """``patches``: (offset, bytes) overwrites, or (offset, removed, bytes) splices."""
        splices = [p if len(p) == 3 else (p[0], len(p[1]), p[1]) for p in patches]
        self.cases.append((base, len(self.bases[base]) if length is None else length, splices))
        self.kinds.append(kind)

    def variant(self, kind: str, base: int, data: bytes) -> None:
        """``data`` as one splice of ``base`` (their common prefix and suffix are not stored):
        a repacked 800 KB bundle costs the manifest only the bytes that changed."""
        old = self.bases[base]
        n = min(len(old), len(data))
        a, b = np.frombuffer(old, np.uint8), np.frombuffer(data, np.uint8)
        differ = np.flatnonzero(a[:n] != b[:n])
        prefix = int(differ[0]) if len(differ) else n
        rest = n - prefix  # the suffix may not overlap the prefix in either
        differ = np.flatnonzero(a[len(a) - rest :][::-1] != b[len(b) - rest :][::-1]) if rest else []
        suffix = int(differ[0]) if len(differ) else rest
        self.case(kind, base, None, [(prefix, len(old) - prefix - suffix, data[prefix : len(data) - suffix])])

    def write(self, path: Path) -> None:
        with open(path, "wb") as out:
            out.write(b"SLFUZZ2\n" + struct.pack("<I", len(self.bases)))
            for b in self.bases:
                out.write(struct.pack("<Q", len(b)) + b)
            out.write(struct.pack("<I", len(self.cases)))
            for base, length, patches in self.cases:
                out.write(struct.pack("<IQI", base, length, len(patches)))
                for off, removed, data in patches:
                    out.write(struct.pack("<QQI", off, removed, len(data)) + data)


def _field_values(kind: str, width: int, value: int, pos: int, total: int) -> list[int]:
    """Edge values for a field of ``width`` bytes at ``pos`` in a file of ``total`` bytes."""
    mask = (1 << (8 * width)) - 1
    cands = {
        0,
        1,
        mask,
        mask >> 1,
        value + 1,
        value - 1,
        value * 2,
        value + 4,
        value - 4,
        total,
        total - pos,
        total - pos - 1,
        total - pos + 1,
        0x10000 if width >= 4 else 0xFF,
    }
    if kind in ("u8",):
        cands |= {2, 3, 5, 6, 7, 127, 255}
    cands = sorted(c & mask for c in cands if c != value)
    return cands


def _set_int(pos: int, width: int, value: int) -> tuple[int, bytes]:
    return pos, (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")


def ldb_same_length(data: bytes, rng, n: int) -> list[tuple[str, bytes]]:
    """Mutations that keep the table's length (so they can be patched into a bundle): byte flips
    inside a block with its CRC recomputed, restart arrays, compression types."""
    t = layout(data)
    blocks = t.all_blocks()
    out = []
    for i in range(n):
        buf = bytearray(data)
        b = blocks[int(rng.integers(len(blocks)))]
        choice = i % 4
        if choice in (0, 1) and b.size:
            for _ in range(int(rng.integers(1, 4))):
                p = b.offset + int(rng.integers(b.size))
                buf[p] ^= int(rng.integers(1, 256))
            kind = "ldb-flip-crc-fixed"
        elif choice == 2 and b.ctype == 0 and b.size >= 8:
            n_restarts = struct.unpack_from("<I", buf, b.offset + b.size - 4)[0]
            which = int(rng.integers(3))
            if which == 0:
                v = int(
                    rng.choice(
                        [
                            0,
                            1,
                            2,
                            n_restarts + 1,
                            (b.size - 4) // 4,
                            (b.size - 4) // 4 + 1,
                            0x7FFFFFFF,
                            0xFFFFFFFF,
                            0x40000000,
                        ]
                    )
                )
                struct.pack_into("<I", buf, b.offset + b.size - 4, v)
            elif n_restarts and 4 * n_restarts <= b.size - 4:
                r = b.offset + b.size - 4 - 4 * n_restarts + 4 * int(rng.integers(n_restarts))
                struct.pack_into(
                    "<I", buf, r, int(rng.choice([1, b.size - 4, b.size, b.size - 5, 0xFFFFFFFF, 0x80000000]))
                )
            kind = "ldb-restarts-crc-fixed"
        else:
            buf[b.offset + b.size] = int(rng.choice([0, 1, 2, 3, 0x80, 0xFF]))
            kind = "ldb-compression-type-crc-fixed"
        fix_block_crc(buf, b.offset, b.size)
        if bytes(buf) != data:
            out.append((kind, bytes(buf)))
    return out


Splice = tuple[int, int, bytes]  # (offset, bytes removed, bytes inserted)


def apply_splices(data: bytes, splices: list[Splice]) -> bytes:
    """The bytes the driver builds from ``data`` and these splices (applied in order)."""
    out = bytes(data)
    for off, removed, ins in splices:
        out = out[:off] + ins + out[off + removed :]
    return out


def _tail(t: TableLayout, meta_offset: int, index_entries: list[tuple[bytes, bytes]]) -> bytes:
    """Metaindex, index block and footer for a table whose metaindex starts at ``meta_offset``."""
    meta = t.contents(t.meta)
    index = sstable_writer.encode_block(index_entries, restart_interval=1)
    index_offset = meta_offset + len(meta) + sstable.TRAILER_SIZE
    handles = varint(meta_offset) + varint(len(meta)) + varint(index_offset) + varint(len(index))
    return (
        stored_block(meta)
        + stored_block(index)
        + handles
        + bytes(FOOTER - 8 - len(handles))
        + struct.pack("<Q", sstable.MAGIC)
    )


def _handles(t: TableLayout, shift_after: int = -1, delta: int = 0, resized: tuple[int, int] | None = None):
    entries = []
    for j, b in enumerate(t.blocks):
        size = resized[1] if resized and resized[0] == j else b.size
        entries.append((b.separator, varint(b.offset + (delta if j > shift_after else 0)) + varint(size)))
    return entries


def replace_block(
    t: TableLayout, i: int, contents: bytes, ctype: int = 0, separator: bytes | None = None
) -> list[Splice]:
    """Splices that give data block ``i`` new contents (a correct CRC) and rewrite the index
    block and footer to match, leaving every other block's bytes as they are: a mutated 4 MB
    table costs the manifest one block and its tail, not 4 MB."""
    b = t.blocks[i]
    new = stored_block(contents, ctype)
    delta = len(new) - (b.size + sstable.TRAILER_SIZE)
    entries = _handles(t, shift_after=i, delta=delta, resized=(i, len(contents)))
    if separator is not None:
        entries[i] = (separator, entries[i][1])
    tail = _tail(t, t.meta.offset + delta, entries)
    return [(t.meta.offset, len(t.data) - t.meta.offset, tail), (b.offset, b.size + sstable.TRAILER_SIZE, new)]


def replace_index(t: TableLayout, entries: list[tuple[bytes, bytes]]) -> list[Splice]:
    return [(t.meta.offset, len(t.data) - t.meta.offset, _tail(t, t.meta.offset, entries))]


def _block_entries(t: TableLayout, i: int) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k, v in sstable._parse_block(t.contents(t.blocks[i]), "block")]


def _block_of(t: TableLayout, key: bytes) -> int | None:
    return next((i for i, b in enumerate(t.blocks) if key <= b.separator), None)


def ldb_rebuilt(data: bytes, rng, n: int) -> list[tuple[str, list[Splice]]]:
    """Mutations that change the table's length, all with correct CRCs: entry varints, block
    handles, footer handles, Snappy streams, IndexConfig fields, missing, extra, disordered and
    resized keys and values. Each is a list of splices of ``data``."""
    t = layout(data)
    ends = [b.offset + b.size + sstable.TRAILER_SIZE for b in t.blocks]
    if not t.blocks or [b.offset for b in t.blocks[1:]] != ends[:-1] or t.meta.offset != ends[-1]:
        return []  # not laid out as LevelDB writes tables: the splices below assume it
    out: list[tuple[str, list[Splice]]] = []
    config_block = _block_of(t, b"INDEX_CONFIG")
    config_entries = _block_entries(t, config_block) if config_block is not None else []
    config_at = next((j for j, (k, _) in enumerate(config_entries) if k == b"INDEX_CONFIG"), None)
    # A config of megabytes (thousands of centroids) would cost the manifest megabytes per case;
    # its parser is the one the smaller tables' configs exercise.
    small = config_at is not None and len(config_entries[config_at][1]) <= CONFIG_MUTATION_LIMIT
    config_fields = proto_fields(config_entries[config_at][1]) if small else []
    for i in range(n):
        choice = i % 8
        bi = int(rng.integers(len(t.blocks)))
        try:
            if choice == 0:  # one entry varint of a data block set to an edge value
                contents = t.contents(t.blocks[bi])
                fields = entry_fields(contents)
                pos, width, _ = fields[int(rng.integers(len(fields)))]
                new = contents[:pos] + varint(int(rng.choice(BOUNDARY))) + contents[pos + width :]
                out.append(("ldb-entry-varint", replace_block(t, bi, new)))
            elif choice == 1:  # a block handle in the index block
                entries = _handles(t)
                off, size = t.blocks[bi].offset, t.blocks[bi].size
                edges = [0, 1, len(data), len(data) - FOOTER, size + 1, size - 1, off + 1, *BOUNDARY[14:]]
                if rng.integers(2):
                    off = int(rng.choice(edges))
                else:
                    size = int(rng.choice(edges))
                entries[bi] = (entries[bi][0], varint(off) + varint(size))
                out.append(("ldb-block-handle", replace_index(t, entries)))
            elif choice == 2:  # the footer's handles
                handles = [t.meta.offset, t.meta.size, t.index.offset, t.index.size]
                handles[int(rng.integers(4))] = int(
                    rng.choice([0, 1, len(data), len(data) - FOOTER, len(data) - FOOTER - 1, *BOUNDARY[12:]])
                )
                enc = b"".join(varint(h) for h in handles)
                out.append(("ldb-footer-handle", [(len(data) - FOOTER, 40, enc + bytes(40 - len(enc)))]))
            elif choice == 3:  # a Snappy block: its declared length, its elements, or garbage
                contents = t.contents(t.blocks[bi])
                packed = sstable._SNAPPY.compress(contents, asbytes=True)
                _, p = read_varint(packed, 0)
                what = int(rng.integers(3))
                if what == 0:
                    packed = (
                        varint(
                            int(
                                rng.choice(
                                    [
                                        0,
                                        1,
                                        len(contents) - 1,
                                        len(contents) + 1,
                                        64 * len(packed),
                                        64 * len(packed) + 1,
                                        0xFFFFFFFF,
                                        1 << 40,
                                    ]
                                )
                            )
                        )
                        + packed[p:]
                    )
                elif what == 1:
                    packed = bytearray(packed)
                    for _ in range(int(rng.integers(1, 4))):
                        q = p + int(rng.integers(max(len(packed) - p, 1)))
                        if q < len(packed):
                            packed[q] ^= int(rng.integers(1, 256))
                    packed = bytes(packed)
                else:
                    packed = packed[: max(p, int(rng.integers(len(packed))))]
                out.append(("ldb-snappy", replace_block(t, bi, packed, sstable.SNAPPY_COMPRESSION)))
            elif choice in (4, 5) and config_fields:  # an IndexConfig field
                value = config_entries[config_at][1]
                kind, pos, width, v = config_fields[int(rng.integers(len(config_fields)))]
                if kind == "fixed32":
                    new = struct.pack(
                        "<f", float(rng.choice([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-30, 1e30, 2.0, 0.5]))
                    )
                elif kind == "fixed64":
                    new = bytes(8) if rng.integers(2) else b"\xff" * 8
                else:
                    new = varint(int(rng.choice([*BOUNDARY, v + 1, max(v - 1, 0), v * 2])))
                entries = list(config_entries)
                entries[config_at] = (b"INDEX_CONFIG", value[:pos] + new + value[pos + width :])
                out.append(("ldb-index-config", replace_block(t, config_block, sstable_writer.encode_block(entries))))
            elif choice == 6:  # keys: drop one, duplicate one, swap two, add strays, or drop a vital one
                what = int(rng.integers(5))
                if what == 4:
                    name = [b"INDEX_CONFIG", b"E_0", b"M_0", b"USER_INFO"][int(rng.integers(4))]
                    bi = _block_of(t, name)
                    if bi is None:
                        continue
                entries = _block_entries(t, bi)
                j = int(rng.integers(len(entries)))
                if what == 0 and len(entries) > 1:
                    del entries[j]
                elif what == 1:
                    entries.insert(j, entries[j])
                elif what == 2 and len(entries) > 1:
                    k = int(rng.integers(len(entries)))
                    entries[j], entries[k] = entries[k], entries[j]
                elif what == 3:
                    entries.insert(0, (b"E_99999999999999999999", b"\x00" * 8))
                    entries.append((entries[-1][0] + b"~", b"x"))
                elif what == 4:
                    entries = [kv for kv in entries if kv[0] != name]
                if not entries:
                    continue
                out.append(
                    (
                        "ldb-keys",
                        replace_block(
                            t, bi, sstable_writer.encode_block(entries), separator=max(k for k, _ in entries)
                        ),
                    )
                )
            else:  # a value resized: one byte short or long, emptied, halved, doubled
                entries = _block_entries(t, bi)
                j = int(rng.integers(len(entries)))
                k, v = entries[j]
                entries[j] = (k, [v[:-1], v + b"\x00", b"", v[: len(v) // 2], v * 2][int(rng.integers(5))])
                contents, ctype = sstable_writer.encode_block(entries), 0
                if rng.integers(2):
                    packed = sstable._SNAPPY.compress(contents, asbytes=True)
                    if len(packed) < len(contents) - len(contents) // 8:
                        contents, ctype = packed, sstable.SNAPPY_COMPRESSION
                out.append(("ldb-value-size", replace_block(t, bi, contents, ctype)))
        except (ValueError, IndexError, struct.error):
            continue
    return out


def ldb_cases(m: Manifest, data: bytes, seed: int, per_kind: int) -> None:
    """Pristine, truncated, flipped (with and without CRC repair) and rebuilt variants of a table."""
    rng = np.random.default_rng(seed)
    base = m.base(data)
    m.case("pristine", base)
    m.pristine.append(len(m.cases) - 1)
    per_kind = max(per_kind // 10, min(per_kind, per_kind * FULL_RATE_BYTES // max(len(data), 1)))
    t = layout(data)
    size = len(data)
    points = {0, 1, 4, 7, 8, 47, 48, 49, size - 1, size - 4, size - 8, size - 9}
    points |= set(range(max(size - FOOTER - 8, 0), size, 3))
    blocks = t.all_blocks()
    for j in sorted({*range(min(len(blocks), 4)), *(int(x) for x in rng.integers(0, len(blocks), per_kind // 4))}):
        b = blocks[j]  # the first blocks, the metaindex and index blocks, and a sample of the rest
        points |= {b.offset, b.offset + 1, b.offset + b.size - 1, b.offset + b.size, b.offset + b.size + 4}
    for b in (t.meta, t.index):
        points |= {b.offset, b.offset + 1, b.offset + b.size - 1, b.offset + b.size, b.offset + b.size + 4}
    points |= {int(x) for x in rng.integers(0, size, per_kind)}
    for p in sorted(x for x in points if 0 <= x < size):
        m.case("ldb-truncated", base, p)
    for _ in range(per_kind):  # raw flips: most die at the CRC, the footer or the magic
        patches = [
            (int(rng.integers(size)), bytes([int(rng.integers(1, 256))])) for _ in range(int(rng.integers(1, 4)))
        ]
        patches = [(p, bytes([data[p] ^ x[0]])) for p, x in patches]
        m.case("ldb-flip", base, None, patches)
    for kind, mutated in ldb_same_length(data, rng, 2 * per_kind):
        m.variant(kind, base, mutated)
    for kind, splices in ldb_rebuilt(data, rng, 4 * per_kind):
        m.case(kind, base, None, splices)


def bundle_cases(m: Manifest, data: bytes, seed: int, per_kind: int) -> None:
    """Pristine, truncated, flatbuffer-, zip- and index-mutated variants of a bundle (patches on
    one base; an index whose length changes is repacked into a new bundle)."""
    rng = np.random.default_rng(seed)
    base = m.base(data)
    m.case("pristine", base)
    m.pristine.append(len(m.cases) - 1)
    size = len(data)
    eocd, entries = zip_entries(data)
    flat = flatbuffer_fields(data)
    zipf = zip_fields(data)
    points = {0, 1, 4, 8, 16, 100, size - 1, size - 22, eocd, eocd + 1}
    for e in entries:
        points |= {
            e.central,
            e.central + 30,
            e.local,
            e.local + 30,
            e.data,
            e.data + 1,
            e.data + e.size - 1,
            e.data + e.size,
            e.data + e.size - FOOTER,
        }
    for _, pos, _, _ in flat[:: max(len(flat) // per_kind, 1)]:
        points.add(pos)
    points |= {int(x) for x in rng.integers(0, size, per_kind // 2)}
    for p in sorted(x for x in points if 0 <= x < size):
        m.case("bundle-truncated", base, p)
    for fields, kind, count in ((flat, "bundle-flatbuffer", 3 * per_kind), (zipf, "bundle-zip", 2 * per_kind)):
        for _ in range(count):
            fkind, pos, width, value = fields[int(rng.integers(len(fields)))]
            vals = _field_values(fkind, width, value, pos, size)
            m.case(kind, base, None, [_set_int(pos, width, int(rng.choice(vals)))])
    for _ in range(per_kind // 2):  # renaming the index's entry: the metadata names a missing file
        e = entries[int(rng.integers(len(entries)))]
        p = e.central + 46 + int(rng.integers(max(len(e.name), 1)))
        m.case("bundle-zip-name", base, None, [(p, bytes([data[p] ^ 0x20]))])
    flatbuffer, files = tflite_zip.split(data)
    for idx, (name, ldb) in enumerate(files):
        try:
            layout(ldb)
        except Exception:  # noqa: BLE001 - a vocabulary or label file, not an index
            continue
        e = next(e for e in entries if e.name == name.encode())
        for kind, mutated in ldb_same_length(ldb, rng, per_kind):
            crc = struct.pack("<I", zlib.crc32(mutated))  # the zip's own CRC-32 stays right
            patches = [(e.data + i, mutated[i : i + 1]) for i in range(len(ldb)) if mutated[i] != ldb[i]]
            m.case("bundle-" + kind, base, None, patches + [(e.central + 16, crc), (e.local + 14, crc)])
        for kind, splices in ldb_rebuilt(ldb, rng, per_kind // 2):
            files2 = list(files)
            files2[idx] = (name, apply_splices(ldb, splices))
            m.variant("bundle-" + kind, base, tflite_zip.join(flatbuffer, files2))
    for _ in range(per_kind // 2):  # raw flips, most in the weights or the headers
        region = int(rng.integers(3))
        lo, hi = [(0, min(size, 4096)), (max(eocd - 4096, 0), size), (0, size)][region]
        p = int(rng.integers(lo, hi))
        m.case("bundle-flip", base, None, [(p, bytes([data[p] ^ int(rng.integers(1, 256))]))])


def build_manifest(out: Path, ldbs: list[bytes], bundles: list[bytes], seed: int = 22, per_kind: int = 40) -> Manifest:
    """Every case for these tables and bundles, written to ``out`` (deterministic for a seed)."""
    m = Manifest()
    for i, data in enumerate(ldbs):
        ldb_cases(m, data, seed * 1000 + i, per_kind)
    for i, data in enumerate(bundles):
        bundle_cases(m, data, seed * 1000 + 500 + i, per_kind)
    m.write(out)
    return m
