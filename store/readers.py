"""Readers for the files ``scannlite add`` accepts. Each returns raw (ids, vectors, metadata);
:func:`scannlite.store.batch.validate` then checks them.

* Parquet: columns ``id``, ``embedding`` (list or fixed-size list of floats) and optionally
  ``metadata`` (string or binary); names overridable. Extra columns are ignored, so a file
  written by ``scannlite export-parquet`` (which adds ``leaf``) reads back as it is.
* ``.npy`` of shape (n, D) or (D,), with a JSONL file of ``{"id": ..., "metadata": ...}`` rows.
* JSONL: one ``{"id": ..., "embedding": [...], "metadata": ...}`` object per line.

JSON metadata that is not a string (an object, a number) is stored as its JSON text.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InvalidInput
from .segments import vectors_of


def _missing(path: Path) -> InvalidInput:
    return InvalidInput(f"cannot read {path}: no such file")


def read_parquet(path: Path, id_column="id", embedding_column="embedding", metadata_column="metadata"):
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        schema = pq.read_schema(path)
        names = schema.names
        for col, opt in ((id_column, "--id-column"), (embedding_column, "--embedding-column")):
            if col not in names:
                raise InvalidInput(f"{path} has no {col!r} column (columns: {', '.join(names)}); use {opt}")
        columns = [id_column, embedding_column] + ([metadata_column] if metadata_column in names else [])
        table = pq.read_table(path, columns=columns)
    except InvalidInput:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot read {path}: not a valid Parquet file ({first})") from None
    emb = table.column(embedding_column)
    if not (pa.types.is_list(emb.type) or pa.types.is_fixed_size_list(emb.type) or pa.types.is_large_list(emb.type)):
        raise InvalidInput(f"column {embedding_column!r} must be a list of floats, got {emb.type}")
    if not (pa.types.is_floating(emb.type.value_type) or pa.types.is_integer(emb.type.value_type)):
        raise InvalidInput(f"column {embedding_column!r} must hold floats, got {emb.type}")
    ids_col = table.column(id_column)
    if not (pa.types.is_string(ids_col.type) or pa.types.is_large_string(ids_col.type)):
        raise InvalidInput(f"column {id_column!r} must hold strings, got {ids_col.type}")
    ids = ids_col.to_pylist()
    emb = emb.combine_chunks()
    if emb.null_count:
        i = next(i for i, v in enumerate(emb.is_null().to_pylist()) if v)
        raise InvalidInput(f"row {i} (id {ids[i]!r}): embedding is missing")
    lengths = (emb.value_lengths().to_numpy(zero_copy_only=False)
               if not pa.types.is_fixed_size_list(emb.type) else np.full(len(emb), emb.type.list_size))
    if len(lengths) and (lengths != lengths[0]).any():
        i = int(np.argmax(lengths != lengths[0]))
        raise InvalidInput(f"row {i} (id {ids[i]!r}): embedding has {lengths[i]} values, row 0 has {lengths[0]}")
    dim = int(lengths[0]) if len(lengths) else 0
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
    metadata = table.column(metadata_column).to_pylist() if metadata_column in table.column_names else None
    return ids, vectors, metadata


def json_lines(path: Path):
    """(line number, object) for each non-blank line of a JSONL file; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    for n, line in enumerate(text.splitlines(), 1):
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


def read_jsonl(path: Path, id_column="id", embedding_column="embedding", metadata_column="metadata"):
    ids, vectors, metadata = [], [], []
    for n, row in json_lines(path):
        if id_column not in row:
            raise InvalidInput(f"{path}:{n}: no {id_column!r} field")
        if embedding_column not in row:
            raise InvalidInput(f"{path}:{n}: no {embedding_column!r} field")
        emb = row[embedding_column]
        if not isinstance(emb, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in emb):
            raise InvalidInput(f"{path}:{n}: {embedding_column!r} must be a list of numbers")
        if vectors and len(emb) != len(vectors[0]):
            raise InvalidInput(f"{path}:{n}: embedding has {len(emb)} values, the first row has {len(vectors[0])}")
        ids.append(row[id_column])
        vectors.append(emb)
        metadata.append(metadata_text(row.get(metadata_column)))
    if not ids:
        raise InvalidInput(f"{path} holds no rows")
    return ids, np.asarray(vectors, dtype=np.float64), metadata


def read_npy(path: Path, ids_path: Path | None, id_column="id", metadata_column="metadata"):
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        vectors = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInput(f"cannot read {path}: not a valid .npy file ({str(exc).splitlines()[0] if str(exc) else 'truncated'})") from None
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if ids_path is None:
        sidecar = path.with_suffix(".jsonl")
        if not sidecar.is_file():
            raise InvalidInput(f"{path} needs ids: pass --ids FILE.jsonl (one {{\"id\": ...}} per row)")
        ids_path = sidecar
    ids, metadata = [], []
    for n, row in json_lines(ids_path):
        if id_column not in row:
            raise InvalidInput(f"{ids_path}:{n}: no {id_column!r} field")
        ids.append(row[id_column])
        metadata.append(metadata_text(row.get(metadata_column)))
    if len(ids) != len(vectors):
        raise InvalidInput(f"{ids_path} has {len(ids)} rows but {path} has {len(vectors)} vectors")
    return ids, vectors, metadata


def read_any(path: Path, *, ids_path: Path | None = None, id_column="id", embedding_column="embedding",
             metadata_column="metadata"):
    """Pick the reader from the file name: .parquet/.pq, .npy, .jsonl/.ndjson."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return read_parquet(path, id_column, embedding_column, metadata_column)
    if suffix == ".npy":
        return read_npy(path, ids_path, id_column, metadata_column)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return read_jsonl(path, id_column, embedding_column, metadata_column)
    raise InvalidInput(f"cannot tell the format of {path}: expected .parquet, .npy or .jsonl")
