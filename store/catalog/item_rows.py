"""Which items a catalog holds, by internal item number: the live ones, those added since a commit, those a
partition model has not coded, their metadata, and every id visible at a commit.

The queries behind builds, snapshot reads and diffs, kept in the catalog so that only its modules touch its
connection (tests/test_layers.py). Tables: docs/schema.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from scannlite.store.catalog.catalog import visible
from scannlite.store.catalog.sql import select_in

if TYPE_CHECKING:
    from scannlite.store.catalog.catalog import Catalog


def _column(rows) -> Iterator[int]:
    for (value,) in rows:
        yield value


def live_items(cat: Catalog) -> Iterator[int]:
    """Every live item, ascending."""
    return _column(cat._conn.execute("SELECT item FROM items WHERE removed_seq IS NULL ORDER BY item"))


def live_items_added_after(cat: Catalog, seq: int) -> Iterator[int]:
    """Live items added by a commit after ``seq``, ascending."""
    return _column(
        cat._conn.execute("SELECT item FROM items WHERE removed_seq IS NULL AND added_seq > ? ORDER BY item", (seq,))
    )


def live_items_without_codes(cat: Catalog, model_id: int) -> Iterator[int]:
    """Live items ``model_id`` has no code for, ascending."""
    return _column(
        cat._conn.execute(
            "SELECT item FROM items i WHERE removed_seq IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM codes c WHERE c.model_id = ? AND c.item = i.item) ORDER BY item",
            (model_id,),
        )
    )


def metadata_of(cat: Catalog, items: Iterable[int]) -> dict[int, object]:
    """item -> metadata of the given items (any number of them)."""
    return dict(select_in(cat._conn, "SELECT item, metadata FROM items WHERE item IN ({marks})", list(items)))


def items_by_id_at(cat: Catalog, seq: int) -> dict[str, int]:
    """id -> item of every item visible at commit ``seq``."""
    return dict(cat._conn.execute(f"SELECT id, item FROM items WHERE {visible()}", {"seq": seq}).fetchall())
