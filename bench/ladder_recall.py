"""Recall@k at every leaves_to_search value of a ladder, one pass over the codes per query.

``device_search.search`` (what ``snapshot.search`` runs) scores the codes of the searched
leaves for each query and each ``leaves_to_search`` afresh; at 120,000 x 384 codes and a
ladder up to all leaves that is about 2.5 full scans per query, tens of minutes for 1,000
queries. The device's answer at ``L`` leaves is the ``k`` best (distance, global id) pairs
among the codes of the query's first ``L`` leaves, and a code's distance does not depend on
which other codes are scanned, so here each query's codes are scored **once**, all of them,
and every ladder value picks its top ``k`` from that one sorted list, keeping only rows whose
leaf is among the query's first ``L``.

Two ways to score, both in the device's order of leaves (``device_search.select_leaves``):

- :func:`device_distances`: the device's FLOAT-table arithmetic, bit for bit
  (``device_search.lookup_table``, then float32 sums over subspaces in blocks of 32, in the
  order ``device_search.ah_distances`` uses), so the answers equal ``device_search.search``'s
  exactly (the benchmark checks it on a sample of queries against ``snapshot.search``);
- :func:`blas_distances`: ``-(decode(code) . q)`` as one float32 matrix product: the same
  sums in another order (about 1e-7 apart), fast enough to score dozens of recipes; its
  recall is compared to the bit-exact one on the default recipe in the sweep's report.
"""

from __future__ import annotations

import numpy as np

from scannlite.store.index import device_search, recall_estimate


def ladder(num_leaves: int, dense: bool = False) -> list[int]:
    """1, 2, 4, ... and all leaves; ``dense``: the build's own ladder, steps of about sqrt(2)
    (1, 2, 3, 4, 6, 8, 11, ...: ``recall_estimate.ladder``)."""
    if dense:
        return recall_estimate.ladder(num_leaves)
    return [1 << i for i in range(num_leaves.bit_length()) if (1 << i) < num_leaves] + [num_leaves]


def leaf_ranks(index: device_search.DeviceIndex, queries: np.ndarray) -> np.ndarray:
    """(Q, L) int32: position of each leaf in the order the device visits them for each query."""
    n = index.num_leaves
    ranks = np.empty((len(queries), n), dtype=np.int32)
    if n == 1:
        ranks[:] = 0
        return ranks
    first = device_search.select_leaves(index, queries, n - 1)  # the device's stable order, all but the last
    last = n * (n - 1) // 2 - first.sum(axis=1)  # the one leaf not listed
    order = np.concatenate([first, last[:, None]], axis=1)
    np.put_along_axis(ranks, order, np.arange(n, dtype=np.int32)[None, :].repeat(len(queries), 0), axis=1)
    return ranks


def row_leaves(offsets: np.ndarray) -> np.ndarray:
    """(N,) leaf of each global id (rows are grouped by leaf)."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets))


class DeviceScorer:
    """The device's FLOAT-lookup distances to every code, bit for bit (see the module docstring)."""

    def __init__(self, index: device_search.DeviceIndex):
        if index.codebooks is None or index.lookup_type != "FLOAT":
            raise ValueError("the bit-exact scorer covers asymmetric-hashing indexes with FLOAT lookup")
        self.index = index
        # (S, N) index arrays, one subspace per row, converted once (np.take would convert
        # uint8 indices on every call); 8 bytes per code byte: 370 MB at 120,000 x 384.
        self.codes_t = np.ascontiguousarray(index.codes.T).astype(np.intp)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        table = device_search.lookup_table(self.index, q)  # (S, 256) float32
        s_count, n = self.codes_t.shape
        out = np.zeros(n, dtype=np.float32)
        for b in range(0, s_count, device_search.CHUNKS_PER_BLOCK):
            acc = table[b].take(self.codes_t[b])
            for s in range(b + 1, min(s_count, b + device_search.CHUNKS_PER_BLOCK)):
                acc += table[s].take(self.codes_t[s])  # float32, in order: cumsum's sequence
            out += acc
        return out


def device_distances(index: device_search.DeviceIndex, queries: np.ndarray):
    """Yields, per query, the device's distance to every code (bit-exact FLOAT lookup)."""
    scorer = DeviceScorer(index)
    for q in np.asarray(queries, dtype=np.float32):
        yield scorer(q)


def blas_distances(decoded: np.ndarray, queries: np.ndarray, chunk: int = 64):
    """Yields, per query, ``-(decoded . q)`` for every row (float32 matrix products, ``chunk`` queries at a time)."""
    queries = np.asarray(queries, dtype=np.float32)
    for start in range(0, len(queries), chunk):
        d = -(queries[start : start + chunk] @ decoded.T)
        yield from d


def answers(distances, ranks: np.ndarray, leaf_of_row: np.ndarray, steps: list[int], k: int):
    """{L: (Q, k) global ids}: for each query, the k smallest (distance, id) among rows whose
    leaf is in the query's first L leaves, for every L in ``steps``."""
    out = {L: np.full((len(ranks), k), -1, dtype=np.int64) for L in steps}
    for qi, d in enumerate(distances):
        order = np.lexsort((np.arange(len(d)), d))  # by distance, ties by global id (the device's rule)
        rank_in_order = ranks[qi][leaf_of_row[order]]
        for L in steps:
            picked = order[np.flatnonzero(rank_in_order < L)[:k]]
            out[L][qi, : len(picked)] = picked
    return out


def codes_scanned(ranks: np.ndarray, offsets: np.ndarray, steps: list[int]) -> dict[int, float]:
    """Mean over queries of the codes in the first L leaves (the device's scan work per query)."""
    sizes = np.diff(offsets).astype(np.int64)
    order = np.argsort(ranks, axis=1)  # leaves in visiting order
    cum = np.cumsum(sizes[order], axis=1)
    return {L: float(cum[:, min(L, len(sizes)) - 1].mean()) for L in steps}


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean over queries of |found top-k and true top-k| / k (``store.synthetic.recall_at_k``'s definition)."""
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k
