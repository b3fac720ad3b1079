"""A catalog's query sample from files: vectors (``.npy``, Parquet), texts or images embedded through the catalog's
configured embedders. One path for ``scannlite queries`` and ``Database.add_queries`` (docs/queries.md).

The sample itself (bounded, reservoir-sampled) is :mod:`scannlite.store.catalog.query_sample`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from scannlite.store.catalog import query_sample
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.readers import PARQUET_SUFFIXES
from scannlite.store.errors import InvalidInput

#: Queries read, or embedded, per step: memory stays one chunk's whatever the file's size.
CHUNK = 4096


def _npy_chunks(path: Path) -> Iterator[tuple[np.ndarray, None]]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: not a valid .npy file ({str(exc).splitlines()[0]})") from None
    if arr.ndim != 2:
        raise InvalidInput(f"{path} holds a {arr.ndim}-d array; query vectors are (n, dim)")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidInput(f"{path} holds {arr.dtype} values, not numbers")
    for lo in range(0, len(arr), CHUNK):
        yield np.asarray(arr[lo : lo + CHUNK], dtype=np.float64), None


def _parquet_chunks(path: Path, column: str) -> Iterator[tuple[np.ndarray, None]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"cannot read {path}: not a valid Parquet file ({str(exc).splitlines()[0]})") from None
    names = pf.schema_arrow.names
    if column not in names:
        raise InvalidInput(f"{path} has no {column!r} column (columns: {', '.join(names)}); use --column")
    for batch in pf.iter_batches(batch_size=CHUNK, columns=[column]):
        values = batch.column(0)
        if values.null_count:
            raise InvalidInput(f"column {column!r} of {path} holds a missing vector")
        rows = values.to_pylist()
        try:
            yield np.asarray(rows, dtype=np.float64), None
        except (TypeError, ValueError):
            raise InvalidInput(f"column {column!r} of {path} must hold lists of numbers of one length") from None


def vector_chunks(path: Path, column: str = "embedding") -> Iterator[tuple[np.ndarray, None]]:
    """Query vectors from a ``.npy`` file ((n, dim)) or a Parquet file (a list column), a chunk at a time."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _npy_chunks(path)
    if suffix in PARQUET_SUFFIXES:
        return _parquet_chunks(path, column)
    raise InvalidInput(f"cannot tell the format of {path}: expected .npy or .parquet (or --texts / --images)")


def _embedded(cat: Catalog, kind: str, items: list, keep_text: bool) -> Iterator[tuple[np.ndarray, list | None]]:
    from scannlite.plugin.facade.search import embed_queries

    for lo in range(0, len(items), CHUNK):
        part = items[lo : lo + CHUNK]
        yield embed_queries(cat, kind, part), (list(part) if keep_text else None)


def add_queries(
    cat: Catalog,
    *,
    file: str | Path | None = None,
    vectors=None,
    texts: str | Path | Sequence[str] | None = None,
    images: str | Path | Sequence | None = None,
    column: str = "embedding",
) -> dict:
    """Offer queries to the catalog's sample from exactly one source; returns ``{"offered", "kept", "size",
    "seen", "capacity"}``. Texts are a list or a file (one per line, or JSONL with ``"text"``); images a list of
    paths, a folder or a glob; both are embedded by the catalog's configured embedder of that kind."""
    given = [
        n for n, v in (("file", file), ("vectors", vectors), ("texts", texts), ("images", images)) if v is not None
    ]
    if len(given) != 1:
        raise InvalidInput(
            "give one source of queries: a vector file, vectors, texts or images"
            if not given
            else f"give one source of queries, not both {given[0]} and {given[1]}"
        )
    chunks: Iterator[tuple[np.ndarray, list | None]]
    if file is not None:
        chunks, source = vector_chunks(Path(file), column), "file"
    elif vectors is not None:
        chunks, source = iter([(np.asarray(vectors, dtype=np.float64), None)]), "file"
    elif texts is not None:
        if isinstance(texts, (str, Path)):
            from scannlite.plugin.ingest.add import read_texts

            items = [t for _, t, _ in read_texts(Path(texts))]
        else:
            items = [str(t) for t in texts]
        if not items:
            raise InvalidInput("no texts to add")
        chunks, source = _embedded(cat, "text", items, True), "text"
    else:
        if isinstance(images, (str, Path)):
            from scannlite.plugin.ingest.add import find_images

            _, found = find_images(str(images))
            items = [str(p) for p in found]
        else:
            items = list(images or [])
        if not items:
            raise InvalidInput("no images to add")
        chunks, source = _embedded(cat, "image", items, False), "image"
    r = query_sample.add_stream(cat, chunks, source=source)
    return {"offered": r.offered, "kept": r.kept, "size": r.size, "seen": r.seen, "capacity": r.capacity}


def list_queries(cat: Catalog, limit: int | None = None) -> dict:
    """The sample's size, how many queries were ever offered, its capacity, and its rows (texts where known)."""
    with cat.reading():
        return {**query_sample.summary(cat), "queries": query_sample.rows(cat, limit)}


def clear_queries(cat: Catalog) -> dict:
    return {"cleared": query_sample.clear(cat)}
