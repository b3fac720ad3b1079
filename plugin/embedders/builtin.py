"""The embedder types scannlite ships, registered like any plugin's: through the ``scannlite``
entry point in scannlite's pyproject.toml (see :mod:`scannlite.plugin.embedders.hookspecs`).

* ``tflite-text`` / ``tflite-image``: a ``.tflite`` embedder run by the Task Library's
  TextEmbedder / ImageEmbedder in a device process, exactly as a phone runs it;
* ``vectors``: precomputed vectors, a ``.npy`` (n, D) array (keys are row numbers) or a
  Parquet file with a list-of-floats column (``vector``/``embedding``/the only one) and an
  optional ``id``/``key`` column;
(``dual-encoder-text`` / ``dual-encoder-image`` are registered by :mod:`scannlite.plugin.dual_encoder.embedders`.)

Images are decoded here (:mod:`scannlite.store.images`) and sent as uint8 arrays to
one worker process per batch. Runs in the CLI/store process: models run in workers via ``run_in``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from scannlite.plugin.embedders.errors import EncoderError
from scannlite.plugin.embedders.hookspecs import Embedded, EmbedderError, EmbedderType, hookimpl
from scannlite.store.images import DEFAULT_MAX_PIXELS, ImageSkipped, load_rgb
from scannlite.store.workers.boundary import ProcessFailed, WorkerError, run_in

# Images per worker call, and decoded bytes per call (whichever is reached first): one
# process start (~0.3 s plus model load) per batch, memory bounded by the byte cap.
DEFAULT_IMAGE_BATCH = 2048
MAX_BATCH_BYTES = 512 * 1024 * 1024
_DEVICE = "scannlite.plugin.device.runtime"


def call_worker(kind: str, func: str, *args, **kwargs):
    try:
        return run_in(kind, func, *args, **kwargs)
    except WorkerError as exc:
        raise EmbedderError(str(exc)) from None
    except ProcessFailed as exc:
        raise EmbedderError(str(exc)) from None


def model_path(path: str, name: str, what: str) -> str:
    """The model path, or a one-line error when the user named the type without one."""
    if not str(path):
        raise EmbedderError(f"{name} needs {what}: name it as {name}:PATH")
    return str(path)


def _checked(check: Callable[[str], dict], path: str) -> int:
    """Check the signature; return the output width (so empty inputs still give (0, D))."""
    try:
        sig = check(path)
    except EncoderError as exc:
        raise EmbedderError(str(exc)) from None
    return int(sig["outputs"][0][2][-1])


def embed_image_files(
    paths: Sequence[str],
    run_batch: Callable[[list[np.ndarray]], np.ndarray],
    batch: int,
    max_pixels: int,
    progress: Callable[[int, int], None] | None,
    dim: int = 0,
) -> Embedded:
    """Decode in this process, embed ``batch`` images (or MAX_BATCH_BYTES) per worker call."""
    if batch < 1:
        raise EmbedderError(f"batch must be at least 1, got {batch}")
    parts: list[np.ndarray] = []
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    pending: list[np.ndarray] = []
    pending_paths: list[str] = []
    pending_bytes = 0
    done = 0

    def flush() -> None:
        nonlocal pending, pending_paths, pending_bytes, done
        if pending:
            parts.append(np.asarray(run_batch(pending), dtype=np.float32))
            kept.extend(pending_paths)
        done += len(pending_paths)
        pending, pending_paths, pending_bytes = [], [], 0
        if progress is not None:
            progress(done + len(skipped), len(paths))

    for path in paths:
        try:
            arr = load_rgb(path, max_pixels)
        except ImageSkipped as why:
            skipped.append((path, str(why)))
            continue
        pending.append(arr)
        pending_paths.append(path)
        pending_bytes += arr.nbytes
        if len(pending) >= batch or pending_bytes >= MAX_BATCH_BYTES:
            flush()
    flush()
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return Embedded(vectors, kept, skipped)


class TFLiteTextEmbedder:
    kind = "text"

    def __init__(self, path: str):
        from scannlite.plugin.embedders.tflite_signature import check_text_embedder

        self.path = model_path(path, "tflite-text", "a .tflite model")
        self.dim = _checked(check_text_embedder, self.path)

    def embed(self, items: Sequence[str] | None = None) -> Embedded:
        texts = [str(t) for t in (items or [])]
        if not texts:
            return Embedded(np.zeros((0, self.dim), np.float32), [], [])
        return Embedded(call_worker("device", f"{_DEVICE}:text_embed", self.path, texts), texts, [])


class TFLiteImageEmbedder:
    kind = "image"

    def __init__(self, path: str, batch: int = DEFAULT_IMAGE_BATCH, max_pixels: int | None = None):
        from scannlite.plugin.embedders.tflite_signature import check_image_embedder

        self.path = model_path(path, "tflite-image", "a .tflite model")
        self.batch = batch
        self.max_pixels = max_pixels or DEFAULT_MAX_PIXELS
        self.dim = _checked(check_image_embedder, self.path)

    def embed(self, items: Sequence[str] | None = None, progress: Callable[[int, int], None] | None = None) -> Embedded:
        """``progress(done, total)`` is called after each batch."""
        return embed_image_files(
            [str(p) for p in (items or [])],
            lambda arrays: call_worker("device", f"{_DEVICE}:image_embed", self.path, arrays),
            self.batch,
            self.max_pixels,
            progress,
            self.dim,
        )


class VectorsFile:
    """Precomputed vectors from ``.npy`` or Parquet, checked to be a finite 2-D float matrix."""

    kind = "vectors"
    dim: int | None = None
    VECTOR_COLUMNS = ("vector", "embedding", "vectors", "embeddings")
    KEY_COLUMNS = ("id", "key", "name", "path")

    def __init__(self, path: str):
        self.path = model_path(path, "vectors", "a .npy or .parquet file")
        p = Path(self.path)
        if not p.is_file():
            raise EmbedderError(f"vectors file not found: {p}")
        if p.suffix.lower() not in (".npy", ".parquet", ".pq"):
            raise EmbedderError(f"{p.name}: vectors must be a .npy or .parquet file")

    def _read(self) -> tuple[np.ndarray, list[str]]:
        p = Path(self.path)
        if p.suffix.lower() == ".npy":
            try:
                arr = np.load(p, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise EmbedderError(f"{p.name} is not a readable .npy array: {str(exc).splitlines()[0]}") from None
            return arr, [str(i) for i in range(len(arr))] if arr.ndim else []
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(p)
        except (pa.ArrowException, OSError) as exc:
            raise EmbedderError(f"{p.name} is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
        lists = [
            f.name
            for f in table.schema
            if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type) or pa.types.is_large_list(f.type)
        ]
        column = next((c for c in self.VECTOR_COLUMNS if c in lists), lists[0] if len(lists) == 1 else None)
        if column is None:
            raise EmbedderError(
                f"{p.name}: no vector column (a list of floats named one of "
                f"{', '.join(self.VECTOR_COLUMNS)}); list columns: {', '.join(lists) or 'none'}"
            )
        rows = table.column(column).to_pylist()
        if any(r is None for r in rows) or len({len(r) for r in rows}) > 1:
            raise EmbedderError(f"{p.name}: column {column!r} has missing or ragged vectors")
        arr = np.asarray(rows, dtype=np.float64) if rows else np.zeros((0, 0))
        key_col = next((c for c in self.KEY_COLUMNS if c in table.column_names), None)
        keys = [str(k) for k in table.column(key_col).to_pylist()] if key_col else [str(i) for i in range(len(rows))]
        return arr, keys

    def embed(self, items: Sequence[str] | None = None) -> Embedded:
        arr, keys = self._read()
        name = Path(self.path).name
        if arr.ndim != 2 or arr.shape[1] < 1:
            raise EmbedderError(f"{name}: expected a 2-D (n, D) matrix, got shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise EmbedderError(f"{name}: expected numbers, got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise EmbedderError(f"{name}: contains NaN or infinite values")
        return Embedded(arr.astype(np.float32), keys, [])


@hookimpl
def scannlite_embedders() -> list[EmbedderType]:
    tflite, vectors = (".tflite",), (".npy", ".parquet", ".pq")
    return [
        EmbedderType(
            "tflite-text",
            "text",
            "TFLite text embedder (.tflite) run by the Task Library's TextEmbedder, as on a phone",
            TFLiteTextEmbedder,
            tflite,
        ),
        EmbedderType(
            "tflite-image",
            "image",
            "TFLite image embedder (.tflite) run by the Task Library's ImageEmbedder, as on a phone",
            TFLiteImageEmbedder,
            tflite,
        ),
        EmbedderType(
            "vectors", "vectors", "precomputed vectors from a .npy (n, D) array or a Parquet file", VectorsFile, vectors
        ),
    ]
