"""Catalog steps measured in their own processes (see :mod:`bench.stage`).

Each function opens the catalog through the library, does one thing and returns plain data.
The build steps also split their wall time into parts by wrapping the library's own
functions with timers for the duration of the step: that is instrumentation only (the
wrapped functions run unchanged), and it answers where a build's time goes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def create(path: str, dim: int, leaves: int, searched: int, dims_per_block: int) -> dict:
    """A new dot-product catalog (vectors L2-normalised on insert, the default) with the
    benchmark's index settings; everything else at the library's defaults."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.config import IndexConfig

    config = IndexConfig(num_leaves=leaves, leaves_to_search=searched, dims_per_block=dims_per_block)
    Catalog.create(Path(path), dim, "dot", index=config).close()
    return config.to_json()


def add(path: str, npy: str, prefix: str, start: int, stop: int) -> dict:
    """Add rows ``start:stop`` of ``npy`` with ids ``{prefix}{row}``."""
    from scannlite.store.catalog.catalog import Catalog

    vectors = np.load(npy, mmap_mode="r")[start:stop]
    with Catalog.open(Path(path)) as cat:
        t0 = time.perf_counter()
        result = cat.add([f"{prefix}{i}" for i in range(start, stop)], np.ascontiguousarray(vectors))
        return {"added": result.added, "seconds": time.perf_counter() - t0, "count": cat.count()}


@contextmanager
def _timers(targets):
    """Wrap ``(owner, attribute, label)`` functions with timers; yields label -> seconds."""
    spent: dict[str, float] = defaultdict(float)
    saved = []
    for owner, attr, label in targets:
        original = getattr(owner, attr)

        def wrapper(*args, _original=original, _label=label, **kwargs):
            t0 = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += time.perf_counter() - t0

        saved.append((owner, attr, original))
        setattr(owner, attr, wrapper)
    try:
        yield spent
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def build(path: str, full: bool, changes: dict | None = None) -> dict:
    """``build(cat, full=full, changes=changes)`` with a breakdown of where its wall time went."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index import build as build_module
    from scannlite.store.index import build_recall, training
    from scannlite.store.index.partition_model import PartitionModel

    pybind = training.import_scann()
    from scann.scann_ops.py import scann_builder

    targets = [
        (Catalog, "vectors_for", "read the training sample and sampled vectors (Parquet)"),
        (scann_builder.ScannBuilder, "build", "ScaNN training (tree + AH)"),
        (pybind.ScannSearcher, "serialize", "ScaNN serialize"),
        (training, "place", "place every vector (assign + encode, threads)"),
        (training, "baseline_sums", "health baseline"),
        (build_recall, "estimate_recall", "recall estimate"),
        (PartitionModel, "assign", "assign leaves"),
        (PartitionModel, "encode", "encode AH codes"),
        (PartitionModel, "residual", "health: residual"),
        (PartitionModel, "quantization_error", "health: quantization error"),
    ]
    with Catalog.open(Path(path)) as cat, _timers(targets) as spent:
        t0 = time.perf_counter()
        result = build_module.build(cat, full=full, changes=changes)
        seconds = time.perf_counter() - t0
    parts = dict(spent)
    # The health measures run inside baseline_sums() after a retrain; count them once.
    nested = {"health: residual", "health: quantization error"} if "health baseline" in parts else set()
    if "place every vector (assign + encode, threads)" in parts:
        for key in ("assign leaves", "encode AH codes"):  # inside place(), summed over its threads
            parts.pop(key, None)
    accounted = sum(v for k, v in parts.items() if k not in nested)
    parts["other (SQLite reads and writes, bookkeeping)"] = max(0.0, seconds - accounted)
    return {
        "seconds": seconds,
        "retrained": result.retrained,
        "reasons": result.reasons,
        "encoded": result.encoded,
        "count": result.count,
        "version": result.version,
        "num_leaves": result.num_leaves,
        "leaves_to_search": result.leaves_to_search,
        "recipe": result.recipe,
        "parts": parts,
        "recall_at_chosen": result.recall.at(result.leaves_to_search)
        if result.recall and result.leaves_to_search
        else None,
    }
