"""A damaged ``catalog.db`` is a finding of ``check``, never a traceback.

A catalog database copied from elsewhere, truncated or overwritten in part is untrusted input:
``check`` first asks SQLite for a structural check (``PRAGMA quick_check``), and a value that
SQLite stores but scannlite cannot read (undecodable text, broken JSON, a NULL where a path
belongs) becomes a problem line too, instead of an exception; see docs/storage-errors.md.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from scannlite.store.errors import one_line

R = TypeVar("R")

#: What reading a damaged row raises: SQLite's own errors, bad UTF-8, bad JSON, a NULL or a
#: value of the wrong type where the schema promised another.
DAMAGE = (sqlite3.DatabaseError, UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError, KeyError)


def database_problems(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """SQLite's structural findings about the database (empty when it is sound)."""
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA quick_check({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        return [f"catalog.db is damaged: {one_line(exc)}"]
    return [] if rows == ["ok"] else [f"catalog.db is damaged: {one_line(Exception(r))}" for r in rows]


def reports_damage(report: Callable[..., R]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Wrap ``check(cat, ...)`` so a damaged database is reported as ``report(problems=[...])``."""

    def decorate(check: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(check)
        def wrapper(cat, *args, **kwargs) -> R:
            found = database_problems(cat._conn)
            if found:
                return report(problems=found)
            try:
                return check(cat, *args, **kwargs)
            except DAMAGE as exc:
                if cat._conn.in_transaction:
                    cat._conn.execute("ROLLBACK")
                return report(
                    problems=[f"catalog.db holds a value scannlite cannot read ({type(exc).__name__}: {one_line(exc)})"]
                )

        return wrapper

    return decorate
