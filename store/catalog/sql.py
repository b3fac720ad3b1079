"""SQL helpers every catalog module shares: an ``IN (...)`` over a list of any length.

SQLite limits the host parameters of one statement (999 in older builds), so a list is bound in chunks of
:data:`IN_CHUNK`. Only modules of :mod:`scannlite.store` run SQL on a catalog (tests/test_layers.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

#: Values bound per statement: under SQLite's oldest limit (999), with room for the statement's other parameters.
IN_CHUNK = 900


def _chunks(values: Sequence) -> Iterator[list]:
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start : start + IN_CHUNK])


def _bound(sql: str, n: int) -> str:
    return sql.replace("{marks}", ",".join("?" * n))


def select_in(conn: sqlite3.Connection, sql: str, values: Sequence, before: Sequence = ()) -> Iterator[tuple]:
    """Rows of ``sql`` (whose ``IN ({marks})`` takes ``values``; ``before`` binds the parameters ahead of it),
    chunk by chunk."""
    for chunk in _chunks(values):
        yield from conn.execute(_bound(sql, len(chunk)), [*before, *chunk])


def execute_in(conn: sqlite3.Connection, sql: str, values: Sequence, before: Sequence = ()) -> None:
    """Run ``sql`` (an UPDATE or DELETE whose ``IN ({marks})`` takes ``values``) over every chunk."""
    for chunk in _chunks(values):
        conn.execute(_bound(sql, len(chunk)), [*before, *chunk])
