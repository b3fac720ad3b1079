"""A full build trains ScaNN on a sample, then places every vector with the model's own code.

Checked against oracles: placement against brute-force nearest centroid / codebook entry,
threaded chunks against one pass, and a real full build against the placement an
incremental build would give the same vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.errors import InvalidInput
from scannlite.store.index import snapshot
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.partition_model import PartitionModel
from scannlite.store.index.stored import load_model
from scannlite.store.index.training import place, train, training_rows


def random_model(dim: int, leaves: int, dims_per_block: int, seed: int = 0) -> PartitionModel:
    rng = np.random.default_rng(seed)
    widths = [dims_per_block] * (dim // dims_per_block) + ([dim % dims_per_block] if dim % dims_per_block else [])
    books = [rng.normal(size=(256, w)).astype(np.float32) for w in widths]
    return PartitionModel("ah", rng.normal(size=(leaves, dim)).astype(np.float32), books, dims_per_block)


def brute_codes(model: PartitionModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest codebook entry per subspace by exact squared distance, and the gap to the runner-up."""
    codes, gaps, start = [], [], 0
    for book in model.codebooks:
        w = book.shape[1]
        d = ((x[:, None, start : start + w].astype(np.float64) - book[None].astype(np.float64)) ** 2).sum(axis=2)
        part = np.sort(d, axis=1)
        codes.append(np.argmin(d, axis=1))
        gaps.append(part[:, 1] - part[:, 0])
        start += w
    return np.stack(codes, axis=1).astype(np.uint8), np.stack(gaps, axis=1)


@pytest.mark.parametrize("dims_per_block", [1, 2, 3])
def test_encode_picks_the_nearest_codebook_entry(dims_per_block):
    model = random_model(dim=10, leaves=7, dims_per_block=dims_per_block)
    x = np.random.default_rng(1).normal(size=(3000, 10)).astype(np.float32)
    want, gap = brute_codes(model, x)
    got = model.encode(x)
    clear = gap > 1e-9  # an exact tie may go either way; nothing else may
    assert clear.mean() > 0.99
    assert np.array_equal(got[clear], want[clear])


def test_threaded_chunked_placement_equals_one_pass():
    model = random_model(dim=16, leaves=40, dims_per_block=1, seed=3)
    x = np.random.default_rng(4).normal(size=(10_001, 16)).astype(np.float32)
    one_leaves, one_codes = model.assign(x, chunk=len(x)), model.encode(x, chunk=len(x))
    for chunk, threads in [(1000, 2), (4096, 3), (10_001, 1), (7, 2)]:
        leaves, codes = place(model, x[:2000] if chunk == 7 else x, chunk=chunk, threads=threads)
        n = len(leaves)
        assert np.array_equal(leaves, one_leaves[:n]) and np.array_equal(codes, one_codes[:n]), (chunk, threads)
    nearest = np.argmin(((x[:, None, :] - model.centroids[None]) ** 2).sum(axis=2), axis=1)
    assert (one_leaves == nearest).mean() > 0.999


def test_training_sample_is_seeded_and_bounded():
    assert np.array_equal(training_rows(10, 100), np.arange(10))
    a, b = training_rows(50_000, 3000), training_rows(50_000, 3000)
    assert np.array_equal(a, b) and len(np.unique(a)) == 3000 and np.all(np.diff(a) > 0)


def test_train_sees_only_the_sample_and_places_every_vector_by_the_incremental_rule():
    x = clustered(6000, 32, seed=5)
    config = IndexConfig(num_leaves=20, training_sample_size=2000)
    trained = train(x, "dot", config)
    assert trained.stats["sample"] == 2000 and "trained on 2,000 of 6,000 vectors" in trained.stats["recipe"]
    assert np.array_equal(trained.leaves, trained.model.assign(x))
    assert np.array_equal(trained.codes, trained.model.encode(x))
    assert len(np.unique(trained.leaves)) > 15  # vectors outside the sample land in every part of the tree


def test_full_build_stores_the_placement_of_its_model_and_searches_like_brute_force_at_all_leaves(tmp_path):
    x = clustered(9000, 24, seed=7)
    ids = [f"v{i}" for i in range(len(x))]
    with Catalog.create(tmp_path / "c", 24) as cat:
        cat.add(ids, x)
        result = build(cat, full=True, changes={"num_leaves": 30, "training_sample_size": 3000})
        assert result.retrained
        snap = snapshot.load_snapshot(cat, None, with_vectors=True)
        model, training = load_model(cat, snap.info.model_id)
        order = {item: j for j, item in enumerate(snap.ids)}
        rows = np.array([order[i] for i in ids])
        index = snap.device_index()
        leaf_of = np.repeat(np.arange(index.num_leaves), np.diff(index.offsets))
        stored = x / np.linalg.norm(x, axis=1, keepdims=True)
        assert np.array_equal(leaf_of[rows], model.assign(stored))
        assert np.array_equal(index.codes[rows], model.encode(stored))
        assert training["sample"] == 3000
        # With every leaf searched the device's answer is the codes' exact ranking, so the top
        # hit of each query is its nearest neighbour unless two codes tie.
        q = x[:50]
        exact = snapshot.search(cat, q, k=1, exact=True, snapshot=snap)
        found = snapshot.search(cat, q, k=1, leaves_to_search=index.num_leaves, snapshot=snap)
        agree = np.mean([a[0]["id"] == b[0]["id"] for a, b in zip(exact, found)])
        assert agree >= 0.9


def test_default_leaves_are_twice_sqrt_n_but_catalogs_stored_before_keep_sqrt_n():
    assert IndexConfig().leaves_for(123_287) == 702 and IndexConfig().leaves_for(4095) == 1
    old = {k: v for k, v in IndexConfig().to_json().items() if k != "leaves_per_sqrt_n"}
    assert IndexConfig.from_json(old).leaves_for(123_287) == 351
    assert IndexConfig.from_json(IndexConfig().to_json()).leaves_per_sqrt_n == 2.0
    with pytest.raises(InvalidInput, match="leaves_per_sqrt_n"):
        IndexConfig(leaves_per_sqrt_n=0)


def test_a_build_streamed_from_many_segments_equals_training_on_the_whole_array(tmp_path):
    """The catalog's full build reads the sample, then places vectors segment by segment (a
    chunk at a time): leaves, codes and baseline equal train() on the same array in memory."""
    x = clustered(7000, 16, seed=11)
    config = IndexConfig(num_leaves=25, training_sample_size=2500)
    with Catalog.create(tmp_path / "c", 16, "l2", index=config) as cat:
        for lo in range(0, len(x), 1000):  # seven segments
            cat.add([f"v{i:05d}" for i in range(lo, lo + 1000)], x[lo : lo + 1000])
        assert cat.segment_count() == 7
        build(cat, full=True)
        snap = snapshot.load_snapshot(cat, None)
        model, training = load_model(cat, snap.info.model_id)
    whole = train(x, "l2", config)
    assert np.array_equal(model.centroids, whole.model.centroids)
    assert all(np.array_equal(a, b) for a, b in zip(model.codebooks, whole.model.codebooks))
    rows = np.array([int(i[1:]) for i in snap.ids])  # device order -> row of x
    assert np.array_equal(snap.leaves, whole.leaves[rows]) and np.array_equal(snap.codes, whole.codes[rows])
    for key in ("imbalance", "residual", "quantization_error"):
        assert np.isclose(training[key], whole.stats[key], rtol=1e-9), key
