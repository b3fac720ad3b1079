"""A catalog's query sample (store/catalog/query_sample.py) and the recall builds state for it
(store/index/recall_estimate.py ``estimate_for_queries``, store/index/build_recall.py): reservoir bounds, the
estimate against a brute-force computation of its definition, the target met on the sample, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog import query_sample
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.errors import InvalidInput
from scannlite.store.index import device_search, snapshot
from scannlite.store.index.build import build
from scannlite.store.index.build_recall import MIN_QUERIES_FOR_TARGET, target_estimate
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.recall_estimate import RecallEstimate, Snapshot, estimate_for_queries, ladder
from tests.support.catalog_helpers import ids_for

DIM = 16
VECTORS = clustered(5000, DIM, clusters=60, spread=0.9, seed=5)
BIN = Path(sys.executable).parent


def far_queries(n: int, seed: int = 1) -> np.ndarray:
    """Queries unlike the items: cluster centres pulled towards the origin plus broad noise (as short texts sit
    between the catalog's sentences)."""
    rng = np.random.default_rng(seed)
    base = VECTORS[rng.integers(0, len(VECTORS), n)]
    return (0.4 * base + rng.standard_normal((n, DIM))).astype(np.float32)


def brute_force(snap, queries: np.ndarray, k: int = 10) -> list[float]:
    """The definition the slow obvious way, in float64: the k-th exact distance over every item (none left out),
    the device's own leaves, candidates ranked by their decoded codes, an answer right when it is exactly at
    least as near as the k-th true neighbour."""
    index = snap.device_index()
    x = snap.vectors.astype(np.float64)
    decoded = snap.model.decode(snap.codes).astype(np.float64)
    qs = device_search.l2_normalize(queries.astype(np.float64)) if index.distance == "dot" else queries

    def dist(q, m):
        return -(m @ q) if index.distance == "dot" else ((m - q) ** 2).sum(1)

    out = []
    for leaves in ladder(index.num_leaves):
        hits = 0
        for q in qs:
            d = dist(q, x)
            kth = np.sort(d)[k - 1]
            chosen = device_search.select_leaves(index, q[None].astype(np.float32), leaves)[0]
            cand = np.concatenate([np.arange(index.offsets[p], index.offsets[p + 1]) for p in chosen])
            got = cand[np.argsort(dist(q, decoded[cand]), kind="stable")[:k]]
            hits += int((d[got] <= kth + 1e-9).sum())
        out.append(hits / (len(qs) * k))
    return out


@pytest.mark.parametrize("distance", ["dot", "l2"])
def test_the_sample_estimate_equals_a_brute_force_computation_of_its_definition(tmp_path, distance):
    cat = Catalog.create(tmp_path / "c", DIM, distance, index=IndexConfig(num_leaves=40))
    cat.add(ids_for("a", len(VECTORS)), VECTORS)
    queries = far_queries(80)
    query_sample.add(cat, queries)
    result = build(cat)
    snap = snapshot.load_snapshot(cat, with_vectors=True)
    in_memory = Snapshot.in_memory(snap.device_index(), snap.vectors, lambda rows: snap.model.decode(snap.codes[rows]))
    stored = query_sample.vectors(cat)
    expected = brute_force(snap, stored)
    got = estimate_for_queries(in_memory, stored)
    assert got.kind == "queries" and got.sample == 80 and got.ladder == ladder(40)
    assert np.allclose(got.recall, expected, atol=1e-9), (got.recall, expected)
    # Kept lists too short to answer any step: every step scans its own leaves, same figures.
    assert np.allclose(estimate_for_queries(in_memory, stored, top=10).recall, expected, atol=1e-9)
    assert expected[0] < expected[-1]
    assert len(got.stderr) == len(got.ladder) and all(e >= 0 for e in got.stderr) and max(got.stderr) > 0
    # The build recorded the same figures, beside the leave-one-out ones.
    recorded = snapshot.get_snapshot(cat).build
    assert np.allclose(recorded["query_recall"]["recall"], expected, atol=1e-4)
    assert recorded["recall"]["kind"] == "leave-one-out" and result.query_recall.sample == 80
    # 80 queries are too few to set the target: the build says so and meets it on the items.
    assert recorded["recall_on"] == "leave-one-out" and "fewer than" in recorded["leaves_note"]


def test_the_reservoir_stays_bounded_and_uniform(tmp_path):
    cat = Catalog.create(tmp_path / "c", 4, "l2")
    marks = np.zeros((1000, 4), np.float32)
    marks[:, 0] = np.arange(1000)  # each query says when it was offered
    for lo in range(0, 1000, 100):  # ten adds, as a log fed over time
        r = query_sample.add_stream(cat, [(marks[lo : lo + 100], None)], capacity=100)
        assert r.size == min(lo + 100, 100) and r.seen == lo + 100
    kept = query_sample.vectors(cat)[:, 0]
    assert len(kept) == 100 and len(set(kept)) == 100 and query_sample.seen(cat) == 1000
    # Every query had the same chance: the kept ones spread over the whole log, not its start or its end.
    assert 20 <= (kept < 500).sum() <= 80 and kept.min() < 200 and kept.max() > 800
    # The same offers in the same order keep the same sample.
    again = Catalog.create(tmp_path / "d", 4, "l2")
    for lo in range(0, 1000, 100):
        query_sample.add_stream(again, [(marks[lo : lo + 100], None)], capacity=100)
    assert np.array_equal(query_sample.vectors(again), query_sample.vectors(cat))
    assert query_sample.clear(cat) == 100 and query_sample.summary(cat) == {
        "size": 0,
        "seen": 0,
        "capacity": 1000,
        "recording": False,
    }


def test_bad_queries_add_nothing(tmp_path):
    cat = Catalog.create(tmp_path / "c", 4)
    query_sample.add(cat, np.ones((3, 4)))
    bad = np.ones((2, 4))
    bad[1, 2] = np.nan
    with pytest.raises(InvalidInput, match="query row 1 is not finite"):
        query_sample.add_stream(cat, [(np.ones((5, 4)), None), (bad, None)])
    with pytest.raises(InvalidInput, match=r"must be \(n, 4\)"):
        query_sample.add(cat, np.ones((2, 5)))
    with pytest.raises(InvalidInput, match="zero vector"):
        query_sample.add(cat, np.zeros((1, 4)))
    assert query_sample.summary(cat)["size"] == 3 and query_sample.seen(cat) == 3  # the failed adds left no trace


def test_a_catalog_from_before_the_sample_reads_as_empty(tmp_path):
    cat = Catalog.create(tmp_path / "c", 4)
    cat._conn.execute("DROP TABLE IF EXISTS query_sample")
    assert query_sample.summary(cat)["size"] == 0 and query_sample.vectors(cat).shape == (0, 4)
    query_sample.add(cat, np.ones((2, 4)))  # the first add creates the table
    assert query_sample.size(cat) == 2


def test_the_target_is_met_on_the_sample_when_it_has_enough_queries(tmp_path):
    cat = Catalog.create(tmp_path / "c", DIM, index=IndexConfig(num_leaves=40, recall_target=0.9))
    cat.add(ids_for("a", len(VECTORS)), VECTORS)
    first = build(cat)
    assert first.query_recall is None and snapshot.get_snapshot(cat).build["recall_on"] == "leave-one-out"
    query_sample.add(cat, far_queries(MIN_QUERIES_FOR_TARGET + 50))
    second = build(cat, full=True)
    q, own = second.query_recall, second.recall
    assert q is not None and q.sample == MIN_QUERIES_FOR_TARGET + 50
    assert snapshot.get_snapshot(cat).build["recall_on"] == "queries"
    assert second.leaves_to_search == q.smallest_meeting(0.9)  # the sample's leaves, not the items'
    assert second.leaves_to_search != own.smallest_meeting(0.9), (q.recall, own.recall)
    assert second.stated_recall == q.at(second.leaves_to_search) >= 0.9
    assert any("for your queries" in line for line in second.lines())
    # An incremental build with the same sample and few changes reuses both estimates.
    cat.add(["extra"], VECTORS[:1] + 0.01)
    third = build(cat)
    assert third.query_recall.reused_from == 2 and third.leaves_to_search == second.leaves_to_search


def test_target_estimate_rule():
    own = RecallEstimate([1, 2], [0.8, 0.95], 500, 10, 1.0)
    small = RecallEstimate([1, 2], [0.5, 0.7], MIN_QUERIES_FOR_TARGET - 1, 10, 1.0, kind="queries")
    enough = RecallEstimate([1, 2], [0.5, 0.7], MIN_QUERIES_FOR_TARGET, 10, 1.0, kind="queries")
    assert target_estimate(own, None) == (own, None)
    assert target_estimate(own, small)[0] is own and "fewer than" in target_estimate(own, small)[1]
    assert target_estimate(own, enough) == (enough, None)


def cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "scannlite"), *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_queries_cli_add_list_clear_and_info(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c"
    Catalog.create(path, DIM).close()
    np.save(tmp_path / "q.npy", far_queries(30))
    pq.write_table(pa.table({"vec": far_queries(5, seed=2).tolist()}), tmp_path / "q.parquet")
    assert "kept 30" in cli("queries", path, "add", tmp_path / "q.npy").stdout
    added = json.loads(cli("queries", path, "add", tmp_path / "q.parquet", "--column", "vec", "--json").stdout)
    assert added == {"offered": 5, "kept": 5, "size": 35, "seen": 35, "capacity": query_sample.CAPACITY}
    listed = json.loads(cli("queries", path, "list", "--json", "--limit", "2").stdout)
    assert listed["size"] == 35 and [q["slot"] for q in listed["queries"]] == [0, 1]
    info = json.loads(cli("info", path, "--json").stdout)
    assert info["query_sample"] == {"size": 35, "seen": 35, "capacity": query_sample.CAPACITY, "recording": False}
    bad = cli("queries", path, "add", tmp_path / "q.parquet", ok=False)
    assert bad.returncode == 1 and "no 'embedding' column" in bad.stderr and bad.stderr.count("\n") == 1
    assert "cleared the query sample (35 queries)" in cli("queries", path, "clear").stdout
    assert "query sample: none" in cli("info", path).stdout


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.usefixtures("fixtures_dir")
def test_queries_add_texts_through_the_configured_embedder(tmp_path):
    import scannlite
    from tests.support.datasette_site import REGEX_MODEL, SENTENCES, embed_texts

    with scannlite.create(tmp_path / "c", 16) as db:
        with pytest.raises(InvalidInput, match="no text embedder"):
            db.add_queries(texts=["a great film"])
        db.configure(text_embedder=REGEX_MODEL)
        typed = tmp_path / "typed.txt"
        typed.write_text("\n".join(SENTENCES[:4]) + "\n")
        assert db.add_queries(texts=typed)["kept"] == 4
        stored = query_sample.vectors(db.catalog)
        assert np.allclose(stored, embed_texts(SENTENCES[:4]), atol=1e-5)
        assert [q["text"] for q in db.queries()["queries"]] == SENTENCES[:4]
        assert {q["source"] for q in db.queries()["queries"]} == {"text"}
