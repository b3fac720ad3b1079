"""A catalog's query sample: vectors of the queries its users send, a bounded uniform sample of them.

The recall a build states is measured on these when there are enough (:mod:`scannlite.store.index.build_recall`):
the catalog's own items are not what people type (docs/queries.md). The sample holds at most :data:`CAPACITY`
queries, kept by reservoir sampling (Vitter's algorithm R): after ``seen`` queries were offered, each is in the
sample with probability ``CAPACITY / seen``, whatever order they came in, so a sample fed for months still
represents all of them while its size stays fixed. The draws are seeded by ``seen``: the same queries offered
in the same order keep the same sample.

Stored in the ``query_sample`` table (docs/schema.md), created on the first ``add`` (so catalogs made before it
need no migration, and read as an empty sample); how many queries were offered is the ``query_sample`` setting.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from scannlite.store.catalog.creating import utcnow
from scannlite.store.errors import InvalidInput

#: Queries kept at most. 1,000 is twice the recall estimate's default sample (500: standard error near 0.01 at
#: recall 0.9) and, at 256-d float32, 1 MB in the database.
CAPACITY = 1000
SOURCES = ("file", "text", "image", "datasette")
#: Catalog setting (``catalog_config``): whether the Datasette search page records the queries it serves. Off
#: unless the catalog's owner turns it on (``scannlite queries CATALOG record on``): it keeps what people typed.
RECORD_SETTING = "record_queries"

DDL = """
CREATE TABLE IF NOT EXISTS query_sample (
    slot     INTEGER PRIMARY KEY,  -- 0 .. CAPACITY - 1
    vector   BLOB NOT NULL,        -- float32 little-endian, (dim,), normalised as the catalog's vectors are
    text     TEXT,                 -- the query's text, when it was one
    source   TEXT NOT NULL,        -- file, text, image or datasette
    added_at TEXT NOT NULL         -- UTC, ISO 8601
);
"""


@dataclass
class SampleAdded:
    offered: int  # queries given to this add
    kept: int  # of them, now in the sample
    size: int  # queries in the sample after it
    seen: int  # queries ever offered
    capacity: int


def _has_table(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'query_sample'").fetchone()
        is not None
    )


def seen(cat) -> int:
    return int((cat.settings.get("query_sample") or {}).get("seen", 0))


def size(cat) -> int:
    if not _has_table(cat._conn):
        return 0
    return cat._conn.execute("SELECT COUNT(*) FROM query_sample").fetchone()[0]


def vectors(cat) -> np.ndarray:
    """(S, dim) float32 vectors of the sample, by slot; (0, dim) for none."""
    if not _has_table(cat._conn):
        return np.zeros((0, cat.dim), np.float32)
    blobs = [r[0] for r in cat._conn.execute("SELECT vector FROM query_sample ORDER BY slot")]
    if not blobs:
        return np.zeros((0, cat.dim), np.float32)
    return np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), cat.dim).astype(np.float32)


def rows(cat, limit: int | None = None) -> list[dict]:
    """``{"slot", "text", "source", "added_at"}`` of the sample, by slot."""
    if not _has_table(cat._conn):
        return []
    sql = "SELECT slot, text, source, added_at FROM query_sample ORDER BY slot"
    params: tuple = ()
    if limit is not None:
        sql += " LIMIT ?"
        params = (int(limit),)
    return [dict(zip(("slot", "text", "source", "added_at"), r)) for r in cat._conn.execute(sql, params)]


def summary(cat) -> dict:
    return {
        "size": size(cat),
        "seen": seen(cat),
        "capacity": CAPACITY,
        "recording": bool(cat.settings.get(RECORD_SETTING)),
    }


def prepare(cat, vecs, texts=None) -> tuple[np.ndarray, list]:
    """Check query vectors against the catalog (shape, finite, not zero when normalised) and normalise them as
    the catalog does; a one-line error names the first bad row."""
    from scannlite.store.index.device_search import l2_normalize

    arr = np.asarray(vecs, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != cat.dim:
        raise InvalidInput(f"query vectors must be (n, {cat.dim}), got shape {tuple(np.shape(vecs))}")
    if len(arr) == 0:
        raise InvalidInput("no queries to add")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InvalidInput(f"query row {int(np.argmax(bad))} is not finite; nothing was added")
    if cat.normalize:
        zero = np.linalg.norm(arr, axis=1) == 0
        if zero.any():
            raise InvalidInput(f"query row {int(np.argmax(zero))} is a zero vector and cannot be normalised")
        arr = l2_normalize(arr)
    texts = list(texts) if texts is not None else [None] * len(arr)
    if len(texts) != len(arr):
        raise InvalidInput(f"{len(texts)} texts for {len(arr)} query vectors")
    return arr.astype(np.float32), texts


def add(cat, vecs, *, texts=None, source: str = "file", capacity: int = CAPACITY) -> SampleAdded:
    """Offer queries to the sample (reservoir sampling, see the module docstring)."""
    return add_stream(cat, [(vecs, texts)], source=source, capacity=capacity)


def add_stream(cat, chunks, *, source: str = "file", capacity: int = CAPACITY) -> SampleAdded:
    """Offer ``(vectors, texts or None)`` chunks to the sample, one chunk in memory at a time; one transaction
    under the writer lock, so a bad chunk leaves the sample as it was.

    An add from a file or the API is a commit (``kind = 'queries'``): the next ``build`` publishes a snapshot
    with the recall measured on the new sample. Queries the Datasette page records are not: a commit per served
    query would grow ``commits`` without bound and make every build publish; they count at the next build that
    publishes anyway."""
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    with cat.writing():
        before = seen(cat)
        offered = kept = 0
        now = utcnow()
        with cat.transaction():
            cat._conn.execute(DDL)
            filled = cat._conn.execute("SELECT COUNT(*) FROM query_sample").fetchone()[0]
            for vecs, texts in chunks:
                arr, texts = prepare(cat, vecs, texts)
                rng = np.random.default_rng([before + offered, len(arr)])
                for v, t in zip(arr, texts):
                    n = before + offered  # queries offered before this one
                    offered += 1
                    if filled < capacity:
                        slot, filled = filled, filled + 1
                    else:
                        slot = int(rng.integers(0, n + 1))
                        if slot >= capacity:
                            continue
                    cat._conn.execute(
                        "INSERT OR REPLACE INTO query_sample(slot, vector, text, source, added_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (slot, v.astype("<f4").tobytes(), t, source, now),
                    )
                    kept += 1
            if offered == 0:
                raise InvalidInput("no queries to add")
            total = before + offered
            cat.set_setting("query_sample", {"seen": total})
            if source != "datasette":
                cat.new_commit("queries", {"offered": offered, "kept": kept})
        cat.settings["query_sample"] = {"seen": total}
        return SampleAdded(offered, kept, min(filled, capacity), total, capacity)


def clear(cat) -> int:
    """Empty the sample and forget how many queries were offered; returns how many it held."""
    with cat.writing():
        held = size(cat)
        with cat.transaction():
            if _has_table(cat._conn):
                cat._conn.execute("DELETE FROM query_sample")
            cat.unset_setting("query_sample")
            cat.new_commit("queries", {"cleared": held})
        cat.settings.pop("query_sample", None)
        return held


def set_recording(cat, on: bool) -> None:
    with cat.writing(), cat.transaction():
        cat.set_setting(RECORD_SETTING, bool(on))
        cat.new_commit("queries", {"record": bool(on)})
    cat.settings[RECORD_SETTING] = bool(on)


def digest(vecs: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(vecs, dtype="<f4").tobytes()).hexdigest()[:16]


__all__ = ["CAPACITY", "add", "clear", "rows", "size", "summary", "vectors"]
