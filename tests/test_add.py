"""add: every input format, upsert semantics, and every bad input refused with nothing written."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.segments import embedding_array
from scannlite.store.errors import InvalidInput
from tests.support.catalog_helpers import ids_for


@pytest.fixture
def cat(tmp_path):
    return Catalog.create(tmp_path / "cat", 8, metadata_limit=64)


def state(cat):
    return (cat.head_seq, cat.count(), sorted(p.name for p in (cat.path / "segments").iterdir()))


def write_parquet(path, ids, vectors, metadata=None, fixed=True, names=("id", "embedding", "metadata")):
    cols = {
        names[0]: pa.array(ids, pa.string()),
        names[1]: embedding_array(vectors) if fixed else pa.array([list(map(float, v)) for v in vectors]),
    }
    if metadata is not None:
        cols[names[2]] = pa.array(metadata)
    pq.write_table(pa.table(cols), path)


def test_parquet_fixed_and_variable_lists(cat, tmp_path, rng):
    x = rng.standard_normal((20, 8)).astype(np.float32)
    write_parquet(tmp_path / "a.parquet", ids_for("a", 20), x, [f"m{i}" for i in range(20)])
    write_parquet(tmp_path / "b.parquet", ids_for("b", 5), x[:5], None, fixed=False)
    assert cat.add_file(tmp_path / "a.parquet").added == 20
    assert cat.add_file(tmp_path / "b.parquet").added == 5
    assert cat.count() == 25
    assert cat.get("a3")["metadata"] == "m3"
    got = cat.vectors_for(np.asarray([cat.get("a3")["item"]]))[0]
    np.testing.assert_allclose(got, x[3] / np.linalg.norm(x[3]), rtol=1e-6)


def test_parquet_column_names_overridable(cat, tmp_path, rng):
    x = rng.standard_normal((3, 8))
    write_parquet(tmp_path / "a.parquet", ["p", "q", "r"], x, ["x", "y", "z"], names=("key", "vec", "info"))
    r = cat.add_file(tmp_path / "a.parquet", id_column="key", embedding_column="vec", metadata_column="info")
    assert r.added == 3 and cat.get("q")["metadata"] == "y"


def test_npy_with_ids_jsonl_and_jsonl(cat, tmp_path, rng):
    x = rng.standard_normal((4, 8))
    np.save(tmp_path / "v.npy", x)
    (tmp_path / "v.jsonl").write_text("\n".join(json.dumps({"id": f"n{i}", "metadata": {"k": i}}) for i in range(4)))
    assert cat.add_file(tmp_path / "v.npy").added == 4  # the sidecar v.jsonl is found
    assert json.loads(cat.get("n2")["metadata"]) == {"k": 2}
    rows = [{"id": f"j{i}", "embedding": x[i].tolist(), "metadata": f"t{i}"} for i in range(4)]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert cat.add_file(tmp_path / "rows.jsonl").added == 4
    assert cat.count() == 8


def test_upsert_updates_changed_and_skips_unchanged(cat, rng):
    x = rng.standard_normal((10, 8))
    first = cat.add(ids_for("i", 10), x, [f"m{i}" for i in range(10)])
    before = cat.get("i1")["item"]
    again = cat.add(ids_for("i", 10), x, [f"m{i}" for i in range(10)])
    assert (again.added, again.updated, again.unchanged, again.seq) == (0, 0, 10, None)
    x2 = x.copy()
    x2[1] += 1.0
    meta = [f"m{i}" for i in range(10)]
    meta[2] = "changed"
    third = cat.add(ids_for("i", 12), np.vstack([x2, rng.standard_normal((2, 8))]), meta + ["n", "o"])
    assert (third.added, third.updated, third.unchanged) == (2, 2, 8)
    assert cat.get("i1")["item"] != before and cat.get("i2")["metadata"] == "changed"
    assert cat.count() == 12 and first.seq < third.seq


def test_bytes_catalog_keeps_binary_metadata(tmp_path, rng):
    cat = Catalog.create(tmp_path / "b", 4, metadata_type="bytes")
    cat.add(["a"], rng.standard_normal((1, 4)), [b"\xff\x00binary"])
    assert cat.get("a")["metadata"] == b"\xff\x00binary"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x: (ids_for("a", 3), x[:, :5], None), "5 dimensions, the catalog has 8"),
        (lambda x: (ids_for("a", 3), np.where(np.eye(3, 8) > 0, np.nan, x), None), "NaN or infinity"),
        (lambda x: (ids_for("a", 3), np.where(np.eye(3, 8) > 0, np.inf, x), None), "NaN or infinity"),
        (lambda x: (ids_for("a", 3), np.vstack([x[:2], np.zeros((1, 8))]), None), "zero vector"),
        (lambda x: (["a", "b", "a"], x, None), "appears twice"),
        (lambda x: (["a", "", "c"], x, None), "id is missing"),
        (lambda x: (["a", None, "c"], x, None), "id is missing"),
        (lambda x: (ids_for("a", 3), x, ["ok", "x" * 65, None]), "65 bytes, the limit is 64"),
        (lambda x: (ids_for("a", 3), x, ["ok", b"\xff\xfe", None]), "not valid UTF-8"),
        (lambda x: (ids_for("a", 2), x, None), "3 embeddings for 2 ids"),
    ],
)
def test_bad_rows_commit_nothing(cat, rng, make, message):
    cat.add(["keep"], rng.standard_normal((1, 8)))
    before = state(cat)
    ids, vectors, metadata = make(rng.standard_normal((3, 8)))
    with pytest.raises(InvalidInput, match=message):
        cat.add(ids, vectors, metadata)
    assert state(cat) == before


def test_bad_files_commit_nothing(cat, tmp_path, rng):
    cat.add(["keep"], rng.standard_normal((1, 8)))
    before = state(cat)
    x = rng.standard_normal((3, 8))
    write_parquet(tmp_path / "noemb.parquet", ["a", "b", "c"], x, names=("id", "vector", "metadata"))
    with pytest.raises(InvalidInput, match="no 'embedding' column"):
        cat.add_file(tmp_path / "noemb.parquet")
    write_parquet(tmp_path / "noid.parquet", ["a", "b", "c"], x, names=("name", "embedding", "metadata"))
    with pytest.raises(InvalidInput, match="no 'id' column"):
        cat.add_file(tmp_path / "noid.parquet")
    write_parquet(tmp_path / "good.parquet", ids_for("g", 3), x)
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "trunc.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match="not a valid Parquet file"):
        cat.add_file(tmp_path / "trunc.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1" + b"\x00" * 100)
    with pytest.raises(InvalidInput, match="not a valid Parquet file"):
        cat.add_file(tmp_path / "garbage.parquet")
    with pytest.raises(InvalidInput, match="no such file"):
        cat.add_file(tmp_path / "missing.parquet")
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "embedding": [1, 2]}\n{"id": "b", "embedding": "x"}\n')
    with pytest.raises(InvalidInput, match="bad.jsonl:1|bad.jsonl:2"):
        cat.add_file(tmp_path / "bad.jsonl")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InvalidInput, match="not a valid .npy"):
        cat.add_file(tmp_path / "bad.npy", ids_path=tmp_path / "bad.jsonl")
    (tmp_path / "v.csv").write_text("a,b")
    with pytest.raises(InvalidInput, match="cannot tell the format"):
        cat.add_file(tmp_path / "v.csv")
    assert state(cat) == before


def test_delete(cat, rng):
    cat.add(ids_for("d", 5), rng.standard_normal((5, 8)))
    before = state(cat)
    with pytest.raises(InvalidInput, match="unknown id 'nope'"):
        cat.delete(["d1", "nope"])
    assert state(cat) == before and cat.count() == 5
    assert cat.delete(["d1", "d2", "d1"]).deleted == 2
    assert cat.count() == 3 and cat.get("d1") is None
    with pytest.raises(InvalidInput, match="unknown id 'd1'"):
        cat.delete(["d1"])
