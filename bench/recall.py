"""Device-equivalent recall@k of scannlite and of the two peers, against one exact truth.

scannlite: ``snapshot.search`` (what a phone returns: the device's leaf selection, lookup
table, fixed-point conversion for INT8, summation, top-k) at each number of leaves searched,
with the catalog's FLOAT lookup and again with INT8 (the same snapshot and codes: the lookup
type only changes how the query's table is built). Model Maker's recipe: its ScaNN assets
loaded into a :class:`~scannlite.store.index.device_search.DeviceIndex` in device order and
searched by the same device-equivalent code with INT8 lookup (what Model Maker exported).
FAISS: its own IVF-PQ search. Truth: ``snapshot.search(..., exact=True)``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from scannlite.store.catalog.synthetic import recall_at_k
from scannlite.store.index import device_search, snapshot


def ids_of(rows) -> list[list[str]]:
    return [[h["id"] for h in row] for row in rows]


def truth(cat, queries: np.ndarray, k: int, snap) -> list[list[str]]:
    return ids_of(snapshot.search(cat, queries, k=k, exact=True, snapshot=snap))


def scannlite_curve(cat, queries, k: int, sweep, snap, lookup_type: str, exact) -> dict[int, float]:
    """recall@k per leaves searched, searching ``snap`` with the given lookup type."""
    snap = replace(snap, info=replace(snap.info, lookup_type=lookup_type))
    return {
        n: recall_at_k(ids_of(snapshot.search(cat, queries, k=k, leaves_to_search=n, snapshot=snap)), exact, k)
        for n in sweep
    }


def model_maker_index(assets: Path, base: np.ndarray, dims_per_block: int):
    """(DeviceIndex, order): ScaNN's serialized assets in the device's order.

    The device groups points by leaf, keeping their order within a leaf (global id j is
    ``order[j]`` of the array ScaNN was trained on)."""
    from scannlite.store.index.partition_model import PartitionModel
    from scannlite.store.index.training import read_centroids, read_codebooks

    # Model Maker kept ScaNN's own placement of every point (scannlite places them itself).
    model = PartitionModel(
        "ah", read_centroids(Path(assets)), read_codebooks(Path(assets), base.shape[1], dims_per_block), dims_per_block
    )
    leaves = np.load(Path(assets) / "datapoint_to_token.npy").astype(np.int32)
    codes = np.load(Path(assets) / "hashed_dataset.npy").astype(np.uint8)
    order = np.argsort(leaves, kind="stable")
    offsets = np.zeros(model.num_leaves + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(leaves, minlength=model.num_leaves))
    index = device_search.DeviceIndex(
        distance="dot",
        centroids=model.centroids,
        offsets=offsets,
        codebooks=model.codebooks,
        codes=codes[order],
        vectors=None,
        lookup_type="INT8",
    )
    return index, order


def index_curve(index, order: np.ndarray, queries: np.ndarray, k: int, sweep, exact) -> dict[int, float]:
    out = {}
    for n in sweep:
        pos, _ = device_search.search(index, queries, k, n)
        found = [[f"v{order[j]}" for j in row if j >= 0] for row in pos]
        out[n] = recall_at_k(found, exact, k)
    return out


def rows_curve(found: dict[int, np.ndarray], k: int, exact) -> dict[int, float]:
    return {n: recall_at_k([[f"v{j}" for j in row if j >= 0] for row in ids], exact, k) for n, ids in found.items()}
