"""A delta-friendly layout for the on-device index: what stays put when a snapshot grows a little.

tflite-support's builder numbers results densely: the i-th point of leaf p is ``M_<offsets[p]+i>``
with ``offsets`` the running count. One item added to leaf 0 then renumbers every later item,
so nearly every metadata entry of the file changes key, and a binary patch between two
snapshots costs about 5% of the bundle however small the change (docs/delta-bundles.md).

The Task Library only adds ``global_partition_offsets[p]`` to a row number to find ``M_<id>``
(docs/ondevice-format.md 1.4, 3.3); it never checks that the offsets are a running
count. So scannlite's writer (:mod:`.index_writer`) numbers items with **slotted** ids: each
leaf owns a range with room to grow (:func:`slotted_offsets`), and the next export reuses the
base bundle's ranges while every leaf still fits, so existing items keep their ids and their
metadata entries their keys. Metadata blocks end where the keys say (a hash of the key), not
every 4 KiB, so an inserted entry changes its own block and not every block after it
(:func:`cut_blocks`).

Everything else is as the builder writes it: the same keys and values (tests/test_index_writer.py
compares the two tables), and LevelDB's Snappy rule for every block but the metadata blocks,
which stay raw by default (a compressed block shares no bytes with its previous version).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from scannlite.store.bundle.ondevice.sstable import crc32c

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
#: ``slots`` gives each leaf room to grow; ``blocks`` are :func:`cut_blocks`' options.
#: "builder" is tflite-support's own index builder, run in a device process (the whole index in
#: its memory several times over: for comparison, not for large catalogs).
LAYOUTS: dict[str, dict | None] = {
    "builder": None,
    "dense+content": {"slots": False, "blocks": {"blocks": "content"}},
    "slotted+leveldb": {"slots": True, "blocks": {"blocks": "leveldb"}},
    "slotted+content+snappy": {"slots": True, "blocks": {"blocks": "content", "compress_metadata": True}},
    "slotted+content": {"slots": True, "blocks": {"blocks": "content"}},
}
DEFAULT_LAYOUT = "slotted+content"


def room_for(size: int) -> int:
    return max(SLACK_FLOOR, math.ceil(size * SLACK_SHARE))


def slotted_offsets(
    sizes: list[int], previous: list[int] | None = None, slack: bool = True
) -> tuple[list[int], int | None]:
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
    for p, _size in enumerate(sizes):
        if moved is None and previous is not None:  # moved starts as None only with previous
            if p == 0 or offsets[p - 1] + sizes[p - 1] <= previous[p]:
                offsets.append(previous[p])
                continue
            moved = p
        offsets.append(offsets[p - 1] + sizes[p - 1] + room(sizes[p - 1]) if p else 0)
    return offsets, moved


def _key_hash(key: bytes) -> int:
    return crc32c(key)


def _content_blocks(entries: Iterable[tuple[bytes, bytes]], compress_metadata: bool) -> Iterator[tuple]:
    """Every ``E_p``, INDEX_CONFIG and USER_INFO in a block of its own (Snappy by LevelDB's
    rule); runs of metadata entries cut where a key's hash says, so an inserted entry changes
    its own block and not every block after it."""
    current: list = []
    restarts: list[int] = []
    for key, value in entries:
        if not key.startswith(b"M_"):
            if current:
                yield current, restarts, compress_metadata
                current, restarts = [], []
            yield [(key, value)], None, True
            continue
        h = _key_hash(key)
        if not current or h % RESTART_EVERY == 0:
            restarts.append(len(current))
        current.append((key, value))
        if h % BLOCK_EVERY == 0 or len(current) >= MAX_BLOCK_ENTRIES:
            yield current, restarts, compress_metadata
            current, restarts = [], []
    if current:
        yield current, restarts, compress_metadata


def _leveldb_blocks(entries: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple]:
    """LevelDB's own cut: a block ends once it holds 4 KiB (TableBuilder's default)."""
    current, size = [], 0
    for key, value in entries:
        current.append((key, value))
        size += len(key) + len(value) + 3
        if size + 4 * (len(current) // 16 + 1) >= LEVELDB_BLOCK_SIZE:
            yield current, None, True
            current, size = [], 0
    if current:
        yield current, None, True


def cut_blocks(
    entries: Iterable[tuple[bytes, bytes]], *, blocks: str = "content", compress_metadata: bool = False
) -> Iterator[tuple]:
    """The data blocks, as ``(entries, restarts, compress)``, of a table holding ``entries``
    (in key order, consumed lazily).

    ``blocks``: "content" (see :func:`_content_blocks`) or "leveldb" (4 KiB blocks, as the
    builder cuts them). ``compress_metadata``: Snappy for metadata blocks (LevelDB's rule); off
    by default because a compressed block shares no bytes with its previous version once one
    entry is inserted."""
    if blocks == "leveldb":
        return _leveldb_blocks(entries)
    if blocks != "content":
        raise ValueError(f"blocks must be 'content' or 'leveldb', got {blocks!r}")
    return _content_blocks(entries, compress_metadata)
