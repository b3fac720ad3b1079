"""One snapshot as one Parquet file (id, embedding, metadata, leaf), for engines that speak
Parquet (DuckDB, Spark, Beam, Ray, LanceDB); ``add`` reads the file back as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scannlite.store.atomic import atomic_open
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.segments import embedding_array
from scannlite.store.errors import InvalidInput
from scannlite.store.index.snapshot import load_snapshot, metadata_of


def snapshot_table(cat: Catalog, version: int | None) -> pa.Table:
    """A snapshot as one Arrow table in device order (leaf by leaf): id, embedding (the stored
    float32 vectors), metadata (string or binary, as the catalog stores it), leaf.

    One read transaction covers the items, their vectors and their metadata, so the table is
    exactly the snapshot even while a writer commits."""
    with cat.reading():
        snap = load_snapshot(cat, version, with_vectors=True)
        meta = metadata_of(cat, snap.items) if snap.count else {}
    vectors = snap.vectors if snap.vectors is not None else cat.vectors_for(snap.items)
    meta_type = pa.binary() if cat.metadata_type == "bytes" else pa.string()
    provenance = {
        "snapshot": snap.info.version,
        "seq": snap.info.seq,
        "count": snap.count,
        "dim": cat.dim,
        "distance": cat.distance,
        "normalize": cat.normalize,
        "metadata_type": cat.metadata_type,
        "items_digest": snap.info.items_digest,
    }
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("embedding", pa.list_(pa.float32(), cat.dim)),
            ("metadata", meta_type),
            ("leaf", pa.int32()),
        ],
        metadata={"scannlite": json.dumps(provenance, sort_keys=True)},
    )
    return pa.table(
        {
            "id": pa.array(snap.ids, type=pa.string()),
            "embedding": embedding_array(vectors) if snap.count else pa.array([], type=pa.list_(pa.float32(), cat.dim)),
            "metadata": pa.array([meta.get(int(i)) for i in snap.items], type=meta_type),
            "leaf": pa.array(snap.leaves, type=pa.int32()),
        },
        schema=schema,
    )


def checked_output(cat: Catalog, out: Path) -> Path:
    out = Path(out).expanduser()
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise InvalidInput(f"{out}: the output name must end in .parquet (so that `scannlite add` recognises it)")
    if not out.parent.resolve().is_dir():
        raise InvalidInput(f"cannot write {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise InvalidInput(f"cannot write {out}: it is a directory")
    root = cat.path.resolve()
    if out.parent.resolve() == root or root in out.parent.resolve().parents:
        raise InvalidInput(f"refusing to write {out} inside the catalog directory {cat.path}")
    return out


def export_parquet_file(cat: Catalog, out: Path, version: int | None = None) -> pa.Table:
    """Write snapshot ``version`` (default: latest) to ``out``, replacing it atomically."""
    out = checked_output(cat, out)
    table = snapshot_table(cat, version)
    with atomic_open(out) as f:
        pq.write_table(table, f, compression="zstd", use_dictionary=["id", "metadata"], row_group_size=65536)
    return table
