"""What the Python API's ``add`` calls accept, turned into what the catalog and the ingest take: records or
columns into ids, vectors and metadata text; a list or dict of texts into (id, text, metadata) rows; and the
report they return.

Metadata goes through :func:`~scannlite.store.catalog.readers.metadata_text` as ``scannlite add`` stores it, so
the same input gives the same rows from either (docs/schema.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from scannlite.store.catalog.readers import metadata_text
from scannlite.store.errors import InvalidInput


def columns_of(
    records: Iterable[Mapping] | None, ids: Sequence[str] | None, vectors, metadata: Sequence | None
) -> tuple[list, object, list | None]:
    """(ids, vectors, metadata) from ``records`` (dicts with ``id``, ``vector`` or ``embedding``, and optionally
    ``metadata``) or from the three columns; text, bytes, or anything JSON as metadata."""
    if records is not None:
        if ids is not None or vectors is not None or metadata is not None:
            raise InvalidInput("give records, or ids and vectors, not both")
        records = list(records)
        if not records:
            raise InvalidInput("no records to add")
        ids = [r["id"] if "id" in r else _missing_id(n) for n, r in enumerate(records)]
        vectors = [_vector_of(r, n) for n, r in enumerate(records)]
        metadata = [r.get("metadata") for r in records]
    if ids is None or vectors is None:
        raise InvalidInput("give records, or ids and vectors")
    texts = None
    if metadata is not None:
        texts = [m if isinstance(m, (bytes, bytearray)) else metadata_text(m) for m in metadata]
    return list(ids), vectors, texts


def text_rows(texts: Sequence[str] | Mapping[str, str], metadata: Sequence | None) -> list[tuple]:
    """(id, text, metadata) rows: a list gets ids "1", "2", ...; a dict maps id -> text; metadata defaults to
    the text."""
    pairs = list(texts.items()) if isinstance(texts, Mapping) else [(str(n), t) for n, t in enumerate(texts, 1)]
    if metadata is not None and len(metadata) != len(pairs):
        raise InvalidInput(f"{len(metadata)} metadata values for {len(pairs)} texts")
    meta = [t for _, t in pairs] if metadata is None else [metadata_text(m) for m in metadata]
    return [(i, t, m) for (i, t), m in zip(pairs, meta)]


def add_report(r) -> dict:
    """An add's counts (a catalog's :class:`~scannlite.store.catalog.adding.AddResult`)."""
    return {"added": r.added, "updated": r.updated, "unchanged": r.unchanged, "seq": r.seq}


def ingest_report(rep) -> dict:
    """An ingest's counts and the files it skipped, each as [path, reason]."""
    return {
        "added": rep.added,
        "updated": rep.updated,
        "unchanged": rep.unchanged,
        "skipped": [list(s) for s in rep.skipped],
    }


def _vector_of(record: Mapping, n: int):
    for key in ("vector", "embedding"):
        if key in record:
            return record[key]
    raise InvalidInput(f'record {n} has no "vector" (or "embedding")')


def _missing_id(n: int):
    raise InvalidInput(f'record {n} has no "id"')
