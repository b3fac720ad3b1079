"""Readers for the files ``scannlite add`` accepts, streamed: each yields :class:`Rows`
chunks of at most ``batch_rows`` rows, so memory is one chunk's whatever the input's size.
:func:`scannlite.store.catalog.batch.validate` then checks each chunk, and
:meth:`scannlite.store.catalog.catalog.Catalog.add_stream` writes them all as one commit.

* Parquet: a file, or a directory of them read as one dataset (``scannlite embed`` writes
  such a directory), in row-group batches. Columns ``id``, ``embedding`` (list or fixed-size
  list of floats) and optionally ``metadata`` (string or binary); names overridable. Extra
  columns are ignored, so a file written by ``scannlite export-parquet`` (which adds
  ``leaf``) reads back as it is.
* ``.npy`` of shape (n, D) or (D,), memory-mapped, with a JSONL file of
  ``{"id": ..., "metadata": ...}`` rows read line by line alongside.
* JSONL: one ``{"id": ..., "embedding": [...], "metadata": ...}`` object per line.

JSON metadata that is not a string (an object, a number) is stored as its JSON text.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scannlite.store.catalog.segments import vectors_of
from scannlite.store.errors import InvalidInput

# Rows per chunk: 65,536 x 128-d is 64 MiB as the float64 validation works on, a few times
# that at 768-d; small enough to keep memory flat, large enough that per-chunk costs (one
# segment file, one id lookup per 900 rows) stay a small share.
BATCH_ROWS = 65536


@dataclass
class Rows:
    """One chunk of raw input rows; ``first_row`` numbers them within the whole input."""

    first_row: int
    ids: list
    vectors: np.ndarray
    metadata: list | None


def _missing(path: Path) -> InvalidInput:
    return InvalidInput(f"cannot read {path}: no such file")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of a dataset directory, in name order. Hidden and ``_`` entries are
    not data (Spark's ``_SUCCESS`` and ``_temporary/``, a half-written ``.x.partial-*/``)."""
    return sorted(
        f
        for f in folder.rglob("*")
        if f.is_file()
        and f.suffix.lower() in PARQUET_SUFFIXES
        and not any(part.startswith((".", "_")) for part in f.relative_to(folder).parts)
    )


def _parquet_dataset(path: Path):
    """The file, or every Parquet file under the directory, as one dataset whose schema is
    every file's columns (a column some files lack reads as null there)."""
    import pyarrow.dataset as pads  # imported here: it costs 1-2 s, which every command would pay

    # Column chunks read as they are decoded, not pre-buffered a row group ahead (and no
    # read-ahead, in _batches), which lowers the peak; Arrow's allocator still keeps what it freed,
    # so Parquet input costs about its own size once, where .npy and JSONL cost one chunk
    # (docs/design-figures.md, "Reading Parquet input").
    fmt = pads.ParquetFileFormat(default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=False))
    if path.is_dir():
        files = [str(f) for f in parquet_files(path)]
        if not files:
            raise InvalidInput(f"{path} holds no .parquet files")
        return pads.dataset(files, schema=pa.unify_schemas([pq.read_schema(f) for f in files]), format=fmt)
    if not path.is_file():
        raise _missing(path)
    return pads.dataset(str(path), format=fmt)


def iter_parquet(
    path: Path, id_column="id", embedding_column="embedding", metadata_column="metadata", batch_rows: int = BATCH_ROWS
) -> Iterator[Rows]:
    path = Path(path)
    try:
        dataset = _parquet_dataset(path)
        names = dataset.schema.names
    except InvalidInput:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: {_not_valid(path)} ({_first_line(exc)})") from None
    for col, opt in ((id_column, "--id-column"), (embedding_column, "--embedding-column")):
        if col not in names:
            raise InvalidInput(f"{path} has no {col!r} column (columns: {', '.join(names)}); use {opt}")
    columns = [id_column, embedding_column] + ([metadata_column] if metadata_column in names else [])
    first, dim = 0, None
    for batch in _coalesced(_batches(path, dataset, columns, batch_rows), batch_rows):
        try:
            rows = _parquet_rows(batch, first, dim, id_column, embedding_column, metadata_column)
        except UnicodeDecodeError as exc:  # a damaged or foreign file: string bytes that are not UTF-8
            raise InvalidInput(
                f"cannot read {path}: a text column near row {first} is not valid UTF-8 ({_first_line(exc)})"
            ) from None
        dim = rows.vectors.shape[1]
        first += len(rows.ids)
        yield rows


def _not_valid(path: Path) -> str:
    return (
        "a file in it is not valid Parquet, or its columns do not agree with the other files'"
        if path.is_dir()
        else "not a valid Parquet file"
    )


def _batches(path: Path, dataset, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    batches = iter(dataset.to_batches(columns=columns, batch_size=batch_rows, batch_readahead=0, fragment_readahead=0))
    while True:
        try:
            yield next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {path}: {_not_valid(path)} ({_first_line(exc)})") from None


def _coalesced(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last may be shorter). Arrow's own batches end at
    every row group and file, and each chunk becomes a segment: a directory of small shards
    must not become as many small segments."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _parquet_rows(
    batch: pa.RecordBatch, first: int, dim: int | None, id_column: str, embedding_column: str, metadata_column: str
) -> Rows:
    emb = batch.column(embedding_column)
    if not (pa.types.is_list(emb.type) or pa.types.is_fixed_size_list(emb.type) or pa.types.is_large_list(emb.type)):
        raise InvalidInput(f"column {embedding_column!r} must be a list of floats, got {emb.type}")
    if not (pa.types.is_floating(emb.type.value_type) or pa.types.is_integer(emb.type.value_type)):
        raise InvalidInput(f"column {embedding_column!r} must hold floats, got {emb.type}")
    ids_col = batch.column(id_column)
    if not (pa.types.is_string(ids_col.type) or pa.types.is_large_string(ids_col.type)):
        raise InvalidInput(f"column {id_column!r} must hold strings, got {ids_col.type}")
    ids = ids_col.to_pylist()
    if emb.null_count:
        i = next(i for i, v in enumerate(emb.is_null().to_pylist()) if v)
        raise InvalidInput(f"row {first + i} (id {ids[i]!r}): embedding is missing")
    lengths = (
        emb.value_lengths().to_numpy(zero_copy_only=False)
        if not pa.types.is_fixed_size_list(emb.type)
        else np.full(len(emb), emb.type.list_size)
    )
    expected = lengths[0] if dim is None else dim
    if (lengths != expected).any():
        i = int(np.argmax(lengths != expected))
        raise InvalidInput(f"row {first + i} (id {ids[i]!r}): embedding has {lengths[i]} values, row 0 has {expected}")
    dim = int(expected)
    if pa.types.is_fixed_size_list(emb.type):
        # A fixed-size list's flatten() skips null slots only at the list level; check values.
        if emb.flatten().null_count:
            raise InvalidInput(f"column {embedding_column!r} holds null values")
        vectors = vectors_of(emb, dim) if dim else np.zeros((len(ids), 0), np.float32)
    else:
        flat = emb.flatten()
        if flat.null_count:
            raise InvalidInput(f"column {embedding_column!r} holds null values")
        vectors = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(len(ids), dim)
    names = batch.schema.names
    metadata = batch.column(metadata_column).to_pylist() if metadata_column in names else None
    return Rows(first, ids, vectors, metadata)


def json_lines(path: Path):
    """(line number, object) for each non-blank line of a JSONL file, read line by line;
    one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    with open(path, encoding="utf-8") as f:
        n = 0
        while True:
            try:
                line = f.readline()
            except UnicodeDecodeError:
                raise InvalidInput(f"{path} is not UTF-8 text") from None
            if not line:
                return
            n += 1
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}:{n}: each line must be a JSON object")
            yield n, row


def metadata_text(value):
    """JSON metadata as stored: strings as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def iter_jsonl(
    path: Path, id_column="id", embedding_column="embedding", metadata_column="metadata", batch_rows: int = BATCH_ROWS
) -> Iterator[Rows]:
    ids, vectors, metadata, first, width = [], [], [], 0, None
    for n, row in json_lines(path):
        if id_column not in row:
            raise InvalidInput(f"{path}:{n}: no {id_column!r} field")
        if embedding_column not in row:
            raise InvalidInput(f"{path}:{n}: no {embedding_column!r} field")
        emb = row[embedding_column]
        if not isinstance(emb, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in emb):
            raise InvalidInput(f"{path}:{n}: {embedding_column!r} must be a list of numbers")
        width = len(emb) if width is None else width
        if len(emb) != width:
            raise InvalidInput(f"{path}:{n}: embedding has {len(emb)} values, the first row has {width}")
        ids.append(row[id_column])
        vectors.append(emb)
        metadata.append(metadata_text(row.get(metadata_column)))
        if len(ids) == batch_rows:
            yield Rows(first, ids, np.asarray(vectors, dtype=np.float64), metadata)
            first += len(ids)
            ids, vectors, metadata = [], [], []
    if ids:
        yield Rows(first, ids, np.asarray(vectors, dtype=np.float64), metadata)
    elif not first:
        raise InvalidInput(f"{path} holds no rows")


class _MappedNpy:
    """A .npy file's rows, memory-mapped, handed out as copies of row ranges. The pages of
    rows already copied are dropped from this process (``madvise``), so a 5 GB file costs one
    chunk of resident memory, not the file (a plain ``np.load(mmap_mode="r")`` keeps every
    page it touched in the process's RSS until the end)."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
            # SyntaxError, TokenError: what numpy's header parser raises for some damaged headers
            except (ValueError, OSError, EOFError, SyntaxError, TokenError) as exc:
                raise InvalidInput(
                    f"cannot read {path}: not a valid .npy file "
                    f"({str(exc).splitlines()[0] if str(exc) else 'truncated'})"
                ) from None
            if dtype.hasobject:
                raise InvalidInput(f"cannot read {path}: it holds Python objects, not numbers")
            if len(shape) not in (1, 2):
                raise InvalidInput(f"{path} must hold a (D,) or (n, D) array, got shape {shape}")
            self.fortran = bool(fortran) and len(shape) == 2
            self.offset = f.tell()
            self.shape = (1, shape[0]) if len(shape) == 1 else shape
            self.dtype = dtype
            need = self.offset + int(np.prod(self.shape)) * dtype.itemsize
            size = os.fstat(f.fileno()).st_size
            if size < need:
                raise InvalidInput(f"cannot read {path}: not a valid .npy file (truncated: {size:,} of {need:,} bytes)")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if need > self.offset else None

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        width = self.shape[1] * self.dtype.itemsize
        if self._map is None:
            return np.zeros((stop - start, self.shape[1]), self.dtype)
        if self.fortran:  # a row's values are a column apart: copy the rows, keep every page
            whole: np.ndarray = np.ndarray(self.shape, self.dtype, buffer=self._map, offset=self.offset, order="F")
            return np.ascontiguousarray(whole[start:stop])
        out = (
            np.frombuffer(self._map, self.dtype, (stop - start) * self.shape[1], self.offset + start * width)
            .reshape(stop - start, self.shape[1])
            .copy()
        )
        done = (self.offset + stop * width) // mmap.PAGESIZE * mmap.PAGESIZE
        if done:
            self._map.madvise(mmap.MADV_DONTNEED, 0, done)
        return out


def iter_npy(
    path: Path, ids_path: Path | None, id_column="id", metadata_column="metadata", batch_rows: int = BATCH_ROWS
) -> Iterator[Rows]:
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    vectors = _MappedNpy(path)
    if ids_path is None:
        sidecar = path.with_suffix(".jsonl")
        if not sidecar.is_file():
            raise InvalidInput(f'{path} needs ids: pass --ids FILE.jsonl (one {{"id": ...}} per row)')
        ids_path = sidecar
    ids: list[str] = []
    metadata: list = []
    first = 0

    def rows() -> Rows:
        if first + len(ids) > len(vectors):
            raise InvalidInput(f"{ids_path} has more rows than {path} has vectors ({len(vectors)})")
        return Rows(first, ids, vectors.rows(first, first + len(ids)), metadata)

    for n, row in json_lines(ids_path):
        if id_column not in row:
            raise InvalidInput(f"{ids_path}:{n}: no {id_column!r} field")
        ids.append(row[id_column])
        metadata.append(metadata_text(row.get(metadata_column)))
        if len(ids) == batch_rows:
            yield rows()
            first += len(ids)
            ids, metadata = [], []
    if first + len(ids) != len(vectors):
        raise InvalidInput(f"{ids_path} has {first + len(ids)} rows but {path} has {len(vectors)} vectors")
    if ids:
        yield rows()


def iter_rows(
    path: Path,
    *,
    ids_path: Path | None = None,
    id_column="id",
    embedding_column="embedding",
    metadata_column="metadata",
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Rows]:
    """Pick the reader from the name: a directory or .parquet/.pq, .npy, .jsonl/.ndjson."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in PARQUET_SUFFIXES:
        return iter_parquet(path, id_column, embedding_column, metadata_column, batch_rows)
    if suffix == ".npy":
        return iter_npy(path, ids_path, id_column, metadata_column, batch_rows)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return iter_jsonl(path, id_column, embedding_column, metadata_column, batch_rows)
    raise InvalidInput(f"cannot tell the format of {path}: expected .parquet (or a directory of them), .npy or .jsonl")
