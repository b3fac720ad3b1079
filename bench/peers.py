"""The two peers, built on the same array in their own processes (see :mod:`bench.stage`).

**Model Maker's recipe**, by calling ScaNN 1.4.2 directly the way tflite-model-maker's
``searcher.ScaNNOptions`` configured it (../shared/docs/device-recall.md): ScaNN's tree
defaults (random init, 12 iterations, not spherical, training_sample_size 100,000), asymmetric
hashing lut256 with one dimension per block and anisotropic threshold 0.2, residual
quantization off (the device cannot hold it); Model Maker exported with INT8 lookup.

**FAISS IVF-PQ** (faiss-cpu): 351 inverted lists, PQ 128 sub-quantizers x 8 bits (one byte per
dimension: the same bytes per vector as lut256 with one dimension per block), residual
encoding off (``by_residual = False``, as the device's codes are not residual), inner product.
"""

from __future__ import annotations

import time

import numpy as np


def model_maker_recipe(base: str, leaves: int, searched: int, out_dir: str) -> dict:
    """Train with Model Maker's recipe and serialize ScaNN's assets into ``out_dir``."""
    from scannlite.store.index.training import import_scann, quiet_native_stderr

    pybind = import_scann()
    x = np.ascontiguousarray(np.load(base), dtype=np.float32)
    t0 = time.perf_counter()
    builder = (
        pybind.builder(x, 10, "dot_product")
        .tree(num_leaves=leaves, num_leaves_to_search=searched)  # every other knob: ScaNN's default
        .score_ah(1, anisotropic_quantization_threshold=0.2, hash_type="lut256", residual_quantization=False)
    )
    with quiet_native_stderr():
        searcher = builder.build()
    trained = time.perf_counter() - t0
    searcher.serialize(out_dir)
    return {"train_seconds": trained, "seconds": time.perf_counter() - t0}


def faiss_ivfpq(base: str, queries: str, nlist: int, sweep: list[int], k: int) -> dict:
    """Train, add, then search every ``nprobe`` in ``sweep``; ids are rows of ``base``."""
    import faiss

    from scannlite.store.index.device_search import l2_normalize

    x = np.ascontiguousarray(np.load(base), dtype=np.float32)
    q = l2_normalize(np.load(queries))
    dim = x.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, dim, 8, faiss.METRIC_INNER_PRODUCT)
    index.by_residual = False
    t0 = time.perf_counter()
    index.train(x)
    t1 = time.perf_counter()
    index.add(x)
    t2 = time.perf_counter()
    found = {}
    search_seconds = {}
    for nprobe in sweep:
        index.nprobe = nprobe
        s0 = time.perf_counter()
        _, ids = index.search(q, k)
        search_seconds[nprobe] = (time.perf_counter() - s0) / len(q)
        found[nprobe] = ids
    return {
        "train_seconds": t1 - t0,
        "add_seconds": t2 - t1,
        "seconds": t2 - t0,
        "found": found,
        "search_seconds": search_seconds,
        "threads": faiss.omp_get_max_threads(),
    }
