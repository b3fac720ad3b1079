"""Immutable Parquet segments holding the catalog's vectors.

A segment has columns ``id`` (string) and ``embedding`` (``fixed_size_list<float32>[dim]``),
so pyarrow, DuckDB or Spark read it as it is. Files are written under a fresh UUID name and
fsynced (file and directory) *before* SQLite publishes them: a crash before the publish leaves
an unreferenced file that ``gc`` reclaims, never a half-visible one.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import fsync_dir
from .errors import CatalogCorrupt

SEGMENT_DIR = "segments"


@dataclass(frozen=True)
class WrittenSegment:
    path: str  # relative to the catalog directory
    rows: int
    bytes: int
    sha256: str


def embedding_array(vectors: np.ndarray) -> pa.FixedSizeListArray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), vectors.shape[1])


def vectors_of(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """(n, dim) float32 from a fixed_size_list (or list) column, without a Python loop."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(-1, dim)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_segment(catalog_dir: Path, ids: list[str], vectors: np.ndarray,
                  started: list[Path] | None = None) -> WrittenSegment:
    """Write a new segment file. Its path goes into ``started`` before the file is created, so
    a caller that must remove it after a failure (even one in this function) knows it."""
    seg_dir = Path(catalog_dir) / SEGMENT_DIR
    seg_dir.mkdir(exist_ok=True)
    rel = f"{SEGMENT_DIR}/{uuid.uuid4().hex}.parquet"
    path = Path(catalog_dir) / rel
    if started is not None:
        started.append(path)
    table = pa.table({"id": pa.array(ids, type=pa.string()), "embedding": embedding_array(vectors)})
    # Plain encoding for the floats: dictionary encoding only costs time on embeddings.
    with open(path, "wb") as f:
        pq.write_table(table, f, compression="zstd", use_dictionary=["id"], row_group_size=65536)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(seg_dir)
    return WrittenSegment(rel, len(ids), path.stat().st_size, sha256_file(path))


def read_vectors(catalog_dir: Path, rel_path: str, dim: int, rows: np.ndarray | None = None) -> np.ndarray:
    path = Path(catalog_dir) / rel_path
    try:
        table = pq.read_table(path, columns=["embedding"])
    except FileNotFoundError:
        raise CatalogCorrupt(f"segment file {rel_path} is missing; run `scannlite check`") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogCorrupt(f"segment file {rel_path} is unreadable ({exc}); run `scannlite check`") from None
    vectors = vectors_of(table.column("embedding"), dim)
    return vectors if rows is None else vectors[rows]
