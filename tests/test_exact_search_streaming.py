"""Exact search over a snapshot too large to hold streams its vectors from the segments and
answers exactly as brute force over the array does."""

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.index import device_search, snapshot
from scannlite.store.index.build import build


@pytest.mark.parametrize("distance", ["dot", "l2"])
def test_streamed_exact_search_equals_brute_force_over_the_array(tmp_path, monkeypatch, distance):
    x = clustered(3000, 12, seed=3)
    x[17] = x[1800]  # an exact tie across two segments goes to the lower row
    with Catalog.create(tmp_path / "c", 12, distance) as cat:
        for lo in range(0, 3000, 700):
            cat.add([f"v{i}" for i in range(lo, min(3000, lo + 700))], x[lo : lo + 700])
        cat.delete(["v5", "v2999"])
        build(cat)
        q = np.concatenate([x[1800:1801], clustered(20, 12, seed=4)])
        in_memory = snapshot.search(cat, q, k=7, exact=True)
        monkeypatch.setattr(snapshot, "EXACT_IN_MEMORY", 0)
        snap = snapshot.load_snapshot(cat)
        streamed = snapshot.search(cat, q, k=7, exact=True, snapshot=snap)
        assert snap.vectors is None  # nothing was loaded whole
        loaded = snapshot.load_snapshot(cat, with_vectors=True)
        pos, dist = device_search.exact_search(loaded.vectors, distance, snapshot.prepare_queries(cat, q), 7)
    assert streamed == in_memory
    assert [[r["id"] for r in row] for row in streamed] == [[loaded.ids[j] for j in row] for row in pos]
    assert np.allclose([[r["distance"] for r in row] for row in streamed], dist)
    assert "v5" not in {r["id"] for row in streamed for r in row}
