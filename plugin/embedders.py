"""Embedder plugins: how packages give scannlite ways to turn texts, images or files into vectors.

Why pluggy: catalogs should not care what made their vectors. A package registers embedder
*types* by implementing the ``scannlite_embedders`` hook in a module it names under the
``scannlite`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points.scannlite]
    my_embedders = "my_package.scannlite_plugin"

    # my_package/scannlite_plugin.py
    from scannlite.plugin.embedders import EmbedderType, hookimpl

    @hookimpl
    def scannlite_embedders():
        return [EmbedderType("my-text", "text", "What it is, in one line.", open_my_text)]

``open`` takes a path (a model file, a model directory, a vectors file) and returns an
:class:`Embedder`. Built in (:mod:`scannlite.plugin.encoder.builtin_embedders`): ``tflite-text``
and ``tflite-image`` (Task Library TextEmbedder / ImageEmbedder in a device process),
``vectors`` (precomputed Parquet / .npy), ``dual-encoder-text`` and ``dual-encoder-image``
(a trained scannlite model directory, Keras in a TensorFlow process).

This module runs in the CLI/store process: it imports neither TensorFlow nor tflite-support's
native modules; every model runs in a worker started by :func:`scannlite.plugin.boundary.run_in`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import pluggy

from scannlite.store.errors import ScannliteError

PROJECT = "scannlite"
ENTRY_POINT_GROUP = "scannlite"
KINDS = ("text", "image", "vectors")
BUILTIN_PLUGIN = "builtin"
BUILTIN_SOURCE = "scannlite (built-in)"
# Images per device process call, and decoded bytes per call (whichever is reached first):
# one process start (~0.3 s plus model load) per batch, memory bounded by the byte cap.
DEFAULT_IMAGE_BATCH = 2048
MAX_BATCH_BYTES = 512 * 1024 * 1024

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass
class Embedded:
    """What an embedder returns: float32 vectors, the inputs they belong to, and skips."""
    vectors: np.ndarray                                            # float32 (n, D)
    keys: list[str]                                                # input per row: text, path or id
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)


class Embedder(Protocol):
    """An opened embedder. ``embed(None)`` is how a ``vectors`` embedder returns its file."""
    kind: str
    path: str

    def embed(self, items: Sequence[str] | None = None) -> Embedded: ...


@dataclass(frozen=True)
class EmbedderType:
    name: str                              # unique, e.g. "tflite-image"
    kind: str                              # "text", "image" or "vectors"
    description: str                       # one line for `scannlite embedders`
    open: Callable[[str], Embedder] = field(repr=False, compare=False)
    source: str = ""                       # filled in by the registry: who provided it


class EmbedderSpecs:
    @hookspec
    def scannlite_embedders(self) -> list[EmbedderType]:
        """Return the embedder types this plugin provides."""


class EmbedderError(ScannliteError, ValueError):
    """A one-line, user-facing problem with an embedder or its inputs."""


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    from .encoder import builtin_embedders

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(EmbedderSpecs)
    pm.register(builtin_embedders, name=BUILTIN_PLUGIN)  # also works before the entry point is installed
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)    # skips the name already registered
    return pm


def _sources(pm: pluggy.PluginManager) -> dict[int, str]:
    found = {id(pm.get_plugin(BUILTIN_PLUGIN)): BUILTIN_SOURCE}
    for plugin, dist in pm.list_plugin_distinfo():
        if id(plugin) not in found:
            found[id(plugin)] = f"{dist.project_name} {dist.version}"
    return found


def list_embedders() -> list[EmbedderType]:
    """Every installed embedder type, with ``source`` set; later duplicates of a name are dropped."""
    pm = plugin_manager()
    sources = _sources(pm)
    seen: dict[str, EmbedderType] = {}
    for impl in reversed(pm.hook.scannlite_embedders.get_hookimpls()):  # registration order
        try:
            provided = impl.function() or []
        except Exception as exc:  # a broken plugin must not break the listing
            name = pm.get_name(impl.plugin) or "plugin"
            seen.setdefault(f"<{name}>", EmbedderType(f"<{name}>", "text", f"broken plugin: {exc}",
                                                       lambda p: None, sources.get(id(impl.plugin), name)))
            continue
        for et in provided:
            if et.kind not in KINDS or et.name in seen:
                continue
            seen[et.name] = replace(et, source=sources.get(id(impl.plugin), pm.get_name(impl.plugin) or "plugin"))
    return list(seen.values())


def get_embedder_type(name: str) -> EmbedderType:
    types = {et.name: et for et in list_embedders()}
    if name not in types:
        raise EmbedderError(f"unknown embedder {name!r}; installed: {', '.join(sorted(types))}")
    return types[name]


def open_embedder(name: str, path: str | Path) -> Embedder:
    return get_embedder_type(name).open(str(path))


# ---- the two calls ingestion uses ----------------------------------------------------------

def embed_texts(embedder_path: str | Path, texts: Iterable[str]) -> np.ndarray:
    """float32 (n, D): the Task Library's TextEmbedder in one device process for all texts."""
    from .encoder.builtin_embedders import TFLiteTextEmbedder

    return TFLiteTextEmbedder(str(embedder_path)).embed(list(texts)).vectors


def embed_images(embedder_path: str | Path, image_paths: Iterable[str | Path], batch: int = DEFAULT_IMAGE_BATCH,
                 progress: Callable[[int, int], None] | None = None,
                 max_pixels: int | None = None) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(vectors float32 (n, D), embedded paths, skipped (path, reason)) with the ImageEmbedder.

    Images are decoded here with Pillow (any mode -> RGB; corrupt, truncated or too large
    files become skips) and sent as uint8 arrays to one device process per ``batch``.
    ``progress(done, total)`` is called after each batch.
    """
    from .encoder.builtin_embedders import TFLiteImageEmbedder

    result = TFLiteImageEmbedder(str(embedder_path), batch=batch, max_pixels=max_pixels).embed_paths(
        [str(p) for p in image_paths], progress)
    return result.vectors, result.keys, result.skipped
