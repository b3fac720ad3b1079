"""scannlite from Python (``import scannlite``): open a catalog, add, build, search by vector, text or image, export.

Modelled on sqlite-utils' ``Database`` and a LanceDB table: one object per catalog, plain
dicts and lists in and out, and the same code paths as the CLI underneath (this module is a
thin layer over :mod:`scannlite.store` and the plugin modules the CLI uses)::

    import scannlite

    db = scannlite.create("photos.catalog", dim=16)    # or scannlite.open("photos.catalog")
    db.add([{"id": "a", "vector": [...], "metadata": {"caption": "a red apple"}}, ...])
    db.add_texts(["a red apple", "a green pear"], embedder="text_embedder.tflite")
    db.add_images("photos/", embedder="image_embedder.tflite")
    db.build()                                          # {"snapshot": 1, "count": ..., ...}
    db.search(text="an apple", k=5)                     # [{"id", "distance", "metadata"}, ...]
    db.search(vector=v), db.search(image="query.jpg")
    db.export("photos.tflite", embedder="text_embedder.tflite")   # verified by the Task Library

``search`` takes one query and returns its hits, nearest first; a batch (a 2-D array, a list of
texts or of images) returns one list of hits per query. Results are what ``scannlite search``
prints with ``--json`` (metadata as stored: text, or bytes in a bytes catalog) and what a phone
returns from the exported bundle for the same snapshot. Models run in warm worker processes
(:func:`scannlite.store.workers.boundary.run_in`), never in this one. Errors a caller can fix raise
:class:`scannlite.store.errors.ScannliteError` subclasses with one-line messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from scannlite.plugin.facade import records as records_in
from scannlite.plugin.facade import reports
from scannlite.store.catalog import query_sample
from scannlite.store.catalog.catalog import DEFAULT_METADATA_LIMIT, Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.index.config import IndexConfig
from scannlite.store.progress import SILENT, Progress


def open(path: str | Path) -> Database:  # noqa: A001 - api.open, like sqlite_utils.Database(path)
    """Open an existing catalog."""
    return Database(Catalog.open(path))


def create(
    path: str | Path,
    dim: int,
    *,
    distance: str = "dot",
    normalize: bool | None = None,
    metadata_type: str = "text",
    metadata_limit: int = DEFAULT_METADATA_LIMIT,
    **index,
) -> Database:
    """Create a catalog (``index``: :class:`~scannlite.store.index.config.IndexConfig` settings,
    e.g. ``num_leaves=64, leaves_to_search=4``) and open it."""
    return Database(Catalog.create(path, dim, distance, normalize, metadata_type, metadata_limit, IndexConfig(**index)))


class Database:
    """One catalog. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, catalog: Catalog, progress: Progress = SILENT):
        self.catalog = catalog  # the store's Catalog, for anything not wrapped here
        self.progress = progress

    # ---- the catalog ----------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.catalog.path

    @property
    def dim(self) -> int:
        return self.catalog.dim

    def __len__(self) -> int:
        return self.catalog.count()

    def __contains__(self, ident: str) -> bool:
        return self.catalog.get(ident) is not None

    def __repr__(self) -> str:
        return f"<scannlite Database {self.path}: {len(self)} items, dim {self.dim}, {self.catalog.distance}>"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.catalog.close()

    def get(self, ident: str) -> dict | None:
        """``{"id", "metadata", "vector"}`` of a live item, or None."""
        row = self.catalog.get(ident)
        if row is None:
            return None
        vector = self.catalog.vectors_for(np.array([row["item"]]))[0]
        return {"id": row["id"], "metadata": row["metadata"], "vector": vector}

    def info(self) -> dict:
        """Settings, size, the latest snapshot, its partition model and recall estimate.

        ``scannlite info --json`` prints this dict: the CLI calls this method, so the two cannot differ.
        """
        return reports.catalog_info(self.catalog)

    def snapshots(self) -> list[dict]:
        """Every snapshot, oldest first (what ``scannlite snapshots --json`` prints)."""
        from scannlite.store.index.snapshot import list_snapshots

        with self.catalog.reading():
            return [s.as_dict() for s in list_snapshots(self.catalog)]

    def diff(self, v1: int, v2: int) -> dict:
        """Ids ``added``, ``removed`` and ``changed`` from snapshot ``v1`` to ``v2`` (what ``scannlite diff --json``
        prints)."""
        from scannlite.store.index.snapshot import diff

        return diff(self.catalog, v1, v2)

    def configure(
        self,
        *,
        text_embedder: str | Path | None = None,
        image_embedder: str | Path | None = None,
        thumbnails_root: str | Path | None = None,
        unset: Iterable[str] = (),
    ) -> dict:
        """Record the embedders that text and image searches use (checked first: kind, dimension)
        and the folder item images live in; returns every setting."""
        from scannlite.plugin.facade.settings import configure

        return configure(
            self.catalog,
            {"text_embedder": text_embedder, "image_embedder": image_embedder, "thumbnails_root": thumbnails_root},
            unset,
        )

    # ---- writing --------------------------------------------------------------------------
    def add(
        self,
        records: Iterable[Mapping] | None = None,
        *,
        ids: Sequence[str] | None = None,
        vectors=None,
        metadata: Sequence | None = None,
    ) -> dict:
        """Upsert by id, from ``records`` (dicts with ``id``, ``vector`` or ``embedding``, and
        optionally ``metadata``: text, bytes, or anything JSON) or from ``ids``/``vectors``/``metadata``.
        Returns ``{"added", "updated", "unchanged", "seq"}`` (the commit, None if nothing changed)."""
        ids, vectors, metadata = records_in.columns_of(records, ids, vectors, metadata)
        return records_in.add_report(self.catalog.add(ids, np.asarray(vectors), metadata))

    def add_file(self, path: str | Path, **columns) -> dict:
        """Upsert from Parquet, ``.npy`` (with ``ids_path=``) or JSONL, as ``scannlite add FILE``."""
        return records_in.add_report(self.catalog.add_file(path, **columns))

    def add_texts(
        self,
        texts: Sequence[str] | Mapping[str, str] | str | Path,
        *,
        embedder: str | Path | None = None,
        metadata: Sequence | None = None,
        workers: int | None = None,
    ) -> dict:
        """Embed and upsert texts: a list (ids "1", "2", ...), a dict id -> text, or a file as
        ``scannlite add --texts`` reads it. ``embedder`` defaults to the catalog's text embedder;
        ``workers`` embedding workers at once (default: the machine's cores)."""
        from scannlite.plugin.ingest import add as ingest

        embedder = self._embedder(embedder, "text")
        if isinstance(texts, (str, Path)):
            rep = ingest.add_texts(self.catalog, Path(texts), embedder, self.progress, workers)
        else:
            rows = records_in.text_rows(texts, metadata)
            rep = ingest.add_text_rows(self.catalog, rows, embedder, self.progress, workers)
        return records_in.ingest_report(rep)

    def add_images(
        self,
        source: str | Path,
        *,
        embedder: str | Path | None = None,
        metadata_file: str | Path | None = None,
        workers: int | None = None,
    ) -> dict:
        """Embed and upsert the images of a folder or glob (ids: paths relative to it), as
        ``scannlite add --images``; unchanged files are skipped, unreadable ones reported."""
        from scannlite.plugin.ingest import add as ingest

        rep = ingest.add_images(
            self.catalog,
            str(source),
            self._embedder(embedder, "image"),
            Path(metadata_file) if metadata_file else None,
            self.progress,
            workers,
        )
        return records_in.ingest_report(rep)

    def delete(self, ids: Iterable[str] | str) -> dict:
        r = self.catalog.delete([ids] if isinstance(ids, str) else list(ids))
        return {"deleted": r.deleted, "seq": r.seq}

    def build(self, *, full: bool = False, **changes) -> dict:
        """Publish a snapshot (incremental unless the partitions' health calls for retraining);
        ``changes``: index settings to change first, e.g. ``target_recall=0.95``."""
        from scannlite.store.index.build import build

        if "target_recall" in changes:
            changes["recall_target"] = changes.pop("target_recall")
        return reports.build_report(build(self.catalog, full=full, changes=changes or None, progress=self.progress))

    # ---- the query sample ------------------------------------------------------------------
    def add_queries(
        self,
        vectors=None,
        *,
        file: str | Path | None = None,
        texts: str | Path | Sequence[str] | None = None,
        images: str | Path | Sequence | None = None,
        column: str = "embedding",
    ) -> dict:
        """Offer the queries users send to the catalog's query sample (bounded, reservoir-sampled; builds then
        state recall for them: docs/queries.md): vectors, a ``.npy``/Parquet ``file``, or ``texts``/``images``
        embedded by the catalog's configured embedders. Returns ``{"offered", "kept", "size", "seen",
        "capacity"}``, as ``scannlite queries CATALOG add`` prints."""
        from scannlite.plugin.facade.queries import add_queries

        return add_queries(self.catalog, file=file, vectors=vectors, texts=texts, images=images, column=column)

    def queries(self, limit: int | None = None) -> dict:
        """The query sample: ``{"size", "seen", "capacity", "queries": [{"slot", "text", "source", "added_at"}]}``
        (what ``scannlite queries CATALOG list --json`` prints)."""
        from scannlite.plugin.facade.queries import list_queries

        return list_queries(self.catalog, limit)

    def record_queries(self, on: bool) -> dict:
        """Whether the Datasette search page records the queries it serves into the sample (off by default: it
        keeps what people typed; docs/queries.md, "Privacy"). Returns the sample's summary."""
        query_sample.set_recording(self.catalog, on)
        return query_sample.summary(self.catalog)

    def clear_queries(self) -> dict:
        """Empty the query sample: ``{"cleared": n}``."""
        from scannlite.plugin.facade.queries import clear_queries

        return clear_queries(self.catalog)

    # ---- reading --------------------------------------------------------------------------
    def search(
        self,
        vector=None,
        *,
        text: str | Sequence[str] | None = None,
        image=None,
        k: int = 10,
        leaves_to_search: int | None = None,
        exact: bool = False,
        snapshot: int | None = None,
    ) -> list:
        """Nearest items to one vector, text or image (a path or the file's bytes):
        ``[{"id", "distance", "metadata"}, ...]``, nearest first. A batch (a 2-D array, a
        list of texts or of images) gives one such list per query."""
        from scannlite.plugin.facade.search import search

        one = (
            (vector is not None and np.ndim(vector) == 1)
            or isinstance(text, str)
            or isinstance(image, (str, Path, bytes, bytearray))
        )
        rows = search(
            self.catalog,
            vectors=vector,
            texts=text,
            images=image,
            k=k,
            leaves_to_search=leaves_to_search,
            exact=exact,
            version=snapshot,
        )
        return rows[0] if one else rows

    # ---- exporting ------------------------------------------------------------------------
    def export(
        self,
        out: str | Path,
        *,
        embedder: str | Path | None = None,
        snapshot: int | None = None,
        leaves_to_search: int | None = None,
        index_only: bool = False,
        verify: bool = True,
        probe: str | Path | None = None,
    ) -> dict:
        """Write a snapshot as a TFLite Searcher bundle verified by the Task Library in a device
        process, or the bare index (``index_only``); returns the manifest, with ``path`` and
        ``manifest_path``. ``embedder`` is the ``.tflite`` model to pack the index into, or a named
        embedder that makes one (``"minilm"``; default: the model of the catalog's configured text
        embedder, else of its image embedder)."""
        from scannlite.plugin.facade.exporting import export_snapshot

        return export_snapshot(
            self.catalog,
            out,
            embedder=embedder,
            snapshot=snapshot,
            leaves_to_search=leaves_to_search,
            index_only=index_only,
            verify=verify,
            probe=probe,
            progress=self.progress,
        )

    # ---- helpers --------------------------------------------------------------------------
    def _embedder(self, embedder, kind: str):
        if embedder is not None:
            return embedder
        configured = self.catalog.settings.get(f"{kind}_embedder")
        if not configured:
            raise InvalidInput(
                f"name a {kind} embedder (embedder=...), or configure one with configure({kind}_embedder=...)"
            )
        return configured
