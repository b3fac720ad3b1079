"""SQL helpers every catalog module shares: an ``IN (...)`` over a list of any length, and one write transaction.

SQLite limits the host parameters of one statement (999 in older builds), so a list is bound in chunks of
:data:`IN_CHUNK`. Only modules of :mod:`scannlite.store.catalog` run SQL on a catalog (tests/test_layers.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from scannlite.store.oserrors import translate

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


def _rollback(conn: sqlite3.Connection) -> None:
    # After SQLITE_FULL or an I/O error SQLite may have rolled the transaction back itself;
    # a ROLLBACK then fails ("no transaction is active") and would hide the real error.
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the original error is the one worth reporting; SQLite undoes the rest on close


@contextmanager
def sqlite_transaction(conn: sqlite3.Connection, db_path):
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error, which is re-raised as it
    was (never replaced by a failing ROLLBACK); a storage failure becomes a
    :class:`~scannlite.store.oserrors.StorageError` naming ``db_path`` (docs/storage-errors.md)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    except sqlite3.Error as exc:
        err = translate(exc, db_path, "committing to")
        if err is None:
            raise
        raise err from exc
