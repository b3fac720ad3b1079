"""The index's rows in catalog.db: partition models, the codes of their items, and the snapshots that publish them.

:mod:`scannlite.store.index` trains, places and searches; this module is the SQL it needs, so that only the
catalog's modules touch its connection (tests/test_layers.py). Writes run inside the caller's
:meth:`.Catalog.transaction`; reads return rows as SQLite gives them. Tables: docs/schema.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from scannlite.store.catalog.catalog import visible
from scannlite.store.catalog.creating import utcnow

if TYPE_CHECKING:
    from scannlite.store.catalog.catalog import Catalog

#: The columns of a snapshot row, in the order the snapshot readers unpack them.
SNAPSHOT_COLUMNS = "version, seq, model_id, count, items_digest, leaves_to_search, lookup_type, created_at, build"


def _batches(cur, size: int) -> Iterator[list]:
    while rows := cur.fetchmany(size):
        yield rows


# ---- partition models -------------------------------------------------------------------------


def model_row(cat: Catalog, model_id: int) -> tuple:
    """(kind, dim, num_leaves, dims_per_block, centroids, codebooks, training) of a model."""
    return cat._conn.execute(
        "SELECT kind, dim, num_leaves, dims_per_block, centroids, codebooks, training FROM models WHERE model_id = ?",
        (model_id,),
    ).fetchone()


def insert_model(
    cat: Catalog,
    seq: int,
    *,
    kind: str,
    num_leaves: int,
    dims_per_block: int | None,
    centroids: bytes,
    codebooks: bytes | None,
    trained_items: int,
    training: dict,
) -> int:
    """Write a newly trained model (in the caller's transaction); returns its ``model_id``."""
    cur = cat._conn.execute(
        "INSERT INTO models(created_seq, kind, dim, num_leaves, dims_per_block, centroids, codebooks, "
        "trained_items, training) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            kind,
            cat.dim,
            num_leaves,
            dims_per_block,
            centroids,
            codebooks,
            trained_items,
            json.dumps(training, sort_keys=True),
        ),
    )
    if cur.lastrowid is None:  # an INSERT into a rowid table always sets it
        raise RuntimeError("SQLite gave the new partition model no row id")
    return cur.lastrowid


# ---- codes ------------------------------------------------------------------------------------


def insert_codes(cat: Catalog, rows: Iterable[tuple]) -> None:
    """Write (model_id, item, leaf, code, trained) rows (in the caller's transaction), taken one at a time."""
    cat._conn.executemany("INSERT INTO codes(model_id, item, leaf, code, trained) VALUES (?, ?, ?, ?, ?)", rows)


def live_codes_per_leaf(cat: Catalog, model_id: int) -> Iterator[tuple[int, int, int]]:
    """(leaf, live items coded there, how many of them the model was trained with) for each leaf that has any."""
    return cat._conn.execute(
        "SELECT c.leaf, COUNT(*), SUM(c.trained > 0) FROM codes c JOIN items i ON i.item = c.item "
        "WHERE c.model_id = ? AND i.removed_seq IS NULL GROUP BY c.leaf",
        (model_id,),
    )


def marks_training_sample(cat: Catalog, model_id: int) -> bool:
    """Whether the model's codes mark its training sample (``trained = 2``)."""
    return (
        cat._conn.execute("SELECT 1 FROM codes WHERE model_id = ? AND trained = 2 LIMIT 1", (model_id,)).fetchone()
        is not None
    )


def items_left_out_of_training(cat: Catalog, model_id: int) -> Iterator[int]:
    """Items coded when the model was trained but not in its sample (``trained = 1``), ascending."""
    for (item,) in cat._conn.execute(
        "SELECT item FROM codes WHERE model_id = ? AND trained = 1 ORDER BY item", (model_id,)
    ):
        yield item


def live_code_batches(cat: Catalog, model_id: int, *, with_codes: bool, batch: int) -> Iterator[list[tuple]]:
    """(item, leaf[, code]) of the live items a model coded, by item, ``batch`` rows at a time."""
    cur = cat._conn.execute(
        "SELECT c.item, c.leaf" + (", c.code" if with_codes else "") + " FROM codes c JOIN items i ON i.item = c.item "
        "WHERE c.model_id = ? AND i.removed_seq IS NULL ORDER BY c.item",
        (model_id,),
    )
    return _batches(cur, batch)


def snapshot_code_batches(cat: Catalog, model_id: int, seq: int, batch: int) -> Iterator[list[tuple]]:
    """(item, id, leaf, code) of the items visible at commit ``seq`` as ``model_id`` coded them, in device
    order (by leaf, then item), ``batch`` rows at a time."""
    cur = cat._conn.execute(
        f"SELECT i.item, i.id, c.leaf, c.code FROM items i JOIN codes c ON c.item = i.item AND c.model_id = :m "
        f"WHERE {visible(alias='i')} ORDER BY c.leaf, i.item",
        {"m": model_id, "seq": seq},
    )
    return _batches(cur, batch)


# ---- snapshots --------------------------------------------------------------------------------


def snapshot_rows(cat: Catalog) -> list[tuple]:
    """Every snapshot's :data:`SNAPSHOT_COLUMNS`, oldest first."""
    return cat._conn.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots ORDER BY version").fetchall()


def snapshot_row(cat: Catalog, version: int | None = None) -> tuple | None:
    """:data:`SNAPSHOT_COLUMNS` of snapshot ``version`` (the newest when None); None when there is none."""
    if version is None:
        return cat._conn.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots ORDER BY version DESC LIMIT 1").fetchone()
    return cat._conn.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE version = ?", (version,)).fetchone()


def snapshot_versions(cat: Catalog) -> list[int]:
    return [r[0] for r in cat._conn.execute("SELECT version FROM snapshots ORDER BY version")]


def newest_snapshot_head(cat: Catalog) -> tuple | None:
    """(version, seq, model_id, count, leaves_to_search, lookup_type) of the newest snapshot, None before the first."""
    return cat._conn.execute(
        "SELECT version, seq, model_id, count, leaves_to_search, lookup_type "
        "FROM snapshots ORDER BY version DESC LIMIT 1"
    ).fetchone()


def build_record(cat: Catalog, version: int) -> Any:
    """The stored JSON text of the build that published snapshot ``version`` (None when there is no such snapshot)."""
    row = cat._conn.execute("SELECT build FROM snapshots WHERE version = ?", (version,)).fetchone()
    return row[0] if row is not None else None


def insert_snapshot(
    cat: Catalog,
    *,
    version: int,
    seq: int,
    model_id: int | None,
    count: int,
    items_digest: str,
    leaves_to_search: int | None,
    lookup_type: str | None,
    build: dict,
) -> None:
    """Publish a snapshot (in the caller's transaction, with its commit ``seq``)."""
    cat._conn.execute(
        "INSERT INTO snapshots(version, seq, model_id, count, items_digest, leaves_to_search, lookup_type, "
        "created_at, build) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            version,
            seq,
            model_id,
            count,
            items_digest,
            leaves_to_search,
            lookup_type,
            utcnow(),
            json.dumps(build, sort_keys=True),
        ),
    )
