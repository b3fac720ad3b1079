"""Creating a catalog: its directory, and a ``catalog.db`` built under a temporary name and renamed into place.

A crash during ``scannlite init`` leaves no half-initialised database behind (docs/schema.md holds the tables).
The dimension, distance and normalisation are fixed for the catalog's life.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from scannlite.store.atomic import replacing
from scannlite.store.catalog import schema
from scannlite.store.errors import InvalidInput
from scannlite.store.index.config import IndexConfig
from scannlite.store.oserrors import removed_on_failure
from scannlite.store.vocabulary import Distance

DB_NAME = "catalog.db"
METADATA_TYPES = ("text", "bytes")
DEFAULT_METADATA_LIMIT = 64 * 1024


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def initialize(
    path: Path,
    dim: int,
    distance: str,
    normalize: bool | None,
    metadata_type: str,
    metadata_limit: int,
    index: IndexConfig | None,
) -> Path:
    """Check the settings and write a new catalog at ``path`` (a new or empty directory); return ``path``."""
    path = Path(path)
    try:
        distance = Distance(distance)
    except ValueError:
        raise InvalidInput(f"distance must be 'dot' or 'l2', got {distance!r}") from None
    if not isinstance(dim, int) or dim < 1 or dim > 65536:
        raise InvalidInput(f"dimension must be between 1 and 65536, got {dim}")
    if metadata_type not in METADATA_TYPES:
        raise InvalidInput(f"metadata type must be 'text' or 'bytes', got {metadata_type!r}")
    if metadata_limit < 0:
        raise InvalidInput("metadata limit must not be negative")
    if normalize is None:
        normalize = distance == "dot"
    index = index or IndexConfig()
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"{path} exists and is not a directory")
    if (path / DB_NAME).exists():
        raise InvalidInput(f"{path} is already a catalog")
    if path.exists() and any(p for p in path.iterdir() if not p.name.startswith(".")):
        raise InvalidInput(f"{path} is not empty; a catalog needs a new or empty directory")
    created = [d for d in (path, path / "segments") if not d.exists()]  # removed again if init fails
    path.mkdir(parents=True, exist_ok=True)
    (path / "segments").mkdir(exist_ok=True)
    # Build the database under a temporary name and rename it into place: a crash
    # during init leaves no half-initialised catalog.db behind.
    with removed_on_failure(created), replacing(path / DB_NAME) as (tmp,):
        conn = sqlite3.connect(tmp, isolation_level=None)
        conn.executescript(schema.DDL)
        settings = {
            "format_version": schema.FORMAT_VERSION,
            "dim": dim,
            "distance": distance,
            "normalize": bool(normalize),
            "metadata_type": metadata_type,
            "metadata_limit": int(metadata_limit),
            "index": index.to_json(),
            "created_at": utcnow(),
        }
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO catalog_config(key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in settings.items()],
        )
        conn.execute(
            "INSERT INTO commits(seq, kind, created_at, summary) VALUES (1, 'init', ?, ?)",
            (utcnow(), json.dumps({"dim": dim, "distance": distance})),
        )
        conn.execute("COMMIT")
        conn.close()
    return path
