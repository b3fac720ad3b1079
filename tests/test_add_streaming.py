"""add streams its input: chunked reading gives the catalog whole-file reading gives, as one
commit, and a bad row in any chunk still means nothing is written; memory stays one chunk's."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.segments import embedding_array
from scannlite.store.errors import InvalidInput
from tests.support.catalog_helpers import ids_for

N, DIM = 50, 8


def contents(cat: Catalog) -> dict:
    """Every live item: id -> (metadata, vector), read back from the catalog."""
    rows = cat._conn.execute("SELECT id, item, metadata FROM items WHERE removed_seq IS NULL ORDER BY id").fetchall()
    vectors = cat.vectors_for(np.asarray([r[1] for r in rows]))
    return {r[0]: (r[2], vectors[i].tolist()) for i, r in enumerate(rows)}


def state(cat: Catalog):
    return cat.head_seq, cat.count(), sorted(p.name for p in (cat.path / "segments").iterdir())


def segment_files(cat: Catalog) -> int:
    return len(list((cat.path / "segments").iterdir()))


def write_inputs(folder, rng):
    """The same 50 rows as a Parquet file, a directory of 3 Parquet shards, .npy + JSONL, JSONL."""
    x = rng.standard_normal((N, DIM))
    ids, meta = ids_for("r", N), [f"m{i}" for i in range(N)]
    pq.write_table(
        pa.table({"id": ids, "embedding": embedding_array(x), "metadata": meta}),
        folder / "all.parquet",
        row_group_size=16,
    )
    (folder / "shards").mkdir()
    for part, (a, b) in enumerate([(0, 20), (20, 21), (21, N)]):
        pq.write_table(
            pa.table({"id": ids[a:b], "embedding": embedding_array(x[a:b]), "metadata": meta[a:b]}),
            folder / "shards" / f"part-{part:05d}.parquet",
        )
    np.save(folder / "all.npy", x)
    (folder / "all.ids.jsonl").write_text(
        "".join(json.dumps({"id": i, "metadata": m}) + "\n" for i, m in zip(ids, meta))
    )
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"id": i, "embedding": v.tolist(), "metadata": m}) + "\n" for i, v, m in zip(ids, x, meta))
    )
    return {
        "parquet": (folder / "all.parquet", None),
        "directory": (folder / "shards", None),
        "npy": (folder / "all.npy", folder / "all.ids.jsonl"),
        "jsonl": (folder / "rows.jsonl", None),
    }


@pytest.mark.parametrize("fmt", ["parquet", "directory", "npy", "jsonl"])
def test_streamed_equals_whole(tmp_path, rng, fmt):
    path, ids_path = write_inputs(tmp_path, rng)[fmt]
    whole = Catalog.create(tmp_path / "whole", DIM)
    streamed = Catalog.create(tmp_path / "streamed", DIM)
    assert whole.add_file(path, ids_path=ids_path, batch_rows=10_000).added == N
    r = streamed.add_file(path, ids_path=ids_path, batch_rows=7)
    assert (r.added, r.updated, r.unchanged) == (N, 0, 0)
    assert contents(streamed) == contents(whole)
    assert streamed.head_seq == whole.head_seq == r.seq  # one commit, however many chunks
    # Arrow's batches end at row groups and are coalesced into chunks of exactly 7 rows.
    assert segment_files(streamed) >= -(-N // 7) and segment_files(whole) == 1
    sizes = [row[0] for row in streamed._conn.execute("SELECT rows FROM segments")]
    assert max(sizes) == 7 and sum(sizes) == N
    summary = json.loads(streamed._conn.execute("SELECT summary FROM commits WHERE seq = ?", (r.seq,)).fetchone()[0])
    assert summary["added"] == N and len(summary["segments"]) == segment_files(streamed)


def test_upsert_across_chunks(tmp_path, rng):
    path, _ = write_inputs(tmp_path, rng)["parquet"]
    cat = Catalog.create(tmp_path / "cat", DIM)
    cat.add_file(path, batch_rows=7)
    before = state(cat)
    again = cat.add_file(path, batch_rows=7)
    assert (again.seq, again.unchanged) == (None, N) and state(cat) == before  # nothing committed
    table = pq.read_table(path)
    meta = table.column("metadata").to_pylist()
    meta[3], meta[44] = "changed", "changed too"
    pq.write_table(table.set_column(2, "metadata", pa.array(meta)), tmp_path / "some.parquet", row_group_size=16)
    r = cat.add_file(tmp_path / "some.parquet", batch_rows=7)
    assert (r.added, r.updated, r.unchanged) == (0, 2, N - 2)
    assert cat.get("r44")["metadata"] == "changed too" and cat.count() == N


@pytest.mark.parametrize("fmt", ["parquet", "npy", "jsonl"])
def test_bad_row_in_a_late_chunk_writes_nothing(tmp_path, rng, fmt):
    inputs = write_inputs(tmp_path, rng)
    x = rng.standard_normal((N, DIM))
    x[45, 2] = np.nan
    ids = ids_for("r", N)
    pq.write_table(pa.table({"id": ids, "embedding": embedding_array(x)}), tmp_path / "all.parquet")
    np.save(tmp_path / "all.npy", x)
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps({"id": i, "embedding": [float(f) for f in v]}) + "\n" for i, v in zip(ids, x)).replace(
            "NaN", "1e999"
        )
    )
    path, ids_path = inputs[fmt]
    cat = Catalog.create(tmp_path / "cat", DIM)
    cat.add(["keep"], rng.standard_normal((1, DIM)))
    before = state(cat)
    with pytest.raises(InvalidInput, match=r"row 45 \(id 'r45'\): embedding contains NaN or infinity"):
        cat.add_file(path, ids_path=ids_path, batch_rows=7)
    assert state(cat) == before  # six chunks were written before the bad one: all removed
    assert cat.add_file(inputs["directory"][0], batch_rows=7).added == N  # the catalog still works


@pytest.mark.parametrize("first_copy", ["new", "unchanged", "changed"])
def test_duplicate_id_in_a_later_chunk_refused(tmp_path, rng, first_copy):
    x = rng.standard_normal((31, DIM))
    cat = Catalog.create(tmp_path / "cat", DIM)
    if first_copy != "new":
        cat.add(["d3"], x[3:4] if first_copy == "unchanged" else x[4:5])
    x[30] = x[3]  # the second copy: identical, so only the id tells them apart
    pq.write_table(
        pa.table({"id": ids_for("d", 30) + ["d3"], "embedding": embedding_array(x)}), tmp_path / "dup.parquet"
    )
    before = state(cat)
    for rows in (8, 1000):  # refused the same way whatever the chunk size
        with pytest.raises(InvalidInput, match=r"id 'd3' appears twice in the input \(rows 3 and 30\)"):
            cat.add_file(tmp_path / "dup.parquet", batch_rows=rows)
        assert state(cat) == before


def test_bad_directories_and_npy_files(tmp_path, rng):
    cat = Catalog.create(tmp_path / "cat", DIM)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="holds no .parquet files"):
        cat.add_file(tmp_path / "empty")
    (tmp_path / "mixed").mkdir()
    pq.write_table(
        pa.table({"id": ["a"], "embedding": embedding_array(rng.standard_normal((1, DIM)))}),
        tmp_path / "mixed" / "a.parquet",
    )
    pq.write_table(
        pa.table({"id": ["b"], "embedding": embedding_array(rng.standard_normal((1, DIM + 1)))}),
        tmp_path / "mixed" / "b.parquet",
    )
    with pytest.raises(InvalidInput, match=r"row 1 \(id .b.\): embedding has 9 values, row 0 has 8"):
        cat.add_file(tmp_path / "mixed")
    x = rng.standard_normal((4, DIM))
    np.save(tmp_path / "v.npy", x)
    (tmp_path / "v.jsonl").write_text("".join(json.dumps({"id": f"v{i}"}) + "\n" for i in range(5)))
    with pytest.raises(InvalidInput, match="v.jsonl has 5 rows but .*v.npy has 4 vectors"):
        cat.add_file(tmp_path / "v.npy", batch_rows=2)
    data = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-40])
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"id": f"t{i}"}) + "\n" for i in range(4)))
    with pytest.raises(InvalidInput, match="truncated"):
        cat.add_file(tmp_path / "t.npy")
    assert cat.count() == 0 and segment_files(cat) == 0
    pq.write_table(
        pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32()))]).empty_table(),
        tmp_path / "empty.parquet",
    )
    with pytest.raises(InvalidInput, match="the input holds no rows"):
        cat.add_file(tmp_path / "empty.parquet")


def test_fortran_npy_and_unified_directory_columns(tmp_path, rng):
    cat = Catalog.create(tmp_path / "cat", DIM, normalize=False)
    x = rng.standard_normal((9, DIM)).astype(np.float32)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    (tmp_path / "f.jsonl").write_text("".join(json.dumps({"id": f"f{i}"}) + "\n" for i in range(9)))
    assert cat.add_file(tmp_path / "f.npy", batch_rows=4).added == 9
    assert cat.vectors_for(np.asarray([cat.get("f7")["item"]]))[0].tobytes() == x[7].tobytes()
    shards = tmp_path / "shards"
    (shards / ".x.partial-1").mkdir(parents=True)
    (shards / "_temporary").mkdir()
    pq.write_table(pa.table({"id": ["a"], "embedding": embedding_array(x[:1])}), shards / "part-0.parquet")
    pq.write_table(
        pa.table({"id": ["b"], "embedding": embedding_array(x[1:2]), "metadata": ["kept"]}), shards / "part-1.pq"
    )
    for hidden in (shards / ".x.partial-1" / "p.parquet", shards / "_temporary" / "p.parquet"):
        pq.write_table(pa.table({"id": ["ghost"], "embedding": embedding_array(x[2:3])}), hidden)
    assert cat.add_file(shards).added == 2
    assert cat.get("b")["metadata"] == "kept" and cat.get("a")["metadata"] is None
    assert cat.get("ghost") is None


PEAK = """
import resource, sys
import numpy as np
from scannlite.store.catalog.catalog import Catalog
cat = Catalog.create(sys.argv[1], 128)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = cat.add_file(sys.argv[2], batch_rows=8192)
print(r.added, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_the_input(tmp_path, rng):
    """A fresh process adds a .npy 8x larger than another; its peak RSS grows by far less than
    the larger input's vectors (which whole-file reading would hold twice: as read and as float64).
    Not Parquet: Arrow's allocator keeps about the file's size (store/catalog/readers.py)."""
    grown = {}
    for n in (25_000, 200_000):
        x = np.empty((n, 128), np.float32)
        for a in range(0, n, 25_000):
            x[a : a + 25_000] = rng.standard_normal((min(25_000, n - a), 128))
        path = tmp_path / f"v{n}.npy"
        np.save(path, x)
        with open(tmp_path / f"v{n}.jsonl", "w") as f:
            f.writelines(f'{{"id": "i{i}"}}\n' for i in range(n))
        del x
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(PEAK), str(tmp_path / f"cat{n}"), str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert int(out[0]) == n
        grown[n] = float(out[1])
    big_file_mib = 200_000 * 128 * 4 / 2**20  # 97.7 MiB
    assert grown[200_000] - grown[25_000] < big_file_mib / 2, grown
