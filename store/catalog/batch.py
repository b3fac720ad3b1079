"""A validated batch of items ready to be written: the single gate every input passes.

Whatever the source (Parquet, .npy + JSONL, JSONL, image embedder), rows end up here and are
checked all at once before anything touches the catalog, so a bad row means nothing is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from scannlite.store.errors import InvalidInput


@dataclass
class Batch:
    ids: list[str]
    vectors: np.ndarray  # (n, dim) float32, normalised if the catalog normalises
    metadata: list[str | bytes | None]
    source_hashes: list[str | None] = field(default_factory=list)
    first_row: int = 0  # where these rows start in the whole input (a chunk of a streamed file)

    def __len__(self) -> int:
        return len(self.ids)


def _where(i: int, ids: list, first_row: int = 0) -> str:
    ident = ids[i] if i < len(ids) else None
    return f"row {first_row + i}" + (f" (id {ident!r})" if isinstance(ident, str) else "")


def validate(
    ids,
    vectors,
    metadata,
    *,
    dim: int,
    normalize: bool,
    metadata_type: str,
    metadata_limit: int,
    source_hashes=None,
    first_row: int = 0,
) -> Batch:
    """Check every row and return a :class:`Batch`; raise :class:`InvalidInput` on the first problem.
    ``first_row``: where these rows start in the whole input (chunks of a streamed file), so
    that errors name the input's own row numbers."""
    n = len(ids)
    if n == 0:
        raise InvalidInput("the input holds no rows")
    for i, ident in enumerate(ids):
        if ident is None or (isinstance(ident, str) and ident == ""):
            raise InvalidInput(f"row {first_row + i}: id is missing or empty")
        if not isinstance(ident, str):
            raise InvalidInput(f"row {first_row + i}: id must be a string, got {type(ident).__name__}")
    seen: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in seen:
            raise InvalidInput(
                f"id {ident!r} appears twice in the input (rows {first_row + seen[ident]} and {first_row + i})"
            )
        seen[ident] = i

    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise InvalidInput(f"embeddings must form a 2-d array (rows x {dim}), got shape {vectors.shape}")
    if vectors.shape[0] != n:
        raise InvalidInput(f"{vectors.shape[0]} embeddings for {n} ids")
    if vectors.shape[1] != dim:
        raise InvalidInput(f"embeddings have {vectors.shape[1]} dimensions, the catalog has {dim}")
    if not np.issubdtype(vectors.dtype, np.number) or np.iscomplexobj(vectors):
        raise InvalidInput(f"embeddings must be real numbers, got dtype {vectors.dtype}")
    with np.errstate(all="ignore"):  # what the cast makes of bad values is checked just below, in words
        as64 = vectors.astype(np.float64, copy=False)
    bad = ~np.isfinite(as64).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"{_where(i, ids, first_row)}: embedding contains NaN or infinity")
    with np.errstate(over="ignore"):
        out = as64.astype(np.float32)
    if not np.isfinite(out).all():
        i = int(np.argmax(~np.isfinite(out).all(axis=1)))
        raise InvalidInput(f"{_where(i, ids, first_row)}: embedding overflows float32")
    if normalize:
        with np.errstate(over="ignore", under="ignore"):
            norms = np.linalg.norm(as64, axis=1)
        zero = norms == 0
        if zero.any():
            i = int(np.argmax(zero))
            raise InvalidInput(f"{_where(i, ids, first_row)}: zero vector cannot be L2-normalised")
        out = (as64 / norms[:, None]).astype(np.float32)

    if metadata is None:
        metadata = [None] * n
    if len(metadata) != n:
        raise InvalidInput(f"{len(metadata)} metadata values for {n} ids")
    clean: list[str | bytes | None] = []
    for i, value in enumerate(metadata):
        clean.append(_metadata_value(value, i, ids, metadata_type, metadata_limit, first_row))
    hashes = list(source_hashes) if source_hashes is not None else [None] * n
    return Batch(list(ids), np.ascontiguousarray(out), clean, hashes, first_row)


def _metadata_value(value, i, ids, metadata_type, limit, first_row=0):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if metadata_type == "text":
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"{_where(i, ids, first_row)}: metadata is not valid UTF-8 (this catalog stores text metadata)"
                ) from None
        else:
            value = raw
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{_where(i, ids, first_row)}: metadata is not valid UTF-8 text") from None
        if metadata_type == "bytes":
            value = raw
    else:
        raise InvalidInput(f"{_where(i, ids, first_row)}: metadata must be text or bytes, got {type(value).__name__}")
    if len(raw) > limit:
        raise InvalidInput(f"{_where(i, ids, first_row)}: metadata is {len(raw)} bytes, the limit is {limit}")
    return value


def content_hash(vector: np.ndarray, metadata: str | bytes | None) -> str:
    h = hashlib.sha256(np.ascontiguousarray(vector, dtype="<f4").tobytes())
    if metadata is None:
        h.update(b"\x00")
    else:
        h.update(b"\x01" + (metadata.encode("utf-8") if isinstance(metadata, str) else metadata))
    return h.hexdigest()
