"""Which Datasette databases are scannlite catalogs, and read-only access to them.

A database is a catalog when it has a ``catalog_config`` table with a ``format_version`` key;
the catalog directory is the database file's parent (segments are named relative to it).

The plugin opens catalogs with :meth:`scannlite.store.catalog.catalog.Catalog.open_readonly` and writes to
none, except the one write a catalog's owner may turn on: recording the queries the search page serves into the
query sample (:func:`.views.record_query`, docs/queries.md).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scannlite.store.catalog.catalog import Catalog, is_catalog_db
from scannlite.store.errors import CatalogCorrupt, one_line
from scannlite.store.index.snapshot import LoadedSnapshot, get_snapshot, load_snapshot


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
        _detected[key] = await asyncio.to_thread(is_catalog_db, path)
    return CatalogDb(name, path, not db.is_mutable) if _detected[key] else None


async def catalog_dbs(datasette) -> list[CatalogDb]:
    out = []
    for name in list(datasette.databases):
        found = await catalog_db(datasette, name)
        if found is not None:
            out.append(found)
    return out


@contextmanager
def open_catalog(cdb: CatalogDb):
    """The catalog, read-only (``Catalog.open`` would open it read-write)."""
    cat = Catalog.open_readonly(cdb.directory, immutable=cdb.immutable)
    try:
        yield cat
    except DAMAGED_READS as exc:  # a damaged catalog.db: an error page, never a 500 (docs/storage-errors.md)
        if isinstance(exc, sqlite3.ProgrammingError):
            raise
        raise CatalogCorrupt(
            f"catalog {cdb.name} cannot be read ({one_line(exc)}); run `scannlite check` on it"
        ) from None
    finally:
        cat.close()


#: What reading a damaged catalog.db raises besides scannlite's own one-line errors.
DAMAGED_READS = (sqlite3.DatabaseError, UnicodeDecodeError, json.JSONDecodeError)


# ---- snapshots: immutable once published, so loaded ones are kept ---------------------------

_SNAPSHOTS: OrderedDict[tuple, LoadedSnapshot] = OrderedDict()
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
    model = cat.model_summary(model_id)
    return model["num_leaves"] if model else None


# ---- exported bundles ------------------------------------------------------------------------


def newest_exports(cat: Catalog) -> dict[int, dict]:
    """version -> the newest export of that snapshot whose file still exists."""
    out: dict[int, dict] = {}
    for row in cat.exports():
        if row["version"] in out:
            continue
        try:
            size = Path(row["path"]).stat().st_size
        except OSError:  # moved or deleted since the export: offer an older one, if any
            continue
        out[row["version"]] = {
            **row,
            "name": Path(row["path"]).name,
            "bytes": size,
            "verified": bool(row["manifest"].get("verified")),
            "patch": _patch_of(row),
        }
    return out


def _patch_of(row: dict) -> dict | None:
    """The patch ``export --delta-from`` wrote beside the bundle, if it is still there: what a
    phone holding the base downloads instead of the whole bundle."""
    entries = row["manifest"].get("patches") or []
    if not entries or not isinstance(entries[0], dict) or not entries[0].get("file"):
        return None
    entry = entries[0]
    path = Path(row["path"]).with_name(Path(str(entry["file"])).name)
    if not path.is_file():
        return None
    return {
        "path": str(path),
        "name": path.name,
        "bytes": path.stat().st_size,
        "sha256": entry.get("sha256"),
        "base_snapshot": (entry.get("base") or {}).get("snapshot"),
        "base_sha256": (entry.get("base") or {}).get("sha256"),
        "warning": entry.get("warning"),
    }


async def requested_catalog(datasette, request) -> CatalogDb:
    """The catalog a request's URL names, if this Datasette serves it and the actor may view it."""
    from datasette.utils import tilde_decode
    from datasette.utils.asgi import NotFound

    name = tilde_decode(request.url_vars["database"])
    cdb = await catalog_db(datasette, name)
    if cdb is None:
        raise NotFound(f"{name} is not a scannlite catalog served by this Datasette")
    await datasette.ensure_permissions(request.actor, [("view-database", name), "view-instance"])
    return cdb
