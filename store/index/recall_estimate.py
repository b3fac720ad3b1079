"""How much recall a snapshot gives a phone, estimated on the catalog's own vectors.

Definition (what tests/test_recall_estimate.py computes by brute force): draw ``sample``
live items with a fixed seed, from the items the partitions were not trained on when there
are that many (``build`` says which: a vector the k-means saw sits nearer its centroid than a
user's query does, and overstates recall); each one's stored vector is a query. Its *answer* at ``L``
leaves is the ``k`` best other items among the codes of the ``L`` leaves the device would
visit, ranked by the asymmetric-hashing distance; an answer is right when its exact distance
is no larger than that of the query's ``k``-th nearest other item by exact search over every
vector of the snapshot (so duplicates tied with a true neighbour count, as in
ann-benchmarks). The item itself is left out of both (a catalog item always finds itself, a
user's query never is one). Recall@k at ``L`` is the share of right answers among k.
The ladder is 1, 2, 3, 4, 6, 8, 11, ... (steps of about sqrt(2)) and all leaves.

The leaves visited are the device's own choice (:func:`device_search.leaf_order`, bit
exact); the code distance is the float-table one, computed as ``q . decode(code)`` with
BLAS rather than table lookups, which ranks candidates as the device's FLOAT table does up to
float rounding; docs/benchmarks.md compares it with held-out queries. A snapshot searched with
INT8 or INT16 tables rounds every table entry and loses a little more than this: the estimate
is the FLOAT figure (``build`` says so), because fixed-point scoring of every code would cost
far more (docs/design-figures.md, "Recall estimate").

Cost and memory: one pass over the snapshot's stored vectors for the truth and one over its
decoded codes for the answers, each a (sample x chunk) matrix product, reading both a chunk
at a time (:class:`Snapshot` says from where); the second pass keeps each query's ``TOP``
best code distances, from which the answer at every ladder step follows unless fewer than
``k`` of them lie in that step's leaves (then those leaves alone are scanned again). Memory is
bounded by the chunk and the sample, not the catalog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from scannlite.store.index import device_search
from scannlite.store.vocabulary import Distance

DEFAULT_SAMPLE = 500
K = 10
#: Rows scored per step: a (sample x chunk) float32 distance matrix, 64 MB at 500 x 32,768.
ROW_CHUNK = 32_768
#: Best code distances kept per query: enough that every ladder step but the first few finds
#: its k answers among them (the rest scan their own leaves again).
TOP = 1024
#: Queries merged together into their kept lists (bounds the merge's temporary arrays).
QUERY_BLOCK = 64
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
    kind: str = "leave-one-out"  # or "queries": measured on the catalog's query sample
    stderr: list[float] | None = None  # standard error of each recall figure, over the queries
    sample_digest: str | None = None  # for "queries": which sample it was measured on

    def at(self, leaves: int) -> float | None:
        """Recall at ``leaves``: exact on the ladder, else the nearest ladder value below."""
        below = [r for n, r in zip(self.ladder, self.recall) if n <= leaves]
        return below[-1] if below else None

    def smallest_meeting(self, target: float) -> int | None:
        return next((n for n, r in zip(self.ladder, self.recall) if r >= target), None)

    def to_json(self) -> dict:
        return {**asdict(self), "recall": [round(r, 4) for r in self.recall], "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, data: dict | None) -> RecallEstimate | None:
        if not data:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def ladder(num_leaves: int) -> list[int]:
    """Leaves values the estimate measures: steps of about sqrt(2) (1, 2, 3, 4, 6, 8, 11, 16,
    23, 32, 45, ...) and all leaves. Halving the steps of powers of two lets a recall target
    stop at 45 leaves where it would jump from 32 to 64: device time grows with the leaves."""
    out: list[int] = []
    x = 1.0
    while round(x) < num_leaves:
        if not out or round(x) != out[-1]:
            out.append(int(round(x)))
        x *= 2**0.5
    return out + [num_leaves]


def _scores(queries: np.ndarray, rows: np.ndarray, distance: Distance | str) -> np.ndarray:
    """(Q, R) distances, smaller is nearer, up to a per-query constant."""
    dots = queries @ rows.T
    return -dots if distance is Distance.DOT else (rows * rows).sum(1)[None, :] - 2 * dots


def _k_smallest(d: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest distances per line (as a set: recall needs no order)."""
    return (
        np.argpartition(d, k - 1, axis=1)[:, :k] if d.shape[1] > k else np.broadcast_to(np.arange(d.shape[1]), d.shape)
    )


@dataclass
class Snapshot:
    """What the estimate reads of a snapshot whose rows are in device order (grouped by leaf):
    a row's stored vector, what the device compares queries with for it (its decoded code,
    or the vector itself in a float index), and every stored vector once, a chunk at a time
    in any order (a catalog's segments)."""

    index: device_search.DeviceIndex  # the partitioner: centroids, offsets, distance
    vectors: Callable[[np.ndarray], np.ndarray]  # rows -> (R, D) stored vectors
    decoded: Callable[[np.ndarray], np.ndarray]  # rows -> (R, D) what the device compares with
    chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]  # () -> (rows, their vectors), every row once
    unseen: np.ndarray | None = None  # rows whose vectors the partitions were not trained on, if known

    @classmethod
    def in_memory(cls, index: device_search.DeviceIndex, vectors: np.ndarray, decoded) -> Snapshot:
        n = len(vectors)
        return cls(
            index,
            lambda rows: vectors[rows],
            decoded,
            lambda: (
                (np.arange(lo, min(n, lo + ROW_CHUNK)), vectors[lo : lo + ROW_CHUNK]) for lo in range(0, n, ROW_CHUNK)
            ),
        )


def exact_kth_distance(
    chunks, query_rows: np.ndarray, queries: np.ndarray, distance: Distance | str, k: int
) -> np.ndarray:
    """(Q,) distance from each query row to its k-th nearest *other* row, by brute force over
    the ``(rows, vectors)`` chunks (memory bounded by the chunk, not the catalog)."""
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for ids, chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        for q0 in range(0, len(queries), QUERY_BLOCK):
            block = slice(q0, q0 + QUERY_BLOCK)
            d = _scores(queries[block], chunk, distance)
            d[ids[None, :] == query_rows[block, None]] = np.inf  # leave one out
            near = _k_smallest(d, k)  # the chunk's own k best, then merged with the best so far
            d_all = np.concatenate([best_d[block], np.take_along_axis(d, near, 1)], axis=1)
            i_all = np.concatenate([best_i[block], ids[near]], axis=1)
            keep = _k_smallest(d_all, k)
            best_d[block], best_i[block] = np.take_along_axis(d_all, keep, 1), np.take_along_axis(i_all, keep, 1)
    return best_d.max(axis=1)


def nearest_codes(
    snap: Snapshot, query_rows: np.ndarray, queries: np.ndarray, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """(Q, top) rows with the smallest code distances per query (the query's own row left
    out), and those distances, over every row of the snapshot, a chunk at a time."""
    index, n = snap.index, snap.index.size
    best_d = np.full((len(queries), top), np.inf, np.float32)
    best_r = np.full((len(queries), top), -1, np.int64)
    for lo in range(0, n, ROW_CHUNK):
        rows = np.arange(lo, min(n, lo + ROW_CHUNK))
        compared = np.asarray(snap.decoded(rows), dtype=np.float32)
        for q0 in range(0, len(queries), QUERY_BLOCK):
            block = slice(q0, q0 + QUERY_BLOCK)
            d = _scores(queries[block], compared, index.distance)
            own = np.flatnonzero((query_rows[block] >= lo) & (query_rows[block] < lo + len(rows)))
            d[own, query_rows[block][own] - lo] = np.inf  # leave one out
            worst = best_d[block].max(axis=1)
            if np.isinf(worst).any():  # lists not yet full: merge the whole chunk
                d_all = np.concatenate([best_d[block], d], axis=1)
                keep = np.argpartition(d_all, top - 1, axis=1)[:, :top]
                r_all = np.where(
                    keep < top,
                    np.take_along_axis(best_r[block], np.minimum(keep, top - 1), 1),
                    rows[np.maximum(keep - top, 0)],
                )
                best_d[block], best_r[block] = np.take_along_axis(d_all, keep, 1), r_all
                continue
            # Only what beats a query's current worst kept distance can enter its list: after
            # the first chunks that is a sliver of each chunk, so merge just those.
            q_idx, c_idx = np.nonzero(d < worst[:, None])
            bounds = np.searchsorted(q_idx, np.arange(len(worst) + 1))
            for j in np.flatnonzero(np.diff(bounds)):
                qi, cols = q0 + j, c_idx[bounds[j] : bounds[j + 1]]
                d_all = np.concatenate([best_d[qi], d[j, cols]])
                r_all = np.concatenate([best_r[qi], rows[cols]])
                keep = np.argpartition(d_all, top - 1)[:top]
                best_d[qi], best_r[qi] = d_all[keep], r_all[keep]
    return best_r, best_d


def _scan_leaves(snap: Snapshot, query: np.ndarray, query_row: int, leaves: np.ndarray, k: int) -> np.ndarray:
    """The k rows of ``leaves`` nearest ``query`` by code distance (all of them if fewer), the
    query's own row left out: the answer when the kept best distances cannot tell it."""
    offsets = snap.index.offsets
    rows = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in leaves])
    rows = rows[rows != query_row]
    best_d, best_r = np.zeros(0, np.float32), np.zeros(0, np.int64)
    for lo in range(0, len(rows), ROW_CHUNK):
        part = rows[lo : lo + ROW_CHUNK]
        d = _scores(query[None], np.asarray(snap.decoded(part), dtype=np.float32), snap.index.distance)[0]
        best_d, best_r = np.concatenate([best_d, d]), np.concatenate([best_r, part])
        if len(best_d) > k:
            keep = np.argpartition(best_d, k - 1)[:k]
            best_d, best_r = best_d[keep], best_r[keep]
    return best_r


def estimate(
    snap: Snapshot, *, sample: int = DEFAULT_SAMPLE, k: int = K, seed: int = 0, top: int = TOP
) -> RecallEstimate | None:
    """The estimate for a snapshot (see the module docstring). None when there are too few
    items for a leave-one-out top-k. The queries are drawn from ``snap.unseen`` when it holds
    ``sample`` rows."""
    started = time.perf_counter()
    n = snap.index.size
    if n <= k:
        return None
    k = min(k, n - 1)
    unseen = snap.unseen
    pool = np.arange(n) if unseen is None or len(unseen) < min(sample, n) else np.asarray(unseen, np.int64)
    rows = np.sort(np.random.default_rng(seed).choice(pool, size=min(sample, len(pool)), replace=False))
    queries = np.asarray(snap.vectors(rows), dtype=np.float32)
    steps, per_query = _measure(snap, rows, queries, k, top)
    return _summarise(steps, per_query, k, started)


def estimate_for_queries(
    snap: Snapshot, queries: np.ndarray, *, sample: int = DEFAULT_SAMPLE, k: int = K, seed: int = 0, top: int = TOP
) -> RecallEstimate | None:
    """The same estimate for outside queries (a catalog's query sample): each query's answer at
    ``L`` leaves against its ``k`` nearest items by exact search over the whole snapshot, nothing
    left out (a user's query is no catalog item). At most ``sample`` of them, drawn with ``seed``.
    None when the snapshot holds fewer than ``k`` items or there are no queries."""
    started = time.perf_counter()
    n = snap.index.size
    queries = np.asarray(queries, dtype=np.float32)
    if n < k or len(queries) == 0:
        return None
    if len(queries) > sample:
        queries = queries[np.sort(np.random.default_rng(seed).choice(len(queries), size=sample, replace=False))]
    rows = np.full(len(queries), -1, np.int64)  # no row is the query's own
    steps, per_query = _measure(snap, rows, queries, k, top)
    est = _summarise(steps, per_query, k, started)
    est.kind = "queries"
    return est


def _summarise(steps: list[int], per_query: np.ndarray, k: int, started: float) -> RecallEstimate:
    """Mean recall per ladder step and its standard error over the queries (each query's
    recall is one draw: its k answers are not independent)."""
    share = per_query / k
    n = len(share)
    stderr = (share.std(axis=0, ddof=1) / np.sqrt(n)).tolist() if n > 1 else [0.0] * len(steps)
    return RecallEstimate(
        steps,
        (per_query.sum(axis=0) / (n * k)).tolist(),
        n,
        k,
        time.perf_counter() - started,
        stderr=[round(e, 4) for e in stderr],
    )


def _measure(snap: Snapshot, rows: np.ndarray, queries: np.ndarray, k: int, top: int) -> tuple[list[int], np.ndarray]:
    """(ladder, (Q, steps) right answers per query): ``rows[i]`` is query i's own row, left
    out of its truth and its answers, or -1 for a query that is no row."""
    index = snap.index
    n = index.size
    top = max(k, min(top, n - 1 if (rows >= 0).any() else n))
    kth = exact_kth_distance(snap.chunks(), rows, queries, index.distance, k)
    best_r, best_d = nearest_codes(snap, rows, queries, top)
    steps = ladder(index.num_leaves)
    order = device_search.leaf_order(index, queries)  # (Q, L): searching n leaves visits order[:, :n]
    leaf_of = np.repeat(np.arange(index.num_leaves), np.diff(index.offsets))
    answers: list[list[np.ndarray]] = []
    for qi in range(len(rows)):
        rank = np.empty(index.num_leaves, np.int64)
        rank[order[qi]] = np.arange(index.num_leaves)
        found = np.isfinite(best_d[qi])
        cand_r, cand_d = best_r[qi, found], best_d[qi, found]
        cand_rank = rank[leaf_of[cand_r]]
        per_step = []
        for leaves in steps:
            inside = cand_rank < leaves
            if inside.sum() >= k:
                # No row outside the kept list is nearer than any row in it, so the k best of
                # its rows in these leaves are the k best of the leaves.
                ins_r, ins_d = cand_r[inside], cand_d[inside]
                per_step.append(ins_r[np.argpartition(ins_d, k - 1)[:k]])
            else:
                per_step.append(_scan_leaves(snap, queries[qi], int(rows[qi]), order[qi, :leaves], k))
        answers.append(per_step)
    # Every answer is judged by its exact distance, from its stored vector.
    wanted = np.unique(np.concatenate([a for per_step in answers for a in per_step] + [np.zeros(0, np.int64)]))
    stored = (
        np.asarray(snap.vectors(wanted), dtype=np.float32)
        if len(wanted)
        else np.zeros((0, queries.shape[1]), np.float32)
    )
    hits = np.zeros((len(rows), len(steps)))
    for qi, per_step in enumerate(answers):
        # A hit is an answer at least as near (exactly) as the k-th true neighbour: with
        # ties (duplicate vectors) any of the tied items is a right answer.
        bound = kth[qi] + TIE * max(1.0, abs(float(kth[qi])))
        for si, got in enumerate(per_step):
            vecs = stored[np.searchsorted(wanted, got)]
            hits[qi, si] = int((_scores(queries[qi : qi + 1], vecs, index.distance)[0] <= bound).sum())
    return steps, hits
