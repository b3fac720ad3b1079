"""Task Library tasks opened once per device process: loaded models cached by what could change their answer.

A worker answering many queries keeps each (model, options) it loaded, keyed by the model file's identity or its
bytes' digest, so repeated searches skip the load; the cache is bounded so a long-lived worker does not hoard
models. Runs only in device processes (see :mod:`scannlite.plugin.device`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import OrderedDict

import numpy as np

# attach_index, scann_config (the store's: the config is pure protobuf) and make_probe_model are
# re-exported so that every device entry point is "scannlite.plugin.device.runtime:<name>".
from scannlite.plugin.device.bundle import packs_index
from scannlite.store.bundle.embedder_checks import EmbedderFacts, inspect_embedder
from scannlite.store.bundle.ondevice.bundle_file import mapped
from scannlite.store.errors import ScannliteError, one_line


class DeviceError(ScannliteError, RuntimeError):
    """The Task Library or the index builder refused; ``str()`` is one line."""


def _fail(step: str, exc: BaseException) -> DeviceError:
    return DeviceError(f"{step}: {one_line(exc)}")


def _as_bytes(value, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes; got {type(value).__name__}")


def _check_max_results(max_results) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, (int, np.integer)) or max_results < 1:
        raise ValueError(f"max_results must be an integer >= 1; got {max_results!r}")
    return int(max_results)


# Loaded Task Library objects, kept while the worker lives (a warm worker answers the next
# query without loading the model again). Keyed by what could change the answer: the model's
# path with its modification time and size (a file replaced on disk is loaded anew) or its
# content, and the options. Bounded: a long-lived worker must not hoard every model it met.
MODEL_CACHE = 8


_LOADED: OrderedDict[tuple, tuple] = OrderedDict()


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha1(data).hexdigest()


def _file_key(path, what: str) -> tuple:
    """What identifies a file's contents without reading it: a file replaced at the same path
    (a rename over it gives a new inode and change time) gets a new key."""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    return "path", path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


def _loaded(model, options: tuple, load):
    """``load(model)`` once per (model, options), the model as bytes or as its file's absolute
    path; later calls reuse its result."""
    if isinstance(model, (str, os.PathLike)):
        key = (*_file_key(model, "model"), *options)
        model = key[1]
    else:
        model = _as_bytes(model, "model")
        key = ("bytes", _digest(model), *options)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    value = load(model)
    _LOADED[key] = value
    while len(_LOADED) > MODEL_CACHE:
        _LOADED.popitem(last=False)
    return value


def _inspected(model: bytes | str, kind: str | None, *, searched_with=False, index=None) -> EmbedderFacts:
    """The acceptance policy's facts for ``model`` (bytes, or a path read through a map).
    ``searched_with``: also make sure there is an index to search, given or packed."""
    try:
        source = mapped(model) if isinstance(model, str) else contextlib.nullcontext(model)
        with source as data:
            facts = inspect_embedder(data, "the model", kind)
            # tflite-support 0.4.4 segfaults (ImageSearcher) when neither is present; say so instead.
            if searched_with and index is None and not packs_index(facts):
                raise ValueError("the model carries no SCANN_INDEX_FILE and no index was given")
    except OSError as exc:
        shown = model if isinstance(model, str) else repr(model)
        raise ValueError(f"cannot read the model {shown}: {exc.strerror or exc}") from None
    return facts


def _embedding_options(l2_normalize):
    from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions

    if not isinstance(l2_normalize, (bool, np.bool_)):
        raise TypeError(f"l2_normalize must be True or False; got {l2_normalize!r}")
    return EmbeddingOptions(l2_normalize=bool(l2_normalize))


def _search_options(max_results: int, index: bytes | str | None):
    from tensorflow_lite_support.python.task.processor.proto.search_options_pb2 import SearchOptions

    search = SearchOptions(max_results=_check_max_results(max_results))
    if isinstance(index, str):
        search.index_file_name = index
    elif index is not None:
        search.index_file_content = index
    return search


def _index_source(index) -> tuple[bytes | str | None, tuple]:
    """An index override as the Task Library takes it (bytes, or a path it reads itself: a large
    index is not worth pickling) and what identifies it in the cache of loaded searchers."""
    if index is None:
        return None, (None,)
    if isinstance(index, (str, os.PathLike)):
        key = _file_key(index, "index")
        return key[1], key
    index = _as_bytes(index, "index")
    return index, ("bytes", _digest(index))


class MediaPipeEmbedder:
    """MediaPipe's TextEmbedder or ImageEmbedder behind the Task Library embedder's calls: where
    tflite-support cannot install (Python 3.12+), it computes the Task Library's embeddings to within
    a few ulps (docs/python-versions.md). ``embed(x)`` returns one float32 vector per output tensor."""

    def __init__(self, kind: str, model: bytes | str, l2_normalize: bool):
        from mediapipe.tasks.python.core.base_options import BaseOptions

        if kind == "text":
            from mediapipe.tasks.python.text import text_embedder as module

            name = "TextEmbedder"
        else:
            from mediapipe.tasks.python.vision import image_embedder as module

            name = "ImageEmbedder"
        self.kind = kind
        base = BaseOptions(model_asset_path=model) if isinstance(model, str) else BaseOptions(model_asset_buffer=model)
        options = getattr(module, f"{name}Options")(base_options=base, l2_normalize=bool(l2_normalize))
        self._embedder = getattr(module, name).create_from_options(options)

    def embed(self, x) -> list[np.ndarray]:
        if self.kind == "image":
            from mediapipe.tasks.python.vision.core.image import Image, ImageFormat

            # MediaPipe reads the buffer as laid out in C order; a strided view would be misread.
            x = Image(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(x))
        return [np.asarray(e.embedding, dtype=np.float32) for e in self._embedder.embed(x).embeddings]


def use_mediapipe(engine: str | None) -> bool:
    """Whether an embedder runs in MediaPipe: ``engine`` "mediapipe" or "task-library", or None for
    the Task Library where tflite-support is installed and MediaPipe elsewhere."""
    from scannlite.store.bundle.ondevice.tflite_modules import task_library_installed

    if engine not in (None, "mediapipe", "task-library"):
        raise ValueError(f"engine must be 'mediapipe' or 'task-library'; got {engine!r}")
    if engine == "task-library" and not task_library_installed():
        raise DeviceError("the Task Library is not installed (tflite-support has wheels for Python 3.11 only)")
    return engine == "mediapipe" or (engine is None and not task_library_installed())


def _task(kind: str, role: str, model: bytes | str, l2_normalize: bool, search=None, *, mediapipe: bool = False):
    """The Task Library's TextEmbedder, ImageEmbedder, TextSearcher or ImageSearcher (``kind``
    "text" or "image", ``role`` "Embedder" or "Searcher") for ``model``: bytes, or a path the
    Task Library maps itself (bytes would be copied into every task it makes)."""
    import importlib

    from scannlite.store.bundle.ondevice.tflite_modules import task_library_installed

    name = f"{kind.capitalize()}{role}"
    if mediapipe or not task_library_installed():
        if role != "Embedder":
            raise DeviceError(
                f"{name} needs the Task Library: tflite-support is not installed (it has wheels for "
                "Python 3.11 only; pip install 'scannlite[task-library]' there)"
            )
        try:
            return MediaPipeEmbedder(kind, model, l2_normalize)
        except Exception as exc:
            raise _fail(f"MediaPipe's {name} could not load the model", exc) from None
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions

    package = "text" if kind == "text" else "vision"
    module = importlib.import_module(f"tensorflow_lite_support.python.task.{package}.{kind}_{role.lower()}")
    extra = {} if search is None else {"search_options": search}
    base = BaseOptions(file_name=model) if isinstance(model, str) else BaseOptions(file_content=model)
    options = getattr(module, f"{name}Options")(
        base_options=base, embedding_options=_embedding_options(l2_normalize), **extra
    )
    try:
        return getattr(module, name).create_from_options(options)
    except Exception as exc:  # pybind11_abseil's StatusNotOk derives from Exception only
        raise _fail(f"{name} could not load the {'bundle' if search is not None else 'model'}", exc) from None
