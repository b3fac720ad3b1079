"""scannlite's numpy device-equivalent search (store/index/device_search.py) gives the same
distances, bit for bit, as libscannlite (bit-exact with the Task Library) on an INT8 index of
16 codes with more subspaces than one 256-subspace block (docs/native.md, "Arithmetic", step 4)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from scannlite.store.bundle.ondevice.index_writer import scann_config, write_index
from scannlite.store.index import device_search as ds
from scannlite.store.searcher import NativeSearcher


@pytest.mark.parametrize("distance", ["dot", "l2"])
def test_int8_16_codes_sums_as_libscannlite(distance):
    rng = np.random.default_rng(22)
    n, leaves, subspaces = 1500, 5, 300  # one block of 256 subspaces and one of 44
    books = [rng.standard_normal((16, 1)).astype(np.float32) for _ in range(subspaces)]
    centroids = rng.standard_normal((leaves, subspaces)).astype(np.float32)
    sizes = np.array([300, 250, 350, 280, 320])
    codes = rng.integers(0, 16, (n, subspaces), dtype=np.uint8)
    config = scann_config(
        distance=distance, centroids=centroids, leaves_to_search=leaves, codebooks=books, lookup_type="INT8"
    )
    buf = io.BytesIO()
    write_index(buf, config=config, database=codes, sizes=sizes, labels=[b"%d" % i for i in range(n)], user_info=None)
    index = ds.DeviceIndex(
        distance=distance,
        centroids=centroids,
        offsets=np.concatenate([[0], np.cumsum(sizes)]),
        codebooks=books,
        codes=codes,
        vectors=None,
        lookup_type="INT8",
    )
    assert ds.chunks_per_block("INT8", 16) == 256
    with NativeSearcher(buf.getvalue()) as s:
        for _ in range(4):
            q = rng.standard_normal(subspaces).astype(np.float32)
            native = s.search(q, n, leaves=leaves)  # every item, every leaf
            assert len(native.ids) == n
            lut = ds.lookup_table(index, q)
            mine = ds.ah_distances(index, ds.quantize_table(lut, "INT8"), codes)
            # By id (equal distances may come in another order): every distance's bits equal.
            assert mine[native.ids].tobytes() == native.distances.tobytes()
            ids, dists = ds.search(index, q[None, :], 10, leaves)
            assert dists[0].tobytes() == native.distances[:10].tobytes()
