"""The catalog's SQLite schema. Documented for people in docs/schema.md; keep the two in step.

A catalog is a directory::

    CATALOG/
      catalog.db            this schema (WAL mode)
      segments/*.parquet    immutable vector segments, named by a random UUID
      .lock                 the writer lock (flock); holds the writer's pid

Vectors are never rewritten in place: a changed item gets a new ``items`` row (and a new
vector row in a new segment), the old row gets ``removed_seq``. Every committed write bumps
``commits.seq``; an item row is visible at sequence S when
``added_seq <= S AND (removed_seq IS NULL OR removed_seq > S)``. A snapshot is the visible set
at its ``seq`` plus one partition model, so it never changes once published.
"""

from __future__ import annotations

FORMAT_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS catalog_config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL            -- JSON
);

CREATE TABLE IF NOT EXISTS commits (
    seq        INTEGER PRIMARY KEY,  -- increases by one per committed write
    kind       TEXT NOT NULL,        -- init, add, delete, build, compact, gc
    created_at TEXT NOT NULL,        -- UTC, ISO 8601
    summary    TEXT NOT NULL         -- JSON: what the write did
);

CREATE TABLE IF NOT EXISTS segments (
    segment_id  INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE, -- relative to the catalog directory
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    created_seq INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS items (
    item         INTEGER PRIMARY KEY, -- internal: one row per version of an item
    id           TEXT NOT NULL,       -- the user's id
    metadata,                         -- TEXT or BLOB (catalog_config.metadata_type) or NULL
    content_hash TEXT NOT NULL,       -- sha256 of the stored float32 vector and the metadata
    source_hash  TEXT,                -- sha256 of the source file, when ingested from files
    segment_id   INTEGER NOT NULL REFERENCES segments(segment_id),
    segment_row  INTEGER NOT NULL,
    added_seq    INTEGER NOT NULL,
    removed_seq  INTEGER              -- NULL while the item is live
);
CREATE UNIQUE INDEX IF NOT EXISTS items_live_id ON items(id) WHERE removed_seq IS NULL;
CREATE INDEX IF NOT EXISTS items_by_id ON items(id);
CREATE INDEX IF NOT EXISTS items_by_segment ON items(segment_id, segment_row);

CREATE TABLE IF NOT EXISTS models (
    model_id      INTEGER PRIMARY KEY,
    created_seq   INTEGER NOT NULL,
    kind          TEXT NOT NULL,      -- 'ah': tree + asymmetric hashing; 'float': raw vectors
    dim           INTEGER NOT NULL,
    num_leaves    INTEGER NOT NULL,
    dims_per_block INTEGER,           -- NULL for 'float'
    centroids     BLOB NOT NULL,      -- float32 little-endian, (num_leaves, dim)
    codebooks     BLOB,               -- float32 little-endian, subspace after subspace,
                                      -- each (256, width); NULL for 'float'
    trained_items INTEGER NOT NULL,
    training      TEXT NOT NULL       -- JSON: recipe, timings, health baseline
);

CREATE TABLE IF NOT EXISTS codes (
    model_id INTEGER NOT NULL REFERENCES models(model_id),
    item     INTEGER NOT NULL REFERENCES items(item),
    leaf     INTEGER NOT NULL,
    code     BLOB,                    -- one byte per subspace; NULL for 'float' models
    trained  INTEGER NOT NULL,        -- 2: in the model's training sample; 1: live at training, not sampled; 0: coded later
    PRIMARY KEY (model_id, item)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS snapshots (
    version          INTEGER PRIMARY KEY, -- 1, 2, 3, ... one per build
    seq              INTEGER NOT NULL,    -- the commit whose visible items it holds
    model_id         INTEGER REFERENCES models(model_id), -- NULL when empty
    count            INTEGER NOT NULL,
    items_digest     TEXT NOT NULL,       -- sha256 of the sorted internal item numbers
    leaves_to_search INTEGER,
    lookup_type      TEXT,
    created_at       TEXT NOT NULL,
    build            TEXT NOT NULL        -- JSON: what the build did and why
);

CREATE TABLE IF NOT EXISTS exports (
    export_id  INTEGER PRIMARY KEY,
    version    INTEGER NOT NULL REFERENCES snapshots(version),
    path       TEXT NOT NULL,             -- absolute path of the bundle
    sha256     TEXT NOT NULL,
    manifest   TEXT NOT NULL,             -- JSON, as written beside the bundle
    created_at TEXT NOT NULL
);
"""
