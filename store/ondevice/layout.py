"""A delta-friendly layout for the on-device index: what stays put when a snapshot grows a little.

tflite-support's builder numbers results densely: the i-th point of leaf p is ``M_<offsets[p]+i>``
with ``offsets`` the running count. One item added to leaf 0 then renumbers every later item,
so nearly every metadata entry of the file changes key, and a binary patch between two
snapshots costs about 5% of the bundle however small the change (docs/delta-bundles.md).

The Task Library only adds ``global_partition_offsets[p]`` to a row number to find ``M_<id>``
(../shared/docs/ondevice-format.md 1.4, 3.3); it never checks that the offsets are a running
count. So :func:`relayout` rewrites the builder's table with **slotted** ids: each leaf owns a
range with room to grow (:func:`slotted_offsets`), and the next export reuses the base
bundle's ranges while every leaf still fits, so existing items keep their ids and their
metadata entries their keys. Metadata blocks end where the keys say (a hash of the key), not
every 4 KiB, so an inserted entry changes its own block and not every block after it.

Everything else is the builder's: the same values, LevelDB's Snappy rule per block.
"""
from __future__ import annotations

import math

from .index_file import CONFIG_KEY, USER_INFO_KEY, read_index
from .protos import decode_index_config
from .sstable import crc32c, write_table

#: Room each leaf gets for items added later, as a share of its size (plus a floor for small
#: leaves). Ids cost nothing on the device (they are only key names), so the slack is generous:
#: a leaf may grow by a quarter before the ids of the leaves after it move.
SLACK_SHARE = 0.25
SLACK_FLOOR = 16
#: Content-defined metadata blocks: a key whose hash is 0 modulo this ends a block (mean 64
#: entries, about 1.3 KB of ids); every 16th by the same hash starts a restart point.
BLOCK_EVERY = 64
RESTART_EVERY = 16
MAX_BLOCK_ENTRIES = 1024
LEVELDB_BLOCK_SIZE = 4096

#: The layouts an export can ask for, to measure what each choice buys (bench/delta_bundles.py):
#: ``slots`` gives each leaf room to grow; ``relayout`` are :func:`relayout`'s options.
#: "builder" keeps tflite-support's table as it is.
LAYOUTS: dict[str, dict | None] = {
    "builder": None,
    "dense+content": {"slots": False, "relayout": {"blocks": "content"}},
    "slotted+leveldb": {"slots": True, "relayout": {"blocks": "leveldb"}},
    "slotted+content+snappy": {"slots": True, "relayout": {"blocks": "content", "compress_metadata": True}},
    "slotted+content": {"slots": True, "relayout": {"blocks": "content"}},
}
DEFAULT_LAYOUT = "slotted+content"


def room_for(size: int) -> int:
    return max(SLACK_FLOOR, math.ceil(size * SLACK_SHARE))


def slotted_offsets(sizes: list[int], previous: list[int] | None = None,
                    slack: bool = True) -> tuple[list[int], int | None]:
    """First id of each leaf, and the first leaf whose ids moved relative to ``previous``
    (None when every leaf kept its range).

    With ``previous`` (the base bundle's offsets, same number of leaves), each leaf keeps its
    start while the leaf before it still ends before it; from the first one that does not, ranges
    are laid out afresh, so only the ids from there on change. ``slack=False``: the builder's
    running count (no room), for comparison."""
    room = room_for if slack else (lambda size: 0)
    if previous is not None and len(previous) != len(sizes):
        previous = None  # a retrained partition model: nothing to keep
    offsets: list[int] = []
    moved: int | None = 0 if previous is None else None
    for p, size in enumerate(sizes):
        if moved is None:
            if p == 0 or offsets[p - 1] + sizes[p - 1] <= previous[p]:
                offsets.append(previous[p])
                continue
            moved = p
        offsets.append(offsets[p - 1] + sizes[p - 1] + room(sizes[p - 1]) if p else 0)
    return offsets, moved


def _key_hash(key: bytes) -> int:
    return crc32c(key)


def _content_blocks(entries: list[tuple[bytes, bytes]], compress: bool) -> list:
    blocks, current, restarts = [], [], []
    for key, value in entries:
        h = _key_hash(key)
        if not current or h % RESTART_EVERY == 0:
            restarts.append(len(current))
        current.append((key, value))
        if h % BLOCK_EVERY == 0 or len(current) >= MAX_BLOCK_ENTRIES:
            blocks.append((current, restarts, compress))
            current, restarts = [], []
    if current:
        blocks.append((current, restarts, compress))
    return blocks


def _leveldb_blocks(entries: list[tuple[bytes, bytes]]) -> list:
    """LevelDB's own cut: a block ends once it holds 4 KiB (TableBuilder's default)."""
    blocks, current, size = [], [], 0
    for key, value in entries:
        current.append((key, value))
        size += len(key) + len(value) + 3
        if size + 4 * (len(current) // 16 + 1) >= LEVELDB_BLOCK_SIZE:
            blocks.append((current, None, True))
            current, size = [], 0
    if current:
        blocks.append((current, None, True))
    return blocks


def relayout(index: bytes, offsets: list[int], *, blocks: str = "content", compress_metadata: bool = False) -> bytes:
    """The builder's ``index`` with leaf p's items numbered from ``offsets[p]``.

    ``blocks``: "content" (every ``E_p``, INDEX_CONFIG and USER_INFO in a block of its own,
    metadata blocks cut by key hash) or "leveldb" (4 KiB blocks, as the builder cuts them).
    ``compress_metadata``: Snappy for metadata blocks (LevelDB's rule); off by default because
    a compressed block shares no bytes with its previous version once one entry is inserted.
    """
    built = read_index(index)
    sizes = built.partition_sizes
    if len(offsets) != len(sizes):
        raise ValueError(f"{len(offsets)} offsets for {len(sizes)} partitions")
    for p in range(1, len(sizes)):
        if offsets[p] < offsets[p - 1] + sizes[p - 1]:
            raise ValueError(f"partition {p} starts at id {offsets[p]}, inside partition {p - 1}")
    config = decode_index_config(built.table[CONFIG_KEY])
    del config.global_partition_offsets[:]
    config.global_partition_offsets.extend(int(o) for o in offsets)
    parts = [(b"E_%d" % p, built.table[b"E_%d" % p]) for p in range(len(sizes))]
    rows = [0]
    for size in sizes:
        rows.append(rows[-1] + size)
    # built.metadata is per row, in partition order: row rows[p] + i is leaf p's i-th item.
    meta = [(b"M_%d" % (offsets[p] + i), built.metadata[rows[p] + i] or b"")
            for p in range(len(sizes)) for i in range(sizes[p])]
    tail = [(CONFIG_KEY, config.SerializeToString())]
    if built.has_user_info:
        tail.append((USER_INFO_KEY, built.user_info))
    entries = sorted(parts + meta + tail)
    if blocks == "leveldb":
        return write_table(_leveldb_blocks(entries))
    if blocks != "content":
        raise ValueError(f"blocks must be 'content' or 'leveldb', got {blocks!r}")
    out, run = [], []
    for key, value in entries:
        if key.startswith(b"M_"):
            run.append((key, value))
            continue
        if run:
            out += _content_blocks(run, compress_metadata)
            run = []
        out.append(([(key, value)], None, True))
    if run:
        out += _content_blocks(run, compress_metadata)
    return write_table(out)

