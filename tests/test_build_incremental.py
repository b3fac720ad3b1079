"""build: incremental by default, retraining only when the health policy says so; every
mutation checked against a brute-force oracle, as ScaNN's own tests do."""

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered, split
from scannlite.store.index import snapshot
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from tests.support.catalog_helpers import device_recall, ids_for

DIM = 32


@pytest.fixture(scope="module")
def data():
    x = clustered(9000, DIM, clusters=150, spread=0.9, seed=7)
    base, rest = x[:6000], x[6000:]
    return base, rest


def make(tmp_path, name, distance="dot", **index):
    return Catalog.create(tmp_path / name, DIM, distance, index=IndexConfig(num_leaves=48, leaves_to_search=6, **index))


@pytest.mark.slow
def test_incremental_recall_stays_within_002_of_full_rebuild(tmp_path, data):
    base, rest = data
    queries = split(np.vstack([base, rest]), 300, seed=3)[1] + 0.02
    inc = make(tmp_path, "inc")
    inc.add(ids_for("b", len(base)), base)
    first = build(inc)
    assert first.retrained and first.reasons == ["no partition model yet"]
    r0 = device_recall(inc, queries)

    # +10% adds, -5% deletes, then an incremental build.
    adds = rest[:600]
    inc.add(ids_for("n", len(adds)), adds)
    inc.delete(ids_for("b", 300))
    second = build(inc)
    assert second.published and not second.retrained, second.lines()
    assert second.encoded == 600 and second.count == 6300
    r_inc = device_recall(inc, queries)

    full = build(inc, full=True)
    assert full.retrained and full.reasons == ["--full was given"]
    r_full = device_recall(inc, queries)
    assert r_full - r_inc <= 0.02, (r0, r_inc, r_full)
    assert r_inc > 0.6  # the oracle comparison is meaningful, not vacuous

    # The incremental snapshot still searches as it did: snapshots are immutable.
    assert device_recall(inc, queries, version=second.version) == pytest.approx(r_inc)


@pytest.mark.slow
def test_every_mutation_agrees_with_oracle(tmp_path, data, rng):
    base, rest = data
    cat = make(tmp_path, "m", "l2", dims_per_block=2)
    queries = rest[-100:] + 0.01
    cat.add(ids_for("b", 3000), base[:3000])
    steps = [
        lambda: cat.add(ids_for("n", 400), rest[:400]),
        lambda: cat.delete(ids_for("b", 200)),
        lambda: cat.add(ids_for("b", 50, 500), base[3000:3050]),  # updates: new vectors for old ids
        lambda: cat.delete(ids_for("n", 100)),
    ]
    build(cat)
    for step in [lambda: None] + steps:
        step()
        r = build(cat)
        snap = snapshot.load_snapshot(cat)
        live = {row[0] for row in cat._conn.execute("SELECT id FROM items WHERE removed_seq IS NULL")}
        assert set(snap.ids) == live and snap.count == r.count
        # exact search is the oracle itself, over the snapshot's stored vectors
        exact = snapshot.search(cat, queries, k=10, exact=True)
        from tests.support.catalog_helpers import oracle

        assert [[h["id"] for h in row] for row in exact] == oracle(cat, queries, 10)
        # the device-equivalent search finds most true neighbours, and all with every leaf
        assert device_recall(cat, queries) > 0.6
        assert device_recall(cat, queries, leaves=48) > 0.85


def test_updated_vectors_are_searched_with_their_new_values(tmp_path, data):
    base, _ = data
    cat = make(tmp_path, "u")
    cat.add(ids_for("b", 2000), base[:2000])
    build(cat)
    target = base[1500]
    cat.add(["b3"], target[None, :] * -1 + 0.0)  # b3 now points the opposite way ...
    cat.add(["b4"], target[None, :])  # ... and b4 is a copy of b1500
    build(cat)
    hits = snapshot.search(cat, target, k=2, leaves_to_search=48)[0]
    assert {h["id"] for h in hits} == {"b1500", "b4"}
    old = snapshot.search(cat, target, k=2, leaves_to_search=48, version=1)[0]
    assert "b4" not in {h["id"] for h in old}


@pytest.mark.slow
def test_health_policy_retrains_on_drift_and_growth(tmp_path, data):
    base, _ = data
    cat = make(tmp_path, "h")
    cat.add(ids_for("b", 3000), base[:3000])
    build(cat)
    # A new, far-away region: the new vectors lie far from every existing leaf centre.
    shifted = clustered(600, DIM, clusters=3, spread=0.2, seed=99)
    cat.add(ids_for("s", 600), shifted)
    r = build(cat)
    assert r.retrained and any("farther from their leaf centres" in why or "imbalance" in why for why in r.reasons), (
        r.reasons
    )
    # Growth beyond 30% untrained forces a retrain too.
    more = clustered(2000, DIM, clusters=150, spread=0.9, seed=7)
    cat.add(ids_for("g", 2000), more)  # 2000 of 5600 live vectors: 36% untrained
    r2 = build(cat)
    assert r2.retrained and any("added since training" in why for why in r2.reasons), r2.reasons


def test_small_catalogs_get_one_leaf_then_a_float_index(tmp_path, rng):
    cat = Catalog.create(tmp_path / "s", 8)
    cat.add(ids_for("x", 100), rng.standard_normal((100, 8)))
    r = build(cat)
    assert r.num_leaves == 1
    model = cat._conn.execute("SELECT kind FROM models").fetchone()[0]
    assert model == "float"  # too few vectors for 256 hashing centres: exact float index
    q = rng.standard_normal((5, 8))
    assert [[h["id"] for h in row] for row in snapshot.search(cat, q, k=5)] == [
        [h["id"] for h in row] for row in snapshot.search(cat, q, k=5, exact=True)
    ]
    cat.add(ids_for("y", 400), rng.standard_normal((400, 8)))
    r = build(cat)
    assert r.retrained and "hashed index" in r.reasons[0]
    assert cat._conn.execute("SELECT kind, num_leaves FROM models ORDER BY model_id DESC").fetchone() == ("ah", 1)


def test_nothing_changed_publishes_nothing_and_empty_catalog_builds(tmp_path, rng):
    cat = Catalog.create(tmp_path / "e", 8)
    r = build(cat)
    assert r.published and r.count == 0
    assert snapshot.search(cat, rng.standard_normal(8), k=3) == [[]]
    again = build(cat)
    assert not again.published and again.version == r.version
    cat.add(ids_for("x", 10), rng.standard_normal((10, 8)))
    assert build(cat).version == r.version + 1


def test_build_options_persist_and_lookup_changes_do_not_retrain(tmp_path, data):
    base, _ = data
    cat = make(tmp_path, "o")
    cat.add(ids_for("b", 2000), base[:2000])
    build(cat)
    r = build(cat, changes={"lookup_type": "INT8", "leaves_to_search": 3})
    assert r.published and not r.retrained and r.leaves_to_search == 3
    assert Catalog.open(cat.path).index_config.lookup_type == "INT8"
    assert snapshot.get_snapshot(cat).lookup_type == "INT8"
    r = build(cat, changes={"dims_per_block": 2})
    assert r.retrained and "dims_per_block changed" in r.reasons[0]
