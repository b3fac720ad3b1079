"""What an embedder plugin implements: the pluggy hook specification and the types it shares.

A plugin package imports only this module. It names a module of its own under the
``scannlite`` entry-point group, and that module implements the hook::

    # pyproject.toml of a plugin package
    [project.entry-points.scannlite]
    my_embedders = "my_package.scannlite_plugin"

    # my_package/scannlite_plugin.py
    from scannlite.plugin.embedders.hookspecs import Embedded, EmbedderType, hookimpl

    @hookimpl
    def scannlite_embedders():
        return [EmbedderType("my-text", "text", "What it is, in one line.", MyTextEmbedder)]

scannlite's own embedders are registered the same way (:mod:`scannlite.plugin.embedders.builtin`);
:mod:`scannlite.plugin.embedders.registry` loads the entry points and resolves names. docs/plugins.md
has a complete example.

This module runs in every process and imports nothing but numpy and pluggy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pluggy

from scannlite.store.errors import InvalidInput

PROJECT = "scannlite"
KINDS = ("text", "image", "vectors")
DIRECTORY = "/"  # in EmbedderType.suffixes: the type opens a directory

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass
class Embedded:
    """What an embedder returns: float32 vectors, the inputs they belong to, and skips.

    Rows follow the order of the inputs; an input that could not be embedded (an unreadable
    image) has no row and is listed in ``skipped`` with a one-line reason.
    """

    vectors: np.ndarray  # float32 (n, D)
    keys: list[str]  # input per row: text, path or id
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)


class Embedder(Protocol):
    """An opened embedder.

    ``embed`` takes texts (kind ``text``) or image file paths (kind ``image``); a ``vectors``
    embedder returns its file with ``embed(None)``. ``dim`` is the output width when known
    without embedding anything (scannlite then checks it against the catalog up front),
    or None. Expected failures raise :class:`EmbedderError` with a one-line message.
    """

    kind: str
    path: str

    @property
    def dim(self) -> int | None: ...  # read-only here, so an embedder that always knows it may say ``dim: int``

    def embed(self, items: Sequence[str] | None = None) -> Embedded: ...


@dataclass(frozen=True)
class EmbedderType:
    """One way of embedding, offered by a plugin.

    ``open(path)`` returns an :class:`Embedder`; ``path`` is the model file or directory the
    user named (``--embedder NAME:PATH``), or ``""`` when only the name was given.
    ``suffixes`` are the file suffixes (lower case, with the dot; :data:`DIRECTORY` for a
    directory) that make a bare path mean this type, e.g. ``(".tflite",)``.
    """

    name: str  # unique, e.g. "tflite-image"
    kind: str  # "text", "image" or "vectors"
    description: str  # one line for `scannlite embedders`
    open: Callable[[str], Embedder] = field(repr=False, compare=False)
    suffixes: tuple[str, ...] = ()
    source: str = ""  # filled in by scannlite: the package that provided it


class EmbedderSpecs:
    @hookspec
    def scannlite_embedders(self) -> list[EmbedderType]:
        """Return the embedder types this plugin provides."""
        raise NotImplementedError  # a hook specification: pluggy calls the plugins' implementations, never this


class EmbedderError(InvalidInput, ValueError):
    """A one-line, user-facing problem with an embedder or its inputs."""
