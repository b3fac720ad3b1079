"""Open formats: the catalog's segment files are plain Parquet that DuckDB reads as they are."""

import sqlite3

import duckdb
import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.maintenance import compact
from scannlite.store.index.build import build


def test_duckdb_reads_the_same_vectors_the_catalog_returns(tmp_path, rng):
    cat = Catalog.create(tmp_path / "cat", 12)
    cat.add([f"v{i}" for i in range(200)], rng.standard_normal((200, 12)), [f"m{i}" for i in range(200)])
    cat.add([f"w{i}" for i in range(50)], rng.standard_normal((50, 12)))
    cat.add(["v3", "v4"], rng.standard_normal((2, 12)))  # updates: new rows in a third segment
    cat.delete(["w7"])
    build(cat)

    # Where each live item's vector lives, according to SQLite (read with plain sqlite3).
    db = sqlite3.connect(tmp_path / "cat" / "catalog.db")
    live = db.execute(
        "SELECT i.item, i.id, s.path, i.segment_row FROM items i JOIN segments s USING (segment_id) "
        "WHERE i.removed_seq IS NULL ORDER BY i.item"
    ).fetchall()
    db.close()
    assert len(live) == 249 and len({r[2] for r in live}) == 3

    rows = duckdb.sql(
        f"SELECT filename, file_row_number, id, embedding FROM read_parquet('{tmp_path / 'cat' / 'segments'}/*.parquet', "
        "filename = true, file_row_number = true)"
    ).fetchall()
    by_place = {
        (f"segments/{name.rsplit('/', 1)[-1]}", int(row)): (ident, np.asarray(vec, np.float32))
        for name, row, ident, vec in rows
    }
    want = cat.vectors_for(np.asarray([r[0] for r in live]))
    for j, (_item, ident, path, row) in enumerate(live):
        duck_id, duck_vec = by_place[(path, row)]
        assert duck_id == ident
        np.testing.assert_array_equal(duck_vec, want[j])

    # DuckDB's arithmetic over the embedding column agrees too (unit vectors: norms are 1).
    norms = duckdb.sql(
        f"SELECT sqrt(list_sum(list_transform(embedding, lambda x: x * x))) FROM "
        f"read_parquet('{tmp_path / 'cat' / 'segments'}/*.parquet')"
    ).fetchall()
    np.testing.assert_allclose([n[0] for n in norms], 1.0, atol=1e-5)


def test_segments_stay_readable_after_compaction(tmp_path, rng):
    cat = Catalog.create(tmp_path / "cat", 4)
    cat.add([f"v{i}" for i in range(30)], rng.standard_normal((30, 4)))
    cat.delete([f"v{i}" for i in range(10)])
    build(cat)
    compact(cat)
    db = sqlite3.connect(tmp_path / "cat" / "catalog.db")
    paths = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT s.path FROM items i JOIN segments s USING (segment_id) WHERE i.removed_seq IS NULL"
        )
    ]
    db.close()
    files = ", ".join(f"'{tmp_path / 'cat' / p}'" for p in paths)
    ids = sorted(r[0] for r in duckdb.sql(f"SELECT id FROM read_parquet([{files}])").fetchall())
    assert ids == sorted(f"v{i}" for i in range(10, 30))
