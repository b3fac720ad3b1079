"""The recall estimate every build records, checked against a brute-force computation of
its definition (store/index/recall_estimate.py), and the leaves it makes the build choose."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.maintenance import compact
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.index import device_search, snapshot
from scannlite.store.index.build import build
from scannlite.store.index.build_recall import REUSE_ESTIMATE_BELOW, choose_leaves
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.recall_estimate import RecallEstimate, Snapshot, estimate, ladder
from scannlite.store.index.stored import unseen_at_training
from scannlite.store.index.training import training_rows
from tests.support.catalog_helpers import ids_for

DIM = 16
VECTORS = clustered(6000, DIM, clusters=60, spread=0.9, seed=5)


def make(tmp_path, name="c", distance="dot", **index):
    cat = Catalog.create(tmp_path / name, DIM, distance, index=IndexConfig(num_leaves=40, **index))
    cat.add(ids_for("a", 5000), VECTORS[:5000])
    return cat


def brute_force(snap, sample: int, k: int = 10, pool: np.ndarray | None = None) -> list[float]:
    """The definition, computed the slow obvious way in float64: every candidate's distance
    from the decoded code, the device's own leaf choice, the query item left out, an answer
    right when it is exactly at least as near as the k-th true neighbour."""
    index = snap.device_index()
    x = snap.vectors.astype(np.float64)
    decoded = snap.model.decode(snap.codes).astype(np.float64)
    pool = np.arange(len(x)) if pool is None else pool
    rows = np.sort(np.random.default_rng(0).choice(pool, size=min(sample, len(pool)), replace=False))

    def dist(q, m):
        return -(m @ q) if index.distance == "dot" else ((m - q) ** 2).sum(1)

    out = []
    for leaves in ladder(index.num_leaves):
        hits = 0
        for r in rows:
            q = x[r]
            d = dist(q, x)
            d[r] = np.inf
            kth = np.sort(d)[k - 1]
            chosen = device_search.select_leaves(index, q[None].astype(np.float32), leaves)[0]
            cand = np.concatenate([np.arange(index.offsets[p], index.offsets[p + 1]) for p in chosen])
            cand = cand[cand != r]
            dc = dist(q, decoded[cand])
            got = cand[np.argsort(dc, kind="stable")[:k]]
            hits += int((d[got] <= kth + 1e-9).sum())
        out.append(hits / (len(rows) * k))
    return out


@pytest.mark.parametrize("distance", ["dot", "l2"])
def test_the_estimate_equals_a_brute_force_computation_of_its_definition(tmp_path, distance):
    cat = make(tmp_path, distance=distance, recall_sample=60)
    build(cat)
    snap = snapshot.load_snapshot(cat, with_vectors=True)
    in_memory = Snapshot.in_memory(snap.device_index(), snap.vectors, lambda rows: snap.model.decode(snap.codes[rows]))
    got = estimate(in_memory, sample=60)
    expected = brute_force(snap, 60)
    # Kept lists too short to answer any step: every step scans its own leaves, same figures.
    assert np.allclose(estimate(in_memory, sample=60, top=10).recall, expected, atol=1e-9)
    assert got.ladder == ladder(40) == [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 40]
    assert np.allclose(got.recall, expected, atol=1e-9), (got.recall, expected)
    assert expected[0] < expected[-1]  # the ladder shows a real curve, not a constant
    # ... and the build recorded the same figures for the snapshot.
    recorded = snapshot.get_snapshot(cat).build["recall"]
    assert recorded["ladder"] == got.ladder and np.allclose(recorded["recall"], got.recall, atol=1e-4)


def test_queries_come_from_vectors_the_partitions_were_not_trained_on(tmp_path):
    # Trained-on vectors sit nearer their centroids than a user's query: as queries they
    # overestimated recall on real embeddings. The build draws from the items live at training
    # but left out of its sample, which the codes table marks (2: sampled, 1: not, 0: later).
    cat = make(tmp_path, recall_sample=60, training_sample_size=1000)
    build(cat)
    snap = snapshot.load_snapshot(cat, with_vectors=True)
    live = np.sort(snap.items)
    marks = dict(
        cat._conn.execute("SELECT item, trained FROM codes WHERE model_id = ?", (snap.info.model_id,)).fetchall()
    )
    sampled = live[training_rows(5000, 1000)]
    assert sorted(i for i, t in marks.items() if t == 2) == sampled.tolist()
    assert sum(t == 1 for t in marks.values()) == 4000
    assert np.array_equal(unseen_at_training(cat, snap.info.model_id), np.setdiff1d(live, sampled))
    unseen = np.flatnonzero(~np.isin(snap.items, sampled))
    expected = brute_force(snap, 60, pool=unseen)
    recorded = snapshot.get_snapshot(cat).build["recall"]
    assert np.allclose(recorded["recall"], expected, atol=1e-4), (recorded["recall"], expected)
    assert not np.allclose(brute_force(snap, 60), expected, atol=1e-4)  # a different draw indeed
    # Items added later (0) never join the pool; deletions and compaction do not lose it.
    cat.add(ids_for("b", 400), VECTORS[5000:5400])
    cat.delete([f"a{i}" for i in range(0, 5000, 7)])
    build(cat)
    compact(cat)
    assert not snapshot.get_snapshot(cat).build["retrained"]
    after = set(unseen_at_training(cat, snap.info.model_id).tolist())
    now = snapshot.load_snapshot(cat)
    live_unseen = set(np.setdiff1d(now.items, sampled).tolist())
    added = {i for (i,) in cat._conn.execute("SELECT item FROM codes WHERE trained = 0")}
    assert len(added) == 400 and not added & after
    assert live_unseen - added <= after and len(live_unseen - added) < 4000


def test_the_target_picks_the_smallest_sufficient_ladder_value(tmp_path):
    cat = make(tmp_path, recall_target=0.9)
    r = build(cat)
    est = r.recall
    need = next(n for n, v in zip(est.ladder, est.recall) if v >= 0.9)
    assert r.leaves_to_search == need and r.leaves_note is None
    assert all(v < 0.9 for n, v in zip(est.ladder, est.recall) if n < need)
    assert f"recall@10 {est.at(need):.3f} at {need} of 40 leaves" in "\n".join(r.lines())
    # A higher target takes more leaves; an explicit number wins over any target.
    assert build(cat, changes={"recall_target": 0.99}).leaves_to_search >= need
    assert build(cat, changes={"leaves_to_search": 3}).leaves_to_search == 3


def test_the_cap_is_reported_with_the_recall_actually_reached(tmp_path):
    cat = make(tmp_path, recall_target=1.0, max_leaves_to_search=4)
    r = build(cat)
    assert r.leaves_to_search == 4
    assert r.leaves_note.startswith("target recall 1.00 not reached within max_leaves_to_search 4: ")
    assert f"{r.recall.at(4):.3f} at 4 leaves" in r.leaves_note
    assert f"  {r.leaves_note}" in r.lines()
    info = snapshot.get_snapshot(cat).as_dict()
    assert info["leaves_note"] == r.leaves_note and info["recall"]["ladder"][-1] == 40


def test_choose_leaves_rules():
    est = RecallEstimate([1, 2, 4, 8], [0.5, 0.7, 0.92, 0.97], 500, 10, 1.0)
    assert choose_leaves(IndexConfig(recall_target=0.9), 8, est) == (4, None)
    assert choose_leaves(IndexConfig(recall_target=0.9, leaves_to_search=2), 8, est) == (2, None)
    leaves, note = choose_leaves(IndexConfig(recall_target=0.95, max_leaves_to_search=5), 8, est)
    assert leaves == 4 and "0.920 at 4 leaves (it takes 8)" in note
    assert choose_leaves(IndexConfig(recall_target=None), 8, est) == (IndexConfig().search_leaves(8), None)


def test_a_curve_levelling_off_under_the_target_stops_where_more_leaves_gain_less_than_the_standard_error():
    """Issue 27's synthetic case: recall flat at 0.899 from 8 leaves on must not send the build to the cap."""
    ladder = [1, 2, 4, 8, 16, 32, 64, 128]
    flat = RecallEstimate(ladder, [0.6, 0.8, 0.88, 0.896, 0.898, 0.899, 0.899, 0.9], 500, 10, 1.0)
    flat.stderr = [0.02, 0.017, 0.014, 0.004, 0.004, 0.004, 0.004, 0.004]
    leaves, note = choose_leaves(IndexConfig(recall_target=0.9, max_leaves_to_search=64), 128, flat)
    assert leaves == 8
    assert note is not None and "0.896 at 8 leaves, where more leaves up to 64 gain less" in note
    assert "(0.899 at 64); it takes 128" in note
    # A curve still climbing at the cap keeps the cap, as before.
    climbing = RecallEstimate(ladder, [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.95], 500, 10, 1.0)
    climbing.stderr = [0.01] * len(ladder)
    leaves, note = choose_leaves(IndexConfig(recall_target=0.9, max_leaves_to_search=64), 128, climbing)
    assert leaves == 64 and note is not None and "0.850 at 64 leaves (it takes 128)" in note
    # Estimates without standard errors (stored before they were kept) keep the old rule.
    flat.stderr = None
    assert choose_leaves(IndexConfig(recall_target=0.9, max_leaves_to_search=64), 128, flat)[0] == 64
    # The target met within the cap is never affected.
    assert choose_leaves(IndexConfig(recall_target=0.85, max_leaves_to_search=64), 128, climbing) == (64, None)
    assert choose_leaves(IndexConfig(recall_target=0.8, max_leaves_to_search=64), 128, climbing) == (32, None)


def test_an_incremental_build_reuses_the_estimate_when_little_changed_and_says_so(tmp_path):
    cat = make(tmp_path)
    first = build(cat)
    small = int(REUSE_ESTIMATE_BELOW * 5000) // 2
    cat.add(ids_for("n", small), VECTORS[5000 : 5000 + small])
    second = build(cat)
    assert not second.retrained and second.recall.reused_from == first.version
    assert second.recall.recall == first.recall.recall
    assert f"reused from snapshot {first.version}, little changed since" in "\n".join(second.lines())
    # Past the threshold the build estimates afresh.
    cat.add(ids_for("m", 400), VECTORS[5200:5600])
    third = build(cat)
    assert third.recall.reused_from is None and not third.retrained
    # The fresh estimate read the old codes from the catalog and the new ones from the build:
    # it equals the estimate of the published snapshot held in memory. (The model trained on
    # every item live then, and items added since are not drawn from: all rows are.)
    snap = snapshot.load_snapshot(cat, with_vectors=True)
    assert len(unseen_at_training(cat, snap.info.model_id)) == 0
    held = estimate(
        Snapshot.in_memory(snap.device_index(), snap.vectors, lambda rows: snap.model.decode(snap.codes[rows]))
    )
    assert held.recall == third.recall.recall and held.ladder == third.recall.ladder


@pytest.mark.slow
def test_info_and_snapshots_json_carry_the_figures(tmp_path):
    cat = make(tmp_path)
    build(cat)
    run = lambda *a: json.loads(
        subprocess.run(
            [str(Path(sys.executable).parent / "scannlite"), *a, "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    info = run("info", str(cat.path))
    snaps = run("snapshots", str(cat.path))
    assert info["recall"]["ladder"][-1] == 40 and info["recall"]["at_leaves_to_search"] > 0.5
    assert snaps[-1]["recall"]["recall"] == info["recall"]["recall"]


def test_duplicates_tied_with_a_true_neighbour_count_as_right(tmp_path):
    """A float index is exact: with every vector stored twice (ties everywhere), recall is 1."""
    cat = Catalog.create(tmp_path / "dup", DIM)
    x = VECTORS[:100]
    cat.add(ids_for("a", 100) + ids_for("b", 100), np.vstack([x, x]))
    r = build(cat)
    assert r.recall.ladder == [1] and r.recall.recall == [1.0]


def test_a_fixed_point_snapshot_says_its_estimate_is_the_float_tables_figure(tmp_path):
    cat = make(tmp_path)
    assert "FLOAT lookup tables" not in "\n".join(build(cat).lines())
    int8 = build(cat, changes={"lookup_type": "INT8"})
    assert int8.published and int8.lookup_type == "INT8"
    assert "estimated with FLOAT lookup tables; this snapshot's INT8 tables give somewhat less" in "\n".join(
        int8.lines()
    )
