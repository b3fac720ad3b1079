"""Small helpers shared by the catalog tests (not fixtures: plain functions)."""

from __future__ import annotations

import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import recall_at_k
from scannlite.store.index import snapshot


def ids_for(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + n)]


def oracle(cat: Catalog, queries: np.ndarray, k: int, version=None) -> list[list[str]]:
    """Brute force in numpy over the catalog's live vectors, independent of the store's search."""
    snap = snapshot.load_snapshot(cat, version, with_vectors=True)
    q = snapshot.prepare_queries(cat, queries).astype(np.float64)
    x = snap.vectors.astype(np.float64)
    scores = -(q @ x.T) if cat.distance == "dot" else ((q[:, None, :] - x[None]) ** 2).sum(-1)
    return [[snap.ids[j] for j in np.argsort(row, kind="stable")[:k]] for row in scores]


def device_recall(cat: Catalog, queries: np.ndarray, k: int = 10, version=None, leaves=None) -> float:
    found = snapshot.search(cat, queries, k=k, version=version, leaves_to_search=leaves)
    return recall_at_k([[h["id"] for h in row] for row in found], oracle(cat, queries, k, version), k)
