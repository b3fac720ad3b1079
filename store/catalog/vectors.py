"""Where a catalog's vectors are stored: the segment row groups that hold a set of items.

Reads go one Parquet row group at a time in storage order, so a pass over millions of vectors stays in the memory
of one group (docs/schema.md: items name their segment and row).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from scannlite.store.catalog.segments import RowGroupRead, row_group_starts
from scannlite.store.catalog.sql import select_in
from scannlite.store.errors import ScannliteError

if TYPE_CHECKING:
    from scannlite.store.catalog.catalog import Catalog


def vector_reads(cat: Catalog, items: np.ndarray) -> Iterator[RowGroupRead]:
    """Where the vectors of the sorted, distinct ``items`` are stored, one
    :class:`~.segments.RowGroupRead` per segment row group that holds any of them."""
    wanted = np.asarray(items, dtype=np.int64)
    if len(wanted) == 0:
        return
    paths = dict(cat._conn.execute("SELECT segment_id, path FROM segments"))
    found = 0
    for seg, rows in _stored_rows(cat, wanted):
        starts = row_group_starts(cat.path, paths[seg])
        groups = np.searchsorted(starts, rows[:, 0], side="right") - 1
        for g in np.unique(groups):
            take = rows[groups == g]
            found += len(take)
            yield RowGroupRead(paths[seg], int(g), int(starts[g]), take[:, 0], take[:, 1])
    if found != len(wanted):
        raise ScannliteError(f"internal error: {len(wanted) - found} of the items asked for have no stored vector")


def _stored_rows(cat: Catalog, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(segment, (R, 2) [segment row, item] sorted by row) for the wanted items: looked up
    by item when they are few (up to 4,096, or a sixteenth of the catalog), else read segment
    by segment from the index on (segment_id, segment_row) and filtered."""
    few = len(wanted) <= 4096 or 16 * len(wanted) <= (
        cat._conn.execute("SELECT MAX(item) FROM items").fetchone()[0] or 0
    )
    if few:
        found = list(
            select_in(
                cat._conn,
                "SELECT segment_id, segment_row, item FROM items WHERE item IN ({marks})",
                [int(x) for x in wanted],
            )
        )
        if not found:
            return
        arr = np.asarray(found, dtype=np.int64)
        arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
        bounds = np.flatnonzero(np.diff(arr[:, 0])) + 1
        for part in np.split(arr, bounds):
            yield int(part[0, 0]), part[:, 1:]
        return
    for (seg,) in cat._conn.execute("SELECT segment_id FROM segments ORDER BY segment_id").fetchall():
        rows = np.asarray(
            cat._conn.execute(
                "SELECT segment_row, item FROM items WHERE segment_id = ? ORDER BY segment_row", (seg,)
            ).fetchall(),
            dtype=np.int64,
        ).reshape(-1, 2)
        pos = np.minimum(np.searchsorted(wanted, rows[:, 1]), len(wanted) - 1)
        keep = wanted[pos] == rows[:, 1]
        if keep.any():
            yield seg, rows[keep]
