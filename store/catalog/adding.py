"""Adding to a catalog: every batch of an input checked, compared with the live items, and written as one commit.

A batch's changed rows become one new segment (written and fsynced first); the items, the replaced rows' removal
and the commit's summary go into one SQLite transaction, so a crash or an error leaves the last committed state
(docs/schema.md). Unchanged rows are skipped; nothing changed means nothing committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scannlite.store.catalog.batch import Batch, content_hash
from scannlite.store.catalog.segments import write_segment
from scannlite.store.catalog.sql import execute_in, select_in
from scannlite.store.errors import InvalidInput

if TYPE_CHECKING:
    from scannlite.store.catalog.catalog import Catalog


@dataclass
class AddResult:
    added: int
    updated: int
    unchanged: int
    seq: int | None  # None when nothing changed and nothing was committed


class _NothingChanged(Exception):
    """Every row of an add was unchanged: roll its commit back."""


def add_stream(cat: Catalog, batches: Iterable[Batch]) -> AddResult:
    """Upsert every batch as one commit. Batches are consumed one at a time (each checked,
    compared with the live items and written as its own segment), so a file of any size
    is added in one chunk's memory; the items go into the one open transaction (so the
    writer lock is held while the input is read). Any error, in any batch, rolls everything
    back, and the segments written so far are removed."""
    written: list[Path] = []
    seq = None
    with cat.writing():
        try:
            with cat.transaction():
                seq = cat.new_commit("add", {})
                added = updated = unchanged = 0
                segments, before, count = [], None, 0
                for batch in batches:
                    if before is not None:  # validate() checked each batch alone; this, across them
                        _check_seen(cat, before, batch)
                    a, u, c, seg = _add_one(cat, batch, seq, written)
                    added, updated, unchanged = added + a, updated + u, unchanged + c
                    if seg is not None:
                        segments.append(seg)
                    before, count = batch, count + 1
                if not added + updated + unchanged:
                    raise InvalidInput("the input holds no rows")
                if not segments:
                    raise _NothingChanged
                if count > 1:
                    cat._conn.execute("DELETE FROM add_seen")  # a failed add's rows roll back instead
                cat._conn.execute(
                    "UPDATE commits SET summary = ? WHERE seq = ?",
                    (
                        json.dumps(
                            {"added": added, "updated": updated, "unchanged": unchanged, "segments": segments},
                            sort_keys=True,
                        ),
                        seq,
                    ),
                )
        except _NothingChanged:
            return AddResult(0, 0, unchanged, None)
        except BaseException:
            # Never referenced, since the transaction rolled back; unless the interruption
            # came just after COMMIT, when they belong to a committed add and must stay.
            if seq is None or cat._conn.execute("SELECT 1 FROM commits WHERE seq = ?", (seq,)).fetchone() is None:
                for path in written:
                    path.unlink(missing_ok=True)
            raise
        return AddResult(added, updated, unchanged, seq)


def _check_seen(cat: Catalog, before: Batch, batch: Batch) -> None:
    """Refuse an id of ``batch`` that an earlier batch of the same input held, whether or
    not that copy changed anything. The ids go into a temp table, empty between adds (a
    failed add's rows roll back with it), filled one batch behind, so a one-batch add never
    touches it."""
    cat._conn.execute("CREATE TEMP TABLE IF NOT EXISTS add_seen(id TEXT PRIMARY KEY, row INTEGER)")
    cat._conn.executemany(
        "INSERT INTO add_seen(id, row) VALUES (?, ?)",
        ((ident, before.first_row + i) for i, ident in enumerate(before.ids)),
    )
    found = next(select_in(cat._conn, "SELECT id, row FROM add_seen WHERE id IN ({marks})", batch.ids), None)
    if found is not None:
        row = batch.first_row + batch.ids.index(found[0])
        raise InvalidInput(f"id {found[0]!r} appears twice in the input (rows {found[1]} and {row})")


def _add_one(cat: Catalog, batch: Batch, seq: int, written: list[Path]) -> tuple[int, int, int, str | None]:
    """One batch inside :meth:`add_stream`'s transaction: (added, updated, unchanged, segment)."""
    hashes = [content_hash(v, m) for v, m in zip(batch.vectors, batch.metadata)]
    existing = live_rows(cat, batch.ids)
    keep, replaced = [], []
    for i, ident in enumerate(batch.ids):
        old = existing.get(ident)
        if old is None:
            keep.append(i)
        elif old[1] != hashes[i]:
            keep.append(i)
            replaced.append(old[0])
    if not keep:
        return 0, 0, len(batch), None
    seg = write_segment(cat.path, [batch.ids[i] for i in keep], batch.vectors[keep], written)
    cur = cat._conn.execute(
        "INSERT INTO segments(path, rows, bytes, sha256, created_seq) VALUES (?, ?, ?, ?, ?)",
        (seg.path, seg.rows, seg.bytes, seg.sha256, seq),
    )
    segment_id = cur.lastrowid
    execute_in(cat._conn, "UPDATE items SET removed_seq = ? WHERE item IN ({marks})", replaced, before=[seq])
    cat._conn.executemany(
        "INSERT INTO items(id, metadata, content_hash, source_hash, segment_id, segment_row, added_seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                batch.ids[i],
                batch.metadata[i],
                hashes[i],
                batch.source_hashes[i] if batch.source_hashes else None,
                segment_id,
                row,
                seq,
            )
            for row, i in enumerate(keep)
        ),
    )
    return len(keep) - len(replaced), len(replaced), len(batch) - len(keep), seg.path


def live_rows(cat: Catalog, ids: list[str]) -> dict[str, tuple[int, str]]:
    rows = select_in(
        cat._conn, "SELECT id, item, content_hash FROM items WHERE removed_seq IS NULL AND id IN ({marks})", ids
    )
    return {ident: (item, h) for ident, item, h in rows}
