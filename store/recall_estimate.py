"""How much recall a snapshot gives a phone, estimated on the catalog's own vectors.

Definition (what tests/test_recall_estimate.py computes by brute force): draw ``sample``
live items with a fixed seed; each one's stored vector is a query. Its *answer* at ``L``
leaves is the ``k`` best other items among the codes of the ``L`` leaves the device would
visit, ranked by the asymmetric-hashing distance; an answer is right when its exact distance
is no larger than that of the query's ``k``-th nearest other item by exact search over every
vector of the snapshot (so duplicates tied with a true neighbour count, as in
ann-benchmarks). The item itself is left out of both (a catalog item always finds itself, a
user's query never is one). Recall@k at ``L`` is the share of right answers among k.
The ladder is 1, 2, 4, ... and all leaves.

The leaves visited are the device's own choice (:func:`device_search.leaf_order`, bit
exact); the code distance is the float-table one, computed as ``q . decode(code)`` with
BLAS rather than table lookups, which ranks candidates as the device's FLOAT table does up to
float rounding. Measured against held-out queries on real sentence embeddings in
docs/benchmarks.md. A snapshot searched with INT8 or INT16 tables rounds every table entry
and loses a little more than this: the estimate is the FLOAT figure (``build`` says so);
scoring every code with fixed-point tables per query would cost about 50x more.

Cost: one pass over the snapshot's vectors for the truth and one over its decoded codes for
the answers, each a (sample x chunk) matrix product, plus, per query and ladder step, one
mask over the items. Memory is bounded by the chunk size, not the catalog.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from . import device_search
from .vocabulary import Distance

DEFAULT_SAMPLE = 500
K = 10
# Queries scored together: their (chunk x N) distance matrix is the estimate's largest array
# (128 MB at a million items with 32), so it stays small; the per-query loop dominates anyway.
QUERY_CHUNK = 32
ROW_CHUNK = 65_536
TIE = 1e-5  # relative: float32 sums in another order differ by about 1e-7


@dataclass
class RecallEstimate:
    ladder: list[int]  # leaves_to_search values
    recall: list[float]  # recall@k at each
    sample: int
    k: int
    seconds: float
    reused_from: int | None = None  # the snapshot whose estimate this build reused
    drift: int = 0  # items added or removed since the estimate was made

    def at(self, leaves: int) -> float | None:
        """Recall at ``leaves``: exact on the ladder, else the nearest ladder value below."""
        below = [r for l, r in zip(self.ladder, self.recall) if l <= leaves]
        return below[-1] if below else None

    def smallest_meeting(self, target: float) -> int | None:
        return next((l for l, r in zip(self.ladder, self.recall) if r >= target), None)

    def to_json(self) -> dict:
        return {**asdict(self), "recall": [round(r, 4) for r in self.recall], "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, data: dict | None) -> "RecallEstimate | None":
        return cls(**data) if data else None


def ladder(num_leaves: int) -> list[int]:
    steps, leaves = [], 1
    while leaves < num_leaves:
        steps.append(leaves)
        leaves *= 2
    return steps + [num_leaves]


def _scores(queries: np.ndarray, rows: np.ndarray, distance: Distance) -> np.ndarray:
    """(Q, R) distances, smaller is nearer, up to a per-query constant."""
    dots = queries @ rows.T
    return -dots if distance is Distance.DOT else (rows * rows).sum(1)[None, :] - 2 * dots


def _k_smallest(d: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest distances per line (as a set: recall needs no order)."""
    return np.argpartition(d, k - 1, axis=1)[:, :k] if d.shape[1] > k else \
        np.broadcast_to(np.arange(d.shape[1]), d.shape)


def exact_kth_distance(vectors: np.ndarray, query_rows: np.ndarray, distance: Distance, k: int) -> np.ndarray:
    """(Q,) distance from each query row to its k-th nearest *other* row, by brute force over
    ``vectors`` in chunks (memory bounded by the chunk, not the catalog)."""
    queries = np.asarray(vectors[query_rows], dtype=np.float32)
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for start in range(0, len(vectors), ROW_CHUNK):
        chunk = np.asarray(vectors[start:start + ROW_CHUNK], dtype=np.float32)
        d = _scores(queries, chunk, distance)
        ids = np.arange(start, start + len(chunk))
        d[ids[None, :] == query_rows[:, None]] = np.inf  # leave one out
        d_all = np.concatenate([best_d, d], axis=1)
        i_all = np.concatenate([best_i, np.broadcast_to(ids, d.shape)], axis=1)
        keep = _k_smallest(d_all, k)
        best_d, best_i = np.take_along_axis(d_all, keep, 1), np.take_along_axis(i_all, keep, 1)
    return best_d.max(axis=1)


def estimate(index: device_search.DeviceIndex, vectors: np.ndarray, decoded, *, sample: int = DEFAULT_SAMPLE,
             k: int = K, seed: int = 0) -> RecallEstimate | None:
    """The estimate for a snapshot in device order: ``vectors`` (N, D) its stored vectors and
    ``decoded(rows)`` what the device compares queries with (decoded codes, or the vectors of a
    float index). None when there are too few items for a leave-one-out top-k."""
    started = time.perf_counter()
    n = index.size
    if n <= k:
        return None
    k = min(k, n - 1)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    kth = exact_kth_distance(vectors, rows, index.distance, k)
    steps = ladder(index.num_leaves)
    sizes = np.diff(index.offsets)
    # What the device compares queries with, decoded once (the size of the vectors themselves).
    compared = np.empty((n, vectors.shape[1]), np.float32)
    for start in range(0, n, ROW_CHUNK):
        compared[start:start + ROW_CHUNK] = decoded(np.arange(start, min(n, start + ROW_CHUNK)))
    hits = np.zeros(len(steps))
    for q0 in range(0, len(rows), QUERY_CHUNK):
        qrows = rows[q0:q0 + QUERY_CHUNK]
        queries = np.asarray(vectors[qrows], dtype=np.float32)
        order = device_search.leaf_order(index, queries)  # (Q, L): searching n leaves visits order[:, :n]
        d = _scores(queries, compared, index.distance)
        d[np.arange(len(qrows)), qrows] = np.inf  # leave one out
        for qi in range(len(qrows)):
            # Items in the order the device visits their leaves: the first cum[L] are what
            # a search of L leaves scans.
            visit = np.concatenate([np.arange(index.offsets[p], index.offsets[p + 1]) for p in order[qi]])
            cum = np.concatenate([[0], np.cumsum(sizes[order[qi]])])
            dq = d[qi, visit]
            # A hit is an answer at least as near (exactly) as the k-th true neighbour: with
            # ties (duplicate vectors) any of the tied items is a right answer.
            bound = kth[q0 + qi] + TIE * max(1.0, abs(float(kth[q0 + qi])))
            # Once a prefix holds the query's k best codes overall, longer prefixes answer the
            # same: partition the whole list once, and only the shorter prefixes again.
            best = np.argpartition(dq, k - 1)[:k] if n > k else np.arange(n)
            for si, leaves in enumerate(steps):
                m = int(cum[leaves])
                if m > best.max():
                    top = best
                else:
                    top = np.argpartition(dq[:m], k - 1)[:k] if m > k else np.arange(m)
                got = visit[top[np.isfinite(dq[top])]]
                hits[si] += int((_scores(queries[qi:qi + 1], vectors[got], index.distance)[0] <= bound).sum())
    recall = (hits / (len(rows) * k)).tolist()
    return RecallEstimate(steps, recall, len(rows), k, time.perf_counter() - started)
