"""Which Datasette databases are scannlite catalogs, and read-only access to them.

A database is a catalog when it has a ``catalog_config`` table with a ``format_version`` key;
the catalog directory is the database file's parent (segments are named relative to it).

The plugin never writes to a catalog. Its own connections are opened the way Datasette opens
the file (``mode=ro``, or ``immutable=1`` for ``datasette -i``) and additionally set
``PRAGMA query_only``. A read-only connection to a WAL database may create the ``-wal`` and
``-shm`` side files when they are missing (SQLite needs the shared-memory index to read),
but it never checkpoints, so ``catalog.db`` itself is left byte for byte as it was.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from scannlite.store.catalog import Catalog
from scannlite.store.errors import NotACatalog
from scannlite.store.snapshot import LoadedSnapshot, get_snapshot, load_snapshot


@dataclass(frozen=True)
class CatalogDb:
    """A Datasette database that holds a scannlite catalog."""

    name: str  # Datasette's name for the database
    db_file: Path
    immutable: bool

    @property
    def directory(self) -> Path:
        return self.db_file.parent


_detected: dict[tuple[str, int], bool] = {}


async def catalog_db(datasette, name: str) -> CatalogDb | None:
    """The catalog behind Datasette database ``name``, or None if it is not one."""
    db = datasette.databases.get(name)
    if db is None or db.is_memory or not db.path:
        return None
    path = Path(db.path).resolve()
    try:
        key = (str(path), path.stat().st_ino)
    except OSError:
        return None
    if key not in _detected:
        try:
            found = await db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'catalog_config' "
                "AND EXISTS (SELECT 1 FROM catalog_config WHERE key = 'format_version')")
            _detected[key] = found.first() is not None
        except Exception:  # not SQLite we can read, or no such table: not a catalog
            _detected[key] = False
    return CatalogDb(name, path, not db.is_mutable) if _detected[key] else None


async def catalog_dbs(datasette) -> list[CatalogDb]:
    out = []
    for name in list(datasette.databases):
        found = await catalog_db(datasette, name)
        if found is not None:
            out.append(found)
    return out


def connect_readonly(cdb: CatalogDb) -> sqlite3.Connection:
    flags = "immutable=1" if cdb.immutable else "mode=ro"
    conn = sqlite3.connect(f"file:{quote(str(cdb.db_file))}?{flags}", uri=True, isolation_level=None,
                           check_same_thread=False, timeout=30)
    conn.execute("PRAGMA query_only = 1")
    return conn


@contextmanager
def open_catalog(cdb: CatalogDb):
    """A :class:`Catalog` over a read-only connection (``Catalog.open`` would open read-write)."""
    try:
        conn = connect_readonly(cdb)
    except sqlite3.Error as exc:
        raise NotACatalog(f"cannot open {cdb.db_file} read-only: {exc}") from None
    try:
        try:
            cat = Catalog(cdb.directory, conn)
        except sqlite3.Error as exc:
            raise NotACatalog(f"{cdb.db_file} is not a readable catalog: {exc}") from None
        yield cat
    finally:
        conn.close()


# ---- snapshots: immutable once published, so loaded ones are kept ---------------------------

_SNAPSHOTS: "OrderedDict[tuple, LoadedSnapshot]" = OrderedDict()
_SNAPSHOTS_LOCK = threading.Lock()
KEEP_SNAPSHOTS = 4


def cached_snapshot(cat: Catalog, version: int | None) -> LoadedSnapshot:
    """The loaded snapshot, from the cache when the same snapshot (same items digest, same
    model) was loaded before. The key includes the digest, so a catalog re-created under the
    same path, or a snapshot forgotten by gc and numbered again, never hits a stale entry."""
    with cat.reading():
        info = get_snapshot(cat, version)
    key = (str(cat.path.resolve()), info.version, info.seq, info.model_id, info.items_digest, info.created_at)
    with _SNAPSHOTS_LOCK:
        snap = _SNAPSHOTS.get(key)
        if snap is not None:
            _SNAPSHOTS.move_to_end(key)
            return snap
    snap = load_snapshot(cat, info.version)
    with _SNAPSHOTS_LOCK:
        _SNAPSHOTS[key] = snap
        while len(_SNAPSHOTS) > KEEP_SNAPSHOTS:
            _SNAPSHOTS.popitem(last=False)
    return snap


def num_leaves(cat: Catalog, model_id: int | None) -> int | None:
    if model_id is None:
        return None
    row = cat.conn.execute("SELECT num_leaves FROM models WHERE model_id = ?", (model_id,)).fetchone()
    return row[0] if row else None


# ---- exported bundles ------------------------------------------------------------------------

def newest_exports(cat: Catalog) -> dict[int, dict]:
    """version -> the newest export of that snapshot whose file still exists."""
    try:
        rows = cat.conn.execute("SELECT export_id, version, path, sha256, manifest, created_at FROM exports "
                                "ORDER BY export_id DESC").fetchall()
    except sqlite3.OperationalError:  # a catalog from before the exports table
        return {}
    out: dict[int, dict] = {}
    for export_id, version, path, sha256, manifest, created_at in rows:
        if version in out:
            continue
        try:
            size = Path(path).stat().st_size
        except OSError:  # moved or deleted since the export: offer an older one, if any
            continue
        try:
            manifest = json.loads(manifest)
        except ValueError:
            manifest = {}
        out[version] = {"export_id": export_id, "version": version, "path": path, "name": Path(path).name,
                        "sha256": sha256, "bytes": size, "created_at": created_at,
                        "manifest": manifest, "verified": bool(manifest.get("verified"))}
    return out
