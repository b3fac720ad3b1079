"""Search a catalog by vector, text or image: one path for ``scannlite search``, the Python API
(:mod:`scannlite.plugin.facade.database`) and the Datasette search page.

Texts and images become query vectors through the catalog's *configured* embedders (its
``text_embedder`` / ``image_embedder`` settings, written by ``scannlite configure`` or by
``add --texts/--images``), resolved through the embedder plugins like every other caller
(:mod:`scannlite.plugin.embedders.registry`): a ``.tflite`` model runs in the Task Library in a device
worker (this process never imports tflite-support or TensorFlow), a plugin's embedder runs as
its plugin says. The vectors then go through :func:`scannlite.store.index.snapshot.search`, which
normalises them as the catalog does and searches the way a phone does (or exactly), so a
text query here returns what ``scannlite bundle query`` returns from the exported bundle.

Opened embedders are kept for the life of the process, keyed by the setting and the model
file's size and modification time: opening one reads and checks the model file, which for a
MiniLM tower costs more than the query itself. A replaced file is opened anew.

Every problem a user can fix is a :class:`QueryError` (one line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scannlite.plugin.embedders.hookspecs import Embedder

import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput, one_line
from scannlite.store.index.snapshot import LoadedSnapshot
from scannlite.store.index.snapshot import search as search_snapshot

QUERY_KINDS = ("text", "image")
KEEP_EMBEDDERS = 8


class QueryError(InvalidInput):
    """A one-line reason a query cannot run as asked."""


@dataclass(frozen=True)
class QueryEmbedder:
    """A catalog's configured embedder of one kind, opened and checked against its dimension."""

    kind: str
    label: str  # a short name for people: the model's file name, or the type's name
    embedder: Embedder
    dim: int

    def embed(self, items: Sequence) -> np.ndarray:
        """float64 (len(items), dim): one row per text, or per image (a path or the file's bytes)."""
        from scannlite.plugin.embedders.hookspecs import EmbedderError

        items = list(items)
        if not items:
            return np.zeros((0, self.dim), np.float64)
        try:
            if self.kind == "image":
                with tempfile.TemporaryDirectory(prefix="scannlite-query-") as tmp:
                    got, names = self._embed_images(items, Path(tmp))
            else:
                got, names = self.embedder.embed([str(t) for t in items]), [str(t) for t in items]
        except EmbedderError as exc:
            raise QueryError(f"the {self.kind} embedder failed: {one_line(exc)}") from None
        if got.skipped:
            item, why = got.skipped[0]
            which = (
                "the query"
                if len(items) == 1
                else f"query {names.index(item) + 1}"
                if item in names
                else f"query {item}"
            )
            raise QueryError(f"the {self.kind} embedder could not embed {which}: {why}")
        vectors = np.asarray(got.vectors, dtype=np.float64)
        if vectors.ndim != 2 or len(vectors) != len(items):
            raise QueryError(
                f"the {self.kind} embedder {self.label} returned {len(vectors)} vectors for {len(items)} queries"
            )
        if vectors.shape[1] != self.dim:
            raise QueryError(
                f"the {self.kind} embedder {self.label} outputs {vectors.shape[1]}-d vectors, "
                f"the catalog has {self.dim}-d vectors"
            )
        return vectors

    def _embed_images(self, items: list, tmp: Path):
        """Embedders take image files: bytes are written to files of their own first."""
        paths = []
        for i, item in enumerate(items):
            if isinstance(item, (bytes, bytearray, memoryview)):
                path = tmp / f"query-image-{i}"
                path.write_bytes(bytes(item))
            else:
                path = Path(item)
                if not path.is_file():
                    raise QueryError(f"cannot read {item}: no such file")
            paths.append(str(path))
        return self.embedder.embed(paths), paths


_OPENED: dict[tuple, QueryEmbedder] = {}
_OPENED_LOCK = threading.Lock()


def _stamp(path: str) -> tuple | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def query_embedder(cat: Catalog, kind: str) -> QueryEmbedder:
    """The catalog's configured ``kind`` embedder, opened once per process and model file."""
    from scannlite.plugin.embedders import registry as embedders
    from scannlite.plugin.embedders.hookspecs import EmbedderError

    if kind not in QUERY_KINDS:
        raise ValueError(f"kind must be one of {QUERY_KINDS}, got {kind!r}")
    value = cat.settings.get(f"{kind}_embedder")
    if not value:
        raise QueryError(
            f"this catalog has no {kind} embedder; set one with "
            f"`scannlite configure CATALOG --{kind}-embedder MODEL.tflite`"
        )
    try:
        et, path = embedders.resolve(value, kind)
        key = (kind, et.name, path, _stamp(path) if path else None, cat.dim)
        with _OPENED_LOCK:
            found = _OPENED.get(key)
        if found is not None:
            return found
        et, path, emb = embedders.open_for(value, kind)
        embedders.check_dim(et, path, emb, cat.dim)
    except EmbedderError as exc:
        raise QueryError(
            f"the configured {kind} embedder cannot be used ({exc}); run `scannlite configure` again"
        ) from None
    opened = QueryEmbedder(kind, embedders.label(et, path), emb, cat.dim)
    with _OPENED_LOCK:
        _OPENED[key] = opened
        while len(_OPENED) > KEEP_EMBEDDERS:
            _OPENED.pop(next(iter(_OPENED)))
    return opened


def embed_queries(cat: Catalog, kind: str, items: Sequence) -> np.ndarray:
    """float64 (Q, D) query vectors for texts (``kind`` "text") or images (paths or bytes)."""
    return query_embedder(cat, kind).embed(items)


def query_vectors(
    cat: Catalog, *, vectors=None, texts: Sequence[str] | None = None, images: Sequence | None = None
) -> np.ndarray:
    """(Q, D) query vectors from exactly one of ``vectors`` ((D,) or (Q, D)), ``texts`` or
    ``images`` (paths, or image files' bytes)."""
    given = [name for name, v in (("vector", vectors), ("text", texts), ("image", images)) if v is not None]
    if len(given) != 1:
        raise QueryError(
            "give one kind of query: a vector, text or an image"
            if not given
            else f"give one kind of query, not both {given[0]} and {given[1]}"
        )
    if vectors is not None:
        return np.asarray(vectors)
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(images, (str, Path, bytes, bytearray, memoryview)):
        images = [images]
    chosen = texts if texts is not None else images
    items = list(chosen) if chosen is not None else []
    if not items:
        raise QueryError(f"give at least one {given[0]} to search for")
    return embed_queries(cat, given[0], items)


def search(
    cat: Catalog,
    *,
    vectors=None,
    texts: Sequence[str] | None = None,
    images: Sequence | None = None,
    k: int = 10,
    leaves_to_search: int | None = None,
    exact: bool = False,
    version: int | None = None,
    snapshot: LoadedSnapshot | None = None,
) -> list[list[dict]]:
    """Top-k per query: ``{"id", "distance", "metadata"}`` dicts, nearest first, for vectors,
    texts or images (see :func:`query_vectors`); what a phone returns for this snapshot, or
    ``exact`` brute force (see :func:`scannlite.store.index.snapshot.search`)."""
    queries = query_vectors(cat, vectors=vectors, texts=texts, images=images)
    return search_snapshot(
        cat, queries, k=k, leaves_to_search=leaves_to_search, exact=exact, version=version, snapshot=snapshot
    )
