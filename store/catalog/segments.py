"""Immutable Parquet segments holding the catalog's vectors.

A segment has columns ``id`` (string) and ``embedding`` (``fixed_size_list<float32>[dim]``),
so pyarrow, DuckDB or Spark read it as it is. Files are written under a fresh UUID name and
fsynced (file and directory) *before* SQLite publishes them: a crash before the publish leaves
an unreferenced file that ``gc`` reclaims, never a half-visible one.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scannlite.store.atomic import fsync_dir
from scannlite.store.digests import sha256_file
from scannlite.store.errors import CatalogCorrupt, one_line
from scannlite.store.oserrors import require_free, writes

SEGMENT_DIR = "segments"
#: Rows per Parquet row group (8 MB at 128-d). Vectors are read back a row group at a time
#: (:class:`RowGroupRead`), so this bounds the memory of every pass over the segments.
READ_ROWS = 16_384


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


def write_segment(
    catalog_dir: Path, ids: list[str], vectors: np.ndarray, started: list[Path] | None = None
) -> WrittenSegment:
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
    # Encoded in memory first (one batch: bounded), so its exact size is checked against the
    # free space before the file is begun (docs/storage-errors.md).
    encoded = pa.BufferOutputStream()
    pq.write_table(table, encoded, compression="zstd", use_dictionary=["id"], row_group_size=READ_ROWS)
    encoded = encoded.getvalue()
    require_free(seg_dir, encoded.size, f"a new segment of {len(ids):,} rows")
    try:
        with writes(rel, "writing segment"):
            with open(path, "wb") as f:
                f.write(encoded)
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(seg_dir)
    except BaseException:
        path.unlink(missing_ok=True)  # a part-written segment is never left behind
        raise
    return WrittenSegment(rel, len(ids), path.stat().st_size, sha256_file(path))


@contextmanager
def _segment_errors(rel_path: str):
    try:
        yield
    except FileNotFoundError:
        raise CatalogCorrupt(f"segment file {rel_path} is missing; run `scannlite check`") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogCorrupt(
            f"segment file {rel_path} is unreadable ({one_line(exc)}); run `scannlite check`"
        ) from None


def row_group_starts(catalog_dir: Path, rel_path: str) -> np.ndarray:
    """First row of each of a segment's row groups, then its row count (from the footer alone)."""
    with _segment_errors(rel_path):
        meta = pq.ParquetFile(Path(catalog_dir) / rel_path).metadata
    return np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]).astype(np.int64)


@dataclass(frozen=True)
class RowGroupRead:
    """Some rows of one row group of a segment: the unit in which every pass over many vectors
    reads them (memory bounded by the group), and one that any process which sees the catalog
    directory can do without its database (a thread here, a Ray task elsewhere)."""

    segment: str  # relative to the catalog directory
    group: int
    first_row: int  # the group's first row within the segment
    rows: np.ndarray  # (R,) wanted rows within the segment, ascending
    items: np.ndarray  # (R,) the catalog items stored in those rows

    def read(self, catalog_dir: Path, dim: int) -> np.ndarray:
        with _segment_errors(self.segment):
            table = pq.ParquetFile(Path(catalog_dir) / self.segment).read_row_group(
                self.group, columns=["embedding"], use_threads=False
            )
        return vectors_of(table.column(0), dim)[self.rows - self.first_row]
