"""The partitions' knobs for users' queries (issue 27; store/index/query_training.py, ``IndexConfig.spherical`` and
``IndexConfig.train_on_queries``), on real ScaNN builds of small catalogs.

The oracle for each tree is ScaNN itself, called directly with the recipe's arguments spelled out (as the build
called it before these knobs existed) on the points the knob says it trains on: a default build must store those
centroids byte for byte, with or without a query sample, and each knob must change exactly what it names.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog import query_sample
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.errors import InvalidInput
from scannlite.store.index import query_training, snapshot
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.recall_estimate import Snapshot, estimate_for_queries
from scannlite.store.index.stored import load_model
from scannlite.store.index.training import built_assets, import_scann, read_centroids, training_rows
from tests.support.catalog_helpers import ids_for

DIM = 24
N = 5000
LEAVES = 40
VECTORS = clustered(N, DIM, clusters=50, spread=0.9, seed=21)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def far_queries(n: int, seed: int = 3) -> np.ndarray:
    """Queries unlike the items (as short texts sit between a catalog's sentences): items pulled towards the
    origin plus broad noise, normalised as the catalog stores them."""
    rng = np.random.default_rng(seed)
    return unit(0.4 * VECTORS[rng.integers(0, N, n)] + rng.standard_normal((n, DIM)))


def scann_tree(points: np.ndarray, spherical: bool, config: IndexConfig) -> np.ndarray:
    """ScaNN's k-means tree on ``points`` with the recipe's arguments, as the build called it before the knobs."""
    builder = (
        import_scann()
        .builder(np.ascontiguousarray(points, dtype=np.float32), 10, "dot_product")
        .tree(
            num_leaves=LEAVES,
            num_leaves_to_search=config.search_leaves(LEAVES),
            training_sample_size=len(points),
            spherical=spherical,
            random_init=False,
            training_iterations=config.training_iterations,
        )
        .score_brute_force()
    )
    with built_assets(builder) as folder:
        return read_centroids(folder)


def built(tmp_path, name: str, config: IndexConfig, queries: np.ndarray | None = None):
    """A full build of VECTORS (dot product) with ``config``: its stored model and training stats, and the result."""
    cat = Catalog.create(tmp_path / name, DIM, index=config)
    cat.add(ids_for("v", N), VECTORS)
    if queries is not None:
        query_sample.add(cat, queries)
    result = build(cat)
    model, stats = load_model(cat, snapshot.load_snapshot(cat).info.model_id)
    return cat, model, stats, result


def sampled_items(cat: Catalog, config: IndexConfig) -> np.ndarray:
    """The catalog's stored (normalised) vectors of the rows the build trains on, in the order it reads them."""
    snap = snapshot.load_snapshot(cat, with_vectors=True)
    stored = snap.vectors[np.argsort([int(i[1:]) for i in snap.ids])]  # ids v0, v1, ... were added in order
    return stored[training_rows(N, config.training_sample_size)]


def test_a_default_build_trains_scanns_tree_on_the_items_alone_with_or_without_a_query_sample(tmp_path):
    config = IndexConfig(num_leaves=LEAVES)
    for name, queries in (("plain", None), ("sampled", far_queries(300))):
        cat, model, stats, _ = built(tmp_path, name, config, queries)
        expected = scann_tree(sampled_items(cat, config), True, config)
        assert model.centroid_blob() == np.ascontiguousarray(expected, "<f4").tobytes(), name
        assert "tree_queries" not in stats and "spherical k-means" in stats["recipe"]
        cat.close()


@pytest.mark.slow
def test_spherical_off_trains_plain_k_means_and_its_centroids_are_shorter_than_one(tmp_path):
    config = IndexConfig(num_leaves=LEAVES, spherical=False)
    cat, model, stats, _ = built(tmp_path, "plain", config)
    expected = scann_tree(sampled_items(cat, config), False, config)
    cat.close()
    assert model.centroid_blob() == np.ascontiguousarray(expected, "<f4").tobytes()
    assert "spherical" not in stats["recipe"]
    norms = np.linalg.norm(model.centroids.astype(np.float64), axis=1)
    assert norms.max() < 1 - 1e-3  # a mean of unit vectors spread over a leaf
    cat, default_model, _, _ = built(tmp_path, "spherical", IndexConfig(num_leaves=LEAVES))
    cat.close()
    assert np.allclose(np.linalg.norm(default_model.centroids.astype(np.float64), axis=1), 1.0, atol=1e-5)


def test_the_sample_splits_by_content_and_the_training_rows_come_from_one_half():
    queries = far_queries(400)
    side = query_training.trainable(queries)
    assert 150 < side.sum() < 250  # about half
    perm = np.random.default_rng(0).permutation(len(queries))
    assert np.array_equal(query_training.trainable(queries[perm]), side[perm])  # each query keeps its side
    config = IndexConfig(train_on_queries=0.2)
    few = query_training.for_training(queries, 400, config)  # 100 points: fewer than the half holds
    pool = {r.tobytes() for r in queries[side]}
    assert len(few) == 100 and len({r.tobytes() for r in few}) == 100 and all(r.tobytes() in pool for r in few)
    many = query_training.for_training(queries, 4000, config)  # 1,000 points: each query 4 or 5 times
    counts = np.unique([r.tobytes() for r in many], return_counts=True)[1]
    assert len(many) == 1000 and len(counts) == side.sum() and counts.max() - counts.min() <= 1
    assert np.array_equal(many, query_training.for_training(queries, 4000, config))  # seeded
    assert len(query_training.for_training(queries, 4000, IndexConfig())) == 0
    assert np.array_equal(query_training.for_estimate(queries, True), queries[~side])
    assert np.array_equal(query_training.for_estimate(queries, False), queries)
    for bad in (-0.1, 0.95):
        with pytest.raises(InvalidInput, match="train_on_queries"):
            IndexConfig(train_on_queries=bad)
    with pytest.raises(InvalidInput, match="spherical"):
        IndexConfig.from_json({"spherical": "yes"})


@pytest.mark.slow
def test_training_on_queries_trains_the_tree_on_sample_rows_and_estimates_on_the_others(tmp_path):
    queries = far_queries(400)
    config = IndexConfig(num_leaves=LEAVES, train_on_queries=0.2)
    cat, model, stats, result = built(tmp_path, "q", config, queries)
    stored_queries = query_sample.vectors(cat)
    items = sampled_items(cat, config)
    extra = query_training.for_training(stored_queries, len(items), config)
    assert stats["tree_queries"] == len(extra) == round(0.25 * len(items))
    assert "query-sample points" in stats["recipe"]
    expected = scann_tree(np.concatenate([items, extra]), True, config)
    assert model.centroid_blob() == np.ascontiguousarray(expected, "<f4").tobytes()
    # The codebooks still train on the items alone: the default build's, byte for byte.
    plain_cat, plain, _, _ = built(tmp_path, "plain", IndexConfig(num_leaves=LEAVES), queries)
    plain_cat.close()
    assert model.codebook_blob() == plain.codebook_blob() and model.centroid_blob() != plain.centroid_blob()
    # Centroids moved towards where queries land: the queries never trained on sit nearer their nearest centroid.
    held = query_training.for_estimate(stored_queries, True)

    def nearest(m):
        return float(np.mean(np.max(held.astype(np.float64) @ m.centroids.T.astype(np.float64), axis=1)))

    assert nearest(model) > nearest(plain)
    # The stated recall is measured on the half the tree never saw, by the sample estimate's definition.
    snap = snapshot.load_snapshot(cat, with_vectors=True)
    mem = Snapshot.in_memory(snap.device_index(), snap.vectors, lambda rows: snap.model.decode(snap.codes[rows]))
    want = estimate_for_queries(mem, held)
    assert result.query_recall.sample == len(held) < len(stored_queries)
    assert np.allclose(result.query_recall.recall, want.recall, atol=1e-9)
    # Setting the knob back to 0 without a retrain keeps the split: the model in use still saw those queries.
    query_sample.add(cat, far_queries(5, seed=9))  # a new sample, so the estimate is made again
    again = build(cat, changes={"train_on_queries": 0.0})
    assert not again.retrained
    assert again.query_recall.sample == len(query_training.for_estimate(query_sample.vectors(cat), True))
    cat.close()


@pytest.mark.slow
def test_build_sets_both_knobs_from_the_command_line_and_a_bad_share_is_one_line(tmp_path):
    path = tmp_path / "c"
    with Catalog.create(path, DIM) as cat:
        cat.add(ids_for("v", N), VECTORS)
        query_sample.add(cat, far_queries(300))
    scannlite = str(Path(sys.executable).parent / "scannlite")
    args = [scannlite, "build", str(path), "--num-leaves", str(LEAVES), "--no-spherical", "--train-on-queries", "0.25"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with Catalog.open(path) as cat:
        config = cat.index_config
        model, stats = load_model(cat, snapshot.load_snapshot(cat).info.model_id)
    assert config.spherical is False and config.train_on_queries == 0.25
    assert stats["tree_queries"] > 0 and "spherical" not in stats["recipe"]
    assert np.linalg.norm(model.centroids.astype(np.float64), axis=1).max() < 1 - 1e-3
    bad = subprocess.run([scannlite, "build", str(path), "--train-on-queries", "1.5"], capture_output=True, text=True)
    assert bad.returncode != 0 and "train_on_queries must be between 0 and 0.9" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
