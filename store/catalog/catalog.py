"""A catalog: one SQLite database plus immutable Parquet segments, in one directory.

Writes commit the Lance/Iceberg way: new files go under unique names and are fsynced, then
one SQLite transaction publishes them. A crash at any point leaves the last committed state
intact; files a crash left unpublished are reclaimed by ``gc``. Readers never block: SQLite
runs in WAL mode and every read happens inside one read transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from scannlite.store.catalog import adding, creating, schema, vectors
from scannlite.store.catalog.adding import AddResult
from scannlite.store.catalog.batch import Batch, validate
from scannlite.store.catalog.creating import DB_NAME, DEFAULT_METADATA_LIMIT, utcnow
from scannlite.store.catalog.locking import writer_lock
from scannlite.store.catalog.readers import BATCH_ROWS, iter_rows
from scannlite.store.catalog.segments import RowGroupRead
from scannlite.store.catalog.sql import execute_in, sqlite_transaction
from scannlite.store.errors import InvalidInput, NotACatalog, one_line
from scannlite.store.index.config import IndexConfig
from scannlite.store.oserrors import READ_OUTCOME, translate
from scannlite.store.vocabulary import Distance


def visible(seq_param: str = ":seq", alias: str = "items") -> str:
    """SQL condition: the item row is part of the catalog as of commit ``seq``."""
    return f"{alias}.added_seq <= {seq_param} AND ({alias}.removed_seq IS NULL OR {alias}.removed_seq > {seq_param})"


@dataclass
class DeleteResult:
    deleted: int
    seq: int


class Catalog:
    """Open with :meth:`open` or create with :meth:`create`; see the module docstring."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_timeout: float | None = None):
        self.path = Path(path)
        self._conn = conn  # SQL runs only in store/catalog/'s modules (tests/test_layers.py)
        self.lock_timeout = lock_timeout
        self._load_config()

    # ---- opening -------------------------------------------------------------------------
    @staticmethod
    def _connect(db_path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a write acknowledged to the user survives power loss, not only a killed process.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @classmethod
    def create(
        cls,
        path,
        dim: int,
        distance: str = "dot",
        normalize: bool | None = None,
        metadata_type: str = "text",
        metadata_limit: int = DEFAULT_METADATA_LIMIT,
        index: IndexConfig | None = None,
        lock_timeout: float | None = None,
    ) -> Catalog:
        path = creating.initialize(Path(path), dim, distance, normalize, metadata_type, metadata_limit, index)
        return cls.open(path, lock_timeout=lock_timeout)

    @classmethod
    def open(cls, path, lock_timeout: float | None = None) -> Catalog:
        path = Path(path)
        db_path = path / DB_NAME
        if not path.is_dir():
            raise NotACatalog(f"{path} is not a catalog (no such directory)")
        if not db_path.is_file():
            raise NotACatalog(f"{path} is not a catalog (no {DB_NAME}; create one with `scannlite init`)")
        try:
            conn = cls._connect(db_path)
            conn.execute("SELECT value FROM catalog_config WHERE key = 'format_version'").fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # SQLite may quote a damaged file's bytes
            # a full or read-only disk is not a corrupt catalog
            raise translate(exc, db_path, "opening", "nothing was changed") or NotACatalog(
                f"{path} is not a catalog ({DB_NAME}: {one_line(exc)})"
            ) from None
        return cls(path, conn, lock_timeout)

    @classmethod
    def open_readonly(cls, path, *, immutable: bool = False) -> Catalog:
        """A catalog no write can go through (Datasette's view of it).

        Opened the way Datasette opens the file (``mode=ro``, or ``immutable=1`` for
        ``datasette -i``) plus ``PRAGMA query_only``. A read-only connection to a WAL database
        may create the ``-wal`` and ``-shm`` side files (SQLite needs the shared-memory index
        to read) but never checkpoints, so ``catalog.db`` itself stays byte for byte as it was.
        """
        path = Path(path)
        db_path = path / DB_NAME
        flags = "immutable=1" if immutable else "mode=ro"
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(db_path))}?{flags}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=30,
            )
            conn.execute("PRAGMA query_only = 1")
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise NotACatalog(f"cannot open {db_path} read-only: {one_line(exc)}") from None
        try:
            return cls(path, conn)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            conn.close()
            raise NotACatalog(f"{db_path} is not a readable catalog: {one_line(exc)}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _load_config(self) -> None:
        try:
            rows = dict(self._conn.execute("SELECT key, value FROM catalog_config").fetchall())
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise NotACatalog(f"{self.path} is not a catalog ({one_line(exc)})") from None
        try:
            self.settings = {k: json.loads(v) for k, v in rows.items()}
            self.dim: int = self.settings["dim"]
            self.distance = Distance(self.settings["distance"])
            self.normalize: bool = self.settings["normalize"]
            self.metadata_type: str = self.settings["metadata_type"]
            self.metadata_limit: int = self.settings["metadata_limit"]
            self.index_config = IndexConfig.from_json(self.settings["index"])
        except (KeyError, ValueError, TypeError) as exc:
            raise NotACatalog(f"{self.path} is not a catalog (bad settings: {exc})") from None
        if self.settings.get("format_version") != schema.FORMAT_VERSION:
            raise NotACatalog(
                f"{self.path} has catalog format {self.settings.get('format_version')}, "
                f"this scannlite reads format {schema.FORMAT_VERSION}"
            )

    # ---- transactions --------------------------------------------------------------------
    @contextmanager
    def reading(self):
        """One consistent view of the catalog (a WAL read transaction)."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        except sqlite3.OperationalError as exc:  # a large read spills to SQLite's temporary files
            raise translate(exc, self.path / DB_NAME, "reading", READ_OUTCOME) or exc
        finally:
            if self._conn.in_transaction:  # SQLite ends it itself after some errors: keep theirs
                self._conn.execute("COMMIT")

    @contextmanager
    def writing(self):
        """The writer lock for a whole write operation (files first, then one transaction)."""
        with writer_lock(self.path, self.lock_timeout):
            self._load_config()
            yield

    @contextmanager
    def transaction(self):
        """One write transaction; a storage failure is a one-line StorageError (docs/storage-errors.md)."""
        # sqlite_transaction keeps the original error when SQLite already rolled back itself
        with sqlite_transaction(self._conn, self.path / DB_NAME):
            yield

    def new_commit(self, kind: str, summary: dict) -> int:
        """Record a commit inside the caller's transaction; returns its sequence number."""
        seq = self._conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM commits").fetchone()[0]
        self._conn.execute(
            "INSERT INTO commits(seq, kind, created_at, summary) VALUES (?, ?, ?, ?)",
            (seq, kind, utcnow(), json.dumps(summary, sort_keys=True)),
        )
        return seq

    def set_setting(self, key: str, value) -> None:
        self._conn.execute("INSERT OR REPLACE INTO catalog_config(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def head_seq(self) -> int:
        return self._conn.execute("SELECT MAX(seq) FROM commits").fetchone()[0]

    # ---- writes --------------------------------------------------------------------------
    def make_batch(self, ids, vectors, metadata=None, source_hashes=None, first_row: int = 0) -> Batch:
        return validate(
            ids,
            vectors,
            metadata,
            dim=self.dim,
            normalize=self.normalize,
            metadata_type=self.metadata_type,
            metadata_limit=self.metadata_limit,
            source_hashes=source_hashes,
            first_row=first_row,
        )

    def add(self, ids, vectors, metadata=None, source_hashes=None) -> AddResult:
        """Upsert by id. Unchanged rows (same vector and metadata) are skipped."""
        return self.add_batch(self.make_batch(ids, vectors, metadata, source_hashes))

    def add_file(
        self,
        path,
        *,
        ids_path=None,
        id_column="id",
        embedding_column="embedding",
        metadata_column="metadata",
        batch_rows: int = BATCH_ROWS,
    ) -> AddResult:
        """Upsert from a Parquet file or directory, a .npy or a JSONL file, streamed in chunks of
        ``batch_rows`` rows: memory stays one chunk's, and the whole file is still one commit."""
        chunks = iter_rows(
            path,
            ids_path=ids_path,
            id_column=id_column,
            embedding_column=embedding_column,
            metadata_column=metadata_column,
            batch_rows=batch_rows,
        )
        return self.add_stream(self.make_batch(r.ids, r.vectors, r.metadata, first_row=r.first_row) for r in chunks)

    def add_batch(self, batch: Batch) -> AddResult:
        return self.add_stream([batch])

    def add_stream(self, batches: Iterable[Batch]) -> AddResult:
        """Upsert every batch as one commit, one batch in memory at a time; any error rolls it all back
        (:func:`.adding.add_stream`)."""
        return adding.add_stream(self, batches)

    def delete(self, ids) -> DeleteResult:
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise InvalidInput("no ids to delete")
        with self.writing():
            existing = adding.live_rows(self, ids)
            missing = [i for i in ids if i not in existing]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise InvalidInput(f"unknown id {missing[0]!r}{more}; nothing was deleted")
            items = [existing[i][0] for i in ids]
            with self.transaction():
                seq = self.new_commit("delete", {"deleted": len(items)})
                execute_in(self._conn, "UPDATE items SET removed_seq = ? WHERE item IN ({marks})", items, before=[seq])
            return DeleteResult(len(items), seq)

    # ---- reads ---------------------------------------------------------------------------
    def count(self, seq: int | None = None) -> int:
        if seq is None:
            return self._conn.execute("SELECT COUNT(*) FROM items WHERE removed_seq IS NULL").fetchone()[0]
        return self._conn.execute(f"SELECT COUNT(*) FROM items WHERE {visible()}", {"seq": seq}).fetchone()[0]

    def get(self, ident: str) -> dict | None:
        row = self._conn.execute(
            "SELECT item, id, metadata, content_hash, added_seq FROM items WHERE removed_seq IS NULL AND id = ?",
            (ident,),
        ).fetchone()
        if row is None:
            return None
        return dict(zip(("item", "id", "metadata", "content_hash", "added_seq"), row))

    def live_source_hashes(self) -> dict[str, str]:
        """id -> source file hash of live items ingested from files (to skip unchanged files)."""
        return dict(
            self._conn.execute(
                "SELECT id, source_hash FROM items WHERE removed_seq IS NULL AND source_hash IS NOT NULL"
            )
        )

    def vectors_for(self, items: np.ndarray) -> np.ndarray:
        """Float vectors of internal item numbers, in the given order (repeats allowed)."""
        items = np.asarray(items, dtype=np.int64)
        unique, inverse = np.unique(items, return_inverse=True)
        if len(unique) < len(items):
            return self.vectors_for(unique)[inverse]
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for positions, block in self.iter_vectors(items):
            out[positions] = block
        return out

    def iter_vectors(self, items: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions in ``items``, their vectors) for the distinct ``items``, in any order, one
        segment row group at a time in storage order: a pass over millions of vectors in memory
        bounded by the group."""
        items = np.asarray(items, dtype=np.int64)
        order = np.argsort(items, kind="stable")
        ascending = items[order]
        for read in self.vector_reads(ascending):
            yield order[np.searchsorted(ascending, read.items)], read.read(self.path, self.dim)

    def vector_reads(self, items: np.ndarray) -> Iterator[RowGroupRead]:
        """Where the vectors of the sorted, distinct ``items`` are stored (:func:`.vectors.vector_reads`)."""
        return vectors.vector_reads(self, items)

    # ---- read API for the CLI and the plugins (no SQL outside the store) --------------------
    def model_summary(self, model_id: int | None) -> dict | None:
        """kind, num_leaves, dims_per_block and trained_items of a partition model."""
        if model_id is None:
            return None
        row = self._conn.execute(
            "SELECT kind, num_leaves, dims_per_block, trained_items FROM models WHERE model_id = ?", (model_id,)
        ).fetchone()
        return dict(zip(("kind", "num_leaves", "dims_per_block", "trained_items"), row)) if row else None

    def segment_count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0]

    def unset_setting(self, key: str) -> None:
        self._conn.execute("DELETE FROM catalog_config WHERE key = ?", (key,))

    def ids_at(self, seq: int) -> list[str]:
        """Ids of the items visible at commit ``seq``, sorted."""
        return [r[0] for r in self._conn.execute(f"SELECT id FROM items WHERE {visible()} ORDER BY id", {"seq": seq})]

    def exports(self) -> list[dict]:
        """Recorded exports, newest first (empty for a catalog from before the exports table)."""
        try:
            rows = self._conn.execute(
                "SELECT export_id, version, path, sha256, manifest, created_at FROM exports ORDER BY export_id DESC"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        out = []
        for export_id, version, path, sha256, manifest, created_at in rows:
            try:
                manifest = json.loads(manifest)
            except ValueError:
                manifest = {}
            out.append(
                {
                    "export_id": export_id,
                    "version": version,
                    "path": path,
                    "sha256": sha256,
                    "manifest": manifest,
                    "created_at": created_at,
                }
            )
        return out

    def record_export(self, version: int, path: Path, sha256: str, manifest: dict) -> bool:
        """Remember a published bundle; False when gc forgot the snapshot meanwhile (the
        bundle itself is still valid, there is just nothing to attach it to)."""
        with self.writing():
            if self._conn.execute("SELECT 1 FROM snapshots WHERE version = ?", (version,)).fetchone() is None:
                return False
            with self.transaction():
                self._conn.execute(
                    "INSERT INTO exports(version, path, sha256, manifest, created_at) VALUES (?, ?, ?, ?, ?)",
                    (version, str(Path(path).resolve()), sha256, json.dumps(manifest, sort_keys=True), utcnow()),
                )
        return True


def is_catalog_db(db_file: Path) -> bool:
    """Whether a SQLite file is a catalog's database (has ``catalog_config.format_version``)."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(db_file))}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        return (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'catalog_config' "
                "AND EXISTS (SELECT 1 FROM catalog_config WHERE key = 'format_version')"
            ).fetchone()
            is not None
        )
    except sqlite3.Error:
        return False
    finally:
        conn.close()
