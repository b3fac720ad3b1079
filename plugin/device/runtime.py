"""Device-side entry points: what a phone's Task Library does, run on this machine.

Every public function here is meant to be called through
``scannlite.store.workers.boundary.run_in("device", "scannlite.plugin.device.runtime:<name>", ...)``:
arguments and results are plain python, numpy arrays and bytes, so they pickle across the
process boundary, and a native crash (tflite-support 0.4.4 segfaults on some bundles) kills
only the worker. Errors the Task Library or the index builder raise come back as
:class:`DeviceError` with one line that says which step failed and why.

Models and indices travel as bytes and reach the Task Library as ``file_content`` /
``index_file_content``, or as paths of files the caller wrote (an export's index or bundle,
which may be larger than is worth pickling), which the Task Library opens itself
(``file_name`` / ``index_file_name``) and scannlite's reader judges through a memory map: a
bundle of any size is never read whole into this process.
Which Task Library class a model gets, and which output holds its embedding, is decided by
the acceptance policy (:mod:`scannlite.store.bundle.embedder_checks`), as in every process.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

# attach_index, scann_config (the store's: the config is pure protobuf) and make_probe_model are
# re-exported so that every device entry point is "scannlite.plugin.device.runtime:<name>".
from scannlite.plugin.device import image_resize
from scannlite.plugin.device.bundle import attach_index
from scannlite.plugin.device.probe_model import make_probe_model
from scannlite.plugin.device.tasks import (
    DeviceError,
    _as_bytes,
    _fail,
    _index_source,
    _inspected,
    _loaded,
    _search_options,
    _task,
    use_mediapipe,
)
from scannlite.store.bundle.ondevice.index_writer import check_index_inputs, scann_config
from scannlite.store.errors import one_line

__all__ = [
    "DeviceError",
    "build_index",
    "scann_config",
    "attach_index",
    "make_probe_model",
    "text_search",
    "image_search",
    "text_embed",
    "image_embed",
    "user_info",
]

Neighbors = list[tuple[bytes, float]]


# --------------------------------------------------------------------------- index builder


def build_index(
    *,
    embedding_dim: int,
    serialized_config: bytes,
    user_info: bytes,
    partition_assignment,
    metadata: Sequence[bytes],
    hashed_database=None,
    float_database=None,
    compression: bool = True,
) -> bytes:
    """Serialize an on-device ScaNN index (a LevelDB table) with tflite-support's builder.

    Exports write their index with scannlite's own streamed writer
    (:mod:`scannlite.store.bundle.ondevice.index_writer`); this builder is the reference it is tested
    against, and the export layout "builder". ``serialized_config`` is a serialized
    ``ScannOnDeviceConfig`` (:func:`scann_config`).
    Exactly one database: ``float_database`` (n, embedding_dim) float32, or ``hashed_database``
    (n, embedding_dim) uint8 asymmetric-hashing codes, ``embedding_dim`` then being the number
    of subspaces. ``partition_assignment[i]`` is point i's leaf; ``metadata[i]`` its payload,
    returned by searches. Points are regrouped by leaf in the file (their ``M_j`` ids follow).
    """
    from tensorflow_lite_support.scann_ondevice.cc.python import index_builder

    if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, (int, np.integer)) or embedding_dim < 1:
        raise ValueError(f"embedding_dim must be a positive integer; got {embedding_dim!r}")
    config = _as_bytes(serialized_config, "serialized_config")
    info = _as_bytes(user_info, "user_info")
    if not isinstance(metadata, Sequence) or isinstance(metadata, (bytes, str)):
        raise TypeError("metadata must be a list of bytes, one per point")
    metadata = [_as_bytes(m, f"metadata[{i}]") for i, m in enumerate(metadata)]
    n = len(metadata)
    if (hashed_database is None) == (float_database is None):
        raise ValueError("give exactly one of hashed_database (uint8 codes) and float_database (float32)")
    if float_database is not None:
        database = _exact_array(float_database, np.float32, "float_database", "f")
        key = "float_database"
    else:
        database = _exact_array(hashed_database, np.uint8, "hashed_database", "iu")
        key = "hashed_database"
    if database.size != n * int(embedding_dim):
        raise ValueError(
            f"{key} holds {database.size} values; {n} points x embedding_dim "
            f"{int(embedding_dim)} needs {n * int(embedding_dim)}"
        )
    assignment = _exact_array(partition_assignment, np.uint32, "partition_assignment", "iu")
    if assignment.size != n:
        raise ValueError(f"partition_assignment has {assignment.size} entries for {n} metadata items")
    check_index_inputs(config, int(embedding_dim), database, hashed=key == "hashed_database")
    try:
        # The binding reads the databases through absl::Span casters; given anything but a
        # contiguous array of the exact dtype they copy into a temporary that is freed before
        # the index is written, and the index silently holds garbage (measured with a list of
        # floats). _exact_array makes the zero-copy path the only one taken.
        return bytes(
            index_builder.create_serialized_index_file(
                embedding_dim=int(embedding_dim),
                serialized_config=config,
                userinfo=info,
                partition_assignment=assignment,
                metadata=metadata,
                compression=bool(compression),
                **{key: database},
            )
        )
    except Exception as exc:  # pybind11_abseil's StatusNotOk derives from Exception only
        raise _fail("index builder refused the index", exc) from None


def _exact_array(values, dtype, what: str, kinds: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size and arr.dtype.kind not in kinds:
        raise TypeError(f"{what} must hold {np.dtype(dtype).name} values; got dtype {arr.dtype}")
    if arr.dtype.kind in "iu" and np.dtype(dtype).kind in "iu" and arr.size:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise ValueError(f"{what} values must lie in [{info.min}, {info.max}]")
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return np.ascontiguousarray(arr.reshape(-1), dtype=dtype)


# --------------------------------------------------------------------------- Task Library


def _check_output_index(output_index) -> int:
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) or output_index < 0:
        raise ValueError(f"output_index must be an integer >= 0; got {output_index!r}")
    return int(output_index)


def _neighbors(result) -> Neighbors:
    return [(bytes(nn.metadata), float(nn.distance)) for nn in result.nearest_neighbors]


def _texts(texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts/queries must be a list of str")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"query {i} must be str; got {type(t).__name__}")
    return list(texts)


def _images(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) or not isinstance(images, Sequence):
        raise TypeError("images must be a list of uint8 arrays of shape (height, width, 3)")
    out = []
    for i, img in enumerate(images):
        arr = np.asarray(img)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
            raise ValueError(f"image {i} must be uint8 (height, width, 3); got {arr.dtype} {arr.shape}")
        out.append(np.ascontiguousarray(arr))
    return out


def _tensor_image(arr: np.ndarray):
    from tensorflow_lite_support.python.task.vision.core.tensor_image import TensorImage

    # TensorImage squeezes its array; a 1-pixel-high or -wide image would lose an axis.
    if 1 in arr.shape[:2]:
        raise ValueError(f"images must be at least 2x2 pixels; got {arr.shape[:2]}")
    return TensorImage.create_from_array(arr)


def _inputs(kind: str, items, mediapipe: bool = False) -> list:
    """Checked texts, or TensorImages of checked uint8 RGB arrays (the arrays for MediaPipe)."""
    if kind == "text":
        return _texts(items)
    return _images(items) if mediapipe else [_tensor_image(a) for a in _images(items)]


def _search(
    kind: str, model, queries, max_results, l2_normalize, index, seconds: list | None = None
) -> list[Neighbors]:
    index, index_key = _index_source(index)
    inputs = _inputs(kind, queries)

    def load(model: bytes | str):
        _inspected(model, kind, searched_with=True, index=index)
        return _task(kind, "Searcher", model, l2_normalize, _search_options(max_results, index)), None

    searcher, _ = _loaded(model, ("Searcher", kind, bool(l2_normalize), max_results, *index_key), load)
    out = []
    try:
        for x in inputs:
            started = time.perf_counter()
            result = searcher.search(x)
            if seconds is not None:
                seconds.append(time.perf_counter() - started)
            out.append(_neighbors(result))
    except Exception as exc:
        raise _fail(f"{type(searcher).__name__} search failed", exc) from None
    return out


def text_search(
    model: bytes | str,
    queries: list[str],
    *,
    max_results: int,
    l2_normalize: bool,
    index: bytes | str | None = None,
    seconds: list | None = None,
) -> list[Neighbors]:
    """TextSearcher results per query: ``[(metadata, distance), ...]``, nearest first.

    ``l2_normalize`` has no default on purpose: the index does not record whether its vectors
    were normalized, so the caller must say how the query is to be treated.
    ``index`` (bytes or a path) overrides the model's packed SCANN_INDEX_FILE (the Task Library's rule).
    Distances are the device's: squared L2, or the *negative* dot product. ``seconds``, when
    given, receives each search's wall time (embedding the query included).
    """
    return _search("text", model, queries, max_results, l2_normalize, index, seconds)


def image_search(
    model: bytes | str,
    images: list[np.ndarray],
    *,
    max_results: int,
    l2_normalize: bool,
    index: bytes | str | None = None,
) -> list[Neighbors]:
    """ImageSearcher results per image (uint8 RGB, height x width x 3); see :func:`text_search`."""
    return _search("image", model, images, max_results, l2_normalize, index)


def _embed(kind: str, model, items, l2_normalize: bool, output_index: int | None, engine: str | None) -> np.ndarray:
    mediapipe = use_mediapipe(engine)
    inputs = _inputs(kind, items, mediapipe)

    def load(model: bytes | str):
        facts = _inspected(model, kind)
        return _task(kind, "Embedder", model, l2_normalize, mediapipe=mediapipe), facts

    embedder, facts = _loaded(model, ("Embedder", kind, bool(l2_normalize), mediapipe), load)
    if mediapipe and kind == "image":
        # MediaPipe resizes with another filter than the Task Library's: resize as it does first.
        _, height, width, _ = facts.description["inputs"][0]["shape"]
        inputs = [np.ascontiguousarray(image_resize.resize(x, height, width)) for x in inputs]
    output_index = facts.output_index if output_index is None else _check_output_index(output_index)
    try:
        results = [embedder.embed(x) for x in inputs]
    except Exception as exc:
        raise _fail(f"{type(embedder).__name__} failed", exc) from None
    rows = []
    for result in results:
        # The Task Library hands values back as float64 copies of its float32 output (the
        # cast back is exact); MediaPipe as float32 vectors.
        vectors = result if mediapipe else [e.feature_vector.value for e in result.embeddings]
        if output_index >= len(vectors):
            raise ValueError(
                f"{kind}_embed: the model has {len(vectors)} outputs; output_index {output_index} does not exist"
            )
        rows.append(np.asarray(vectors[output_index]).astype(np.float32))
    if not rows:
        if mediapipe:
            shape = facts.description["outputs"][output_index]["shape"]
            return np.zeros((0, int(np.prod(shape[1:]))), np.float32)
        return np.zeros((0, embedder.get_embedding_dimension(output_index)), np.float32)
    return np.stack(rows)


def text_embed(
    model: bytes | str,
    texts: list[str],
    l2_normalize: bool = False,
    *,
    output_index: int | None = None,
    engine: str | None = None,
) -> np.ndarray:
    """TextEmbedder outputs, float32 (len(texts), dim), from output tensor ``output_index``
    (default: the one the searcher reads). ``model`` is the model's bytes or its path.
    ``engine``: "task-library" or "mediapipe" (within ulps, docs/python-versions.md); default the
    Task Library where tflite-support is installed, else MediaPipe."""
    return _embed("text", model, texts, l2_normalize, output_index, engine)


def image_embed(
    model: bytes | str,
    images: list[np.ndarray],
    l2_normalize: bool = False,
    *,
    output_index: int | None = None,
    engine: str | None = None,
) -> np.ndarray:
    """ImageEmbedder outputs, float32 (len(images), dim); images uint8 (height, width, 3).
    ``model`` is the model's bytes or its path."""
    return _embed("image", model, images, l2_normalize, output_index, engine)


def user_info(model: bytes, index: bytes | None = None) -> bytes:
    """The index's USER_INFO bytes as the Task Library reads them (b"" if it has none).

    Opens the searcher the acceptance policy names for the model (ImageSearcher for an image
    embedder, else TextSearcher); ``index`` overrides the packed one. USER_INFO must be UTF-8
    here: the Python binding cannot hand back other bytes (a :class:`DeviceError` says so).
    """
    model = _as_bytes(model, "model")
    index = None if index is None else _as_bytes(index, "index")
    facts = _inspected(model, None, searched_with=True, index=index)
    searcher = _task(facts.kind, "Searcher", model, False, _search_options(1, index))
    try:
        info = searcher.get_user_info()
    except Exception as exc:
        # The C++ API returns raw bytes, but the Python binding decodes them as UTF-8 and
        # fails ("Could not allocate string object!") on anything else.
        raise DeviceError(
            "the index's USER_INFO is not UTF-8, which tflite-support's Python "
            f"binding cannot return ({one_line(exc)}); read it from the index file"
        ) from None
    return info.encode("utf-8") if isinstance(info, str) else bytes(info)
