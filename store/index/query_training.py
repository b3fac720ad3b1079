"""Training the partitions on the catalog's items plus a share of its query sample (``IndexConfig.train_on_queries``).

k-means places its centroids where the training points are. When people's queries sit elsewhere than the catalog's
items (a few typed words against whole sentences), adding some of them to the tree's training points pulls
centroids towards them (docs/queries.md, "Partitions for such queries"). Only the tree sees them: the codes encode
items, so the hashing codebooks train on the items alone.

The sample is split in two by each query's content (a hash of its vector, so the split holds whatever order or
slots the reservoir keeps them in): the tree may train on one half, the build's recall estimate measures the other.
A query k-means saw sits nearer its centroid than a new one does and would overstate the recall stated for users'
queries. Without ``train_on_queries`` nothing is split: the estimate uses the whole sample, as before.
"""

from __future__ import annotations

import hashlib

import numpy as np

from scannlite.store.catalog import query_sample
from scannlite.store.index import stored
from scannlite.store.index.config import IndexConfig

#: Seed of the draw of query rows, fixed so the same catalog and sample train the same tree.
QUERY_SEED = 20261206


def trainable(queries: np.ndarray) -> np.ndarray:
    """Per query: whether it belongs to the half the tree may train on. Decided by the first byte of a BLAKE2b
    hash of its float32 little-endian bytes, so a query keeps its side as long as it stays in the sample."""
    rows = np.ascontiguousarray(queries, dtype="<f4")
    return np.fromiter(
        (hashlib.blake2b(r.tobytes(), digest_size=1).digest()[0] & 1 == 0 for r in rows), bool, len(rows)
    )


def for_estimate(queries: np.ndarray, split: bool) -> np.ndarray:
    """The sampled queries the build's recall estimate may measure: all of them, or when ``split`` (the tree may
    have trained on some) the half the tree never trains on."""
    if not split or len(queries) == 0:
        return queries
    return queries[~trainable(queries)]


def for_training(queries: np.ndarray, items: int, config: IndexConfig) -> np.ndarray:
    """Rows the tree trains on beside ``items`` sampled items, so that queries make ``train_on_queries`` of its
    training points: drawn (seeded) from the trainable half of the sample, each repeated equally often when the
    share asks for more points than that half holds (a repeated point weighs as much in k-means as that many).
    Empty without the knob or without trainable queries."""
    share = config.train_on_queries
    pool = queries[trainable(queries)] if share > 0 and len(queries) else queries[:0]
    if len(pool) == 0 or items == 0:
        return np.zeros((0, queries.shape[1]), np.float32)
    wanted = max(1, round(share / (1.0 - share) * items))
    order = np.random.default_rng(QUERY_SEED).permutation(len(pool))
    rows = np.sort(order[:wanted]) if wanted <= len(pool) else np.resize(order, wanted)
    return np.ascontiguousarray(pool[rows], dtype=np.float32)


def catalog_queries_for_estimate(cat, work, config: IndexConfig) -> np.ndarray:
    """:func:`for_estimate` on ``cat``'s query sample for a build's ``work``: split when ``train_on_queries`` asks
    for it or the model the snapshot uses was trained on queries (a retrain, or an earlier one, with the knob set;
    the setting may have changed since without a retrain)."""
    queries = query_sample.vectors(cat)
    if len(queries) == 0:
        return queries
    if work.trained is not None:
        stats = work.trained.stats
    elif work.model_id is not None:
        stats = stored.load_model(cat, work.model_id)[1] or {}
    else:
        stats = {}
    return for_estimate(queries, config.train_on_queries > 0 or stats.get("tree_queries", 0) > 0)


def catalog_queries_for_training(cat, items: int, config: IndexConfig) -> np.ndarray | None:
    """:func:`for_training` on ``cat``'s query sample; None (the sample not read) without the knob."""
    if config.train_on_queries <= 0:
        return None
    return for_training(query_sample.vectors(cat), items, config)
