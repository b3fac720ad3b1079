"""export-parquet: one snapshot as a Parquet file other engines read, and `add` reads back."""

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index import snapshot
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig

SCANNLITE = str(Path(sys.executable).with_name("scannlite"))


def run(*args, ok=True):
    proc = subprocess.run([SCANNLITE, *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def snapshot_rows(cat: Catalog, version=None) -> dict[str, tuple[np.ndarray, object, int]]:
    """id -> (stored vector, metadata, leaf) of a snapshot, straight from the store."""
    snap = snapshot.load_snapshot(cat, version, with_vectors=True)
    meta = snapshot.metadata_of(cat, snap.items)
    return {i: (snap.vectors[j], meta[int(snap.items[j])], int(snap.leaves[j])) for j, i in enumerate(snap.ids)}


def live_rows(cat: Catalog) -> dict[str, tuple[np.ndarray, object]]:
    rows = cat._conn.execute("SELECT id, item, metadata FROM items WHERE removed_seq IS NULL ORDER BY item").fetchall()
    vectors = cat.vectors_for(np.asarray([r[1] for r in rows]))
    return {r[0]: (vectors[j], r[2]) for j, r in enumerate(rows)}


@pytest.fixture
def two_snapshots(tmp_path, rng):
    """A text-metadata dot catalog with 2 snapshots (v2: deletes, an update, additions), over 300
    vectors so the index has several leaves."""
    cat = Catalog.create(tmp_path / "cat", 8, index=IndexConfig(num_leaves=4))
    x = rng.standard_normal((300, 8)).astype(np.float32)
    cat.add([f"a{i}" for i in range(300)], x, [json.dumps({"n": i, "tag": "ü<b>"}) for i in range(300)])
    build(cat)
    cat.delete(["a1", "a2"])
    cat.add(["a3", "new0", "new1"], rng.standard_normal((3, 8)), ["changed", None, "n1"])
    build(cat)
    return cat


def test_export_has_the_documented_columns_and_every_row_of_the_snapshot(two_snapshots, tmp_path):
    cat = two_snapshots
    run("export-parquet", cat.path, tmp_path / "v2.parquet")
    table = pq.read_table(tmp_path / "v2.parquet")
    assert table.schema.names == ["id", "embedding", "metadata", "leaf"]
    assert table.schema.field("id").type == pa.string()
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 8)
    assert table.schema.field("metadata").type == pa.string()
    assert table.schema.field("leaf").type == pa.int32()
    provenance = json.loads(table.schema.metadata[b"scannlite"])
    assert provenance["snapshot"] == 2 and provenance["dim"] == 8 and provenance["distance"] == "dot"

    want = snapshot_rows(cat, 2)
    got = table.to_pydict()
    assert sorted(got["id"]) == sorted(want) and len(got["id"]) == 300
    for ident, vec, meta, leaf in zip(got["id"], got["embedding"], got["metadata"], got["leaf"]):
        np.testing.assert_array_equal(np.asarray(vec, np.float32), want[ident][0])  # stored floats, bit for bit
        assert meta == want[ident][1] and leaf == want[ident][2]
    assert got["leaf"] == sorted(got["leaf"])  # device order: leaf by leaf
    assert len(set(got["leaf"])) > 1


def test_older_snapshot_and_duckdb_reads_the_file(two_snapshots, tmp_path):
    cat = two_snapshots
    run("export-parquet", cat.path, "--snapshot", "1", tmp_path / "v1.parquet")
    want = snapshot_rows(cat, 1)
    rows = duckdb.sql(
        f"SELECT id, embedding, metadata, leaf FROM read_parquet('{tmp_path / 'v1.parquet'}') ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == sorted(want)
    assert "a1" in want and "new0" not in want
    for ident, vec, meta, leaf in rows:
        np.testing.assert_array_equal(np.asarray(vec, np.float32), want[ident][0])
        assert (meta, leaf) == want[ident][1:]


def test_add_reads_the_export_back_into_a_fresh_catalog(two_snapshots, tmp_path):
    run("export-parquet", two_snapshots.path, tmp_path / "v2.parquet")
    run("init", tmp_path / "copy", "--dim", "8")
    out = run("add", tmp_path / "copy", tmp_path / "v2.parquet").stdout
    assert "added 300" in out
    want = snapshot_rows(two_snapshots, 2)
    with Catalog.open(tmp_path / "copy") as copy:
        got = live_rows(copy)
    assert sorted(got) == sorted(want)
    for ident, (vec, meta) in got.items():
        # The copy normalises on insert too; the stored vectors were unit length already.
        np.testing.assert_allclose(vec, want[ident][0], rtol=0, atol=1e-6)
        assert meta == want[ident][1]
    assert "nothing to add" in run("add", tmp_path / "copy", tmp_path / "v2.parquet").stdout


def test_bytes_metadata_round_trips_bit_for_bit(tmp_path, rng):
    cat = Catalog.create(tmp_path / "raw", 6, distance="l2", metadata_type="bytes")
    blobs = [bytes(rng.integers(0, 256, 20, dtype=np.uint8)) for _ in range(40)]
    blobs[5] = None
    cat.add([f"b{i}" for i in range(40)], rng.standard_normal((40, 6)) * 10, blobs)
    build(cat)
    run("export-parquet", cat.path, tmp_path / "raw.parquet")
    assert pq.read_schema(tmp_path / "raw.parquet").field("metadata").type == pa.binary()
    run("init", tmp_path / "copy", "--dim", "6", "--distance", "l2", "--metadata-type", "bytes")
    run("add", tmp_path / "copy", tmp_path / "raw.parquet")
    with Catalog.open(tmp_path / "copy") as copy:
        got = live_rows(copy)
    want = snapshot_rows(cat)
    assert sorted(got) == sorted(want)
    for ident, (vec, meta) in got.items():
        np.testing.assert_array_equal(vec, want[ident][0])  # no normalisation: identical floats
        assert meta == want[ident][1]


def test_empty_snapshot_exports_an_empty_file_with_the_schema(tmp_path, rng):
    cat = Catalog.create(tmp_path / "cat", 4)
    cat.add(["x"], rng.standard_normal((1, 4)))
    build(cat)
    cat.delete(["x"])
    build(cat)
    run("export-parquet", cat.path, tmp_path / "empty.parquet")
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and table.schema.field("embedding").type == pa.list_(pa.float32(), 4)


def test_replaces_atomically_and_leaves_no_temporary_files(two_snapshots, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "snap.parquet"
    target.write_bytes(b"old contents")
    run("export-parquet", two_snapshots.path, target)
    assert pq.read_table(target).num_rows == 300
    assert sorted(p.name for p in out_dir.iterdir()) == ["snap.parquet"]
    before = target.read_bytes()
    proc = run("export-parquet", two_snapshots.path, target, "--snapshot", "7", ok=False)
    assert proc.returncode == 1 and target.read_bytes() == before  # a failed export changes nothing
    assert sorted(p.name for p in out_dir.iterdir()) == ["snap.parquet"]


@pytest.mark.parametrize(
    "out, message",
    [
        ("{tmp}/snap.csv", "must end in .parquet"),
        ("{tmp}/missing/snap.parquet", "does not exist"),
        ("{cat}/snap.parquet", "inside the catalog directory"),
        ("{cat}/segments/snap.parquet", "inside the catalog directory"),
    ],
)
def test_bad_outputs_are_refused_in_one_line(two_snapshots, tmp_path, out, message):
    proc = run("export-parquet", two_snapshots.path, out.format(tmp=tmp_path, cat=two_snapshots.path), ok=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
        proc.stderr
    )
    assert "snap.parquet" not in {p.name for p in two_snapshots.path.rglob("*")}
