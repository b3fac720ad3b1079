"""Search exactly as a phone does: tflite-support's on-device ScaNN, reimplemented with numpy.

ScaNN's own server-side searcher scores differently from the device (its top-10 equalled the
Task Library's in 0 of 200 measured queries), so server-side search follows the device's
algorithm step by step (tensorflow/tflite-support ``scann_ondevice/cc/core/`` and
``cc/task/processor/embedding_searcher.cc``), in float32 where the device uses float32:

1. **Leaves**: score every centroid with the partitioner's distance (dot: ``-c.q``; squared
   L2: ``|c|^2 - 2 c.q``, the query norm dropped) and keep the ``n`` smallest.
2. **Lookup table** (asymmetric hashing): per subspace s and codebook entry k, dot:
   ``-c_sk.q_s``; squared L2: ``(|q_s|^2 + |c_sk|^2) - 2 c_sk.q_s``.
3. **Fixed point** (INT8 / INT16 lookup): one min/max over the whole table, scale
   ``M / max(max - min, eps)`` with M = 255 or 2047, and a *truncating* cast.
4. **Sum** over subspaces in blocks of 32 (256 for an INT8 table of 16 codes): float sums in
   order within a block, added to the output block by block; integer sums wrap in 16 bits and
   are dequantized per block as ``scale * sum + n_block * (min + scale / 2)`` with
   ``scale = (max - min) / M`` (docs/native.md, "Arithmetic", step 4).
5. **Top-k** by distance (ascending; dot distances are negative dot products).

Float indexes (tiny catalogs) are scored like the device's linear search:
dot ``-q.x``, squared L2 ``(|q|^2 + |x|^2) - 2 q.x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scannlite.store.vocabulary import Distance

CHUNKS_PER_BLOCK = 32
#: The device's INT8 kernel for 16-code tables sums this many subspaces per block.
INT8_16_CODES_PER_BLOCK = 256
MAX_QUANTIZED = {"INT8": 255, "INT16": (1 << 16) // CHUNKS_PER_BLOCK - 1}
F32 = np.float32


@dataclass
class DeviceIndex:
    """The searchable part of a snapshot, in the device's order (grouped by leaf)."""

    distance: Distance | str  # a Distance, or its value as the catalog stores it
    centroids: np.ndarray  # (L, D) float32
    offsets: np.ndarray  # (L + 1,) int64: leaf p holds global ids offsets[p]:offsets[p+1]
    codebooks: list[np.ndarray] | None  # AH codebooks, or None for a float index
    codes: np.ndarray | None  # (N, S) uint8
    vectors: np.ndarray | None  # (N, D) float32, for a float index
    lookup_type: str = "FLOAT"

    @property
    def num_leaves(self) -> int:
        return int(self.centroids.shape[0])

    @cached_property
    def book_groups(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Consecutive codebooks of equal width, stacked once per index: (first dimension,
        (G, K, w) float32 books, (G, K) their rows' squared norms in the device's order)."""
        groups, start, i = [], 0, 0
        books = self.codebooks or []
        while i < len(books):
            w = books[i].shape[1]
            j = i
            while j < len(books) and books[j].shape[1] == w:
                j += 1
            stack = np.stack([np.asarray(b, dtype=F32) for b in books[i:j]])
            norms = np.stack([row_squared_norms(b) for b in stack])
            groups.append((start, stack, norms))
            start += (j - i) * w
            i = j
        return groups

    @property
    def size(self) -> int:
        return int(self.offsets[-1])


def centroid_scores(centroids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(Q, L) ``c.q`` in float32, summed in the order the device's Eigen GEMV uses.

    The leaf choice is discrete, so a one-ulp difference between two near-identical centroids
    (k-means leaves some) changes which leaf is searched. Eigen's column-major GEMV sums each
    row in blocks of columns (all of them below 128 columns, else 16, or 4 for 8,000+ leaves),
    multiply then add within a block, and adds block sums to the result in order.
    """
    n_leaves, dim = centroids.shape
    block = dim if dim < 128 else (16 if n_leaves * 4 < 32000 else 4)
    c = np.ascontiguousarray(centroids.T, dtype=F32)  # (D, L)
    q = np.asarray(queries, dtype=F32)
    total = np.zeros((len(q), n_leaves), dtype=F32)
    for b0 in range(0, dim, block):
        acc = np.zeros((len(q), n_leaves), dtype=F32)
        for j in range(b0, min(dim, b0 + block)):
            acc += q[:, j : j + 1] * c[j][None, :]
        total += acc
    return total


def row_squared_norms(matrix: np.ndarray, packet: int = 4) -> np.ndarray:
    """``matrix.rowwise().squaredNorm()`` in float32 as the device's Eigen evaluates it.

    tflite-support 0.4.4's searcher is built for SSE (4-float packets, no FMA). Rows that fill
    whole packets are reduced in Eigen's pipelined order, ``x0 + ((x1 + x2) + (x3 + x4)) + ...``
    then one by one; the last ``rows % 4`` rows are summed left to right. Near-duplicate
    k-means centroids make this order decide which leaf a query visits.
    """
    sq = (np.asarray(matrix, dtype=F32) ** 2).astype(F32)
    rows, cols = sq.shape
    out = np.zeros(rows, dtype=F32)
    if cols == 0:
        return out
    body = rows - rows % packet
    size4 = (cols - 1) & ~3
    p = sq[:body, 0].copy()
    i = 1
    while i < size4:
        p = p + ((sq[:body, i] + sq[:body, i + 1]) + (sq[:body, i + 2] + sq[:body, i + 3]))
        i += 4
    for j in range(i, cols):
        p = p + sq[:body, j]
    out[:body] = p
    tail = sq[body:, 0].copy()
    for j in range(1, cols):
        tail = tail + sq[body:, j]
    out[body:] = tail
    return out


def leaf_order(index: DeviceIndex, queries: np.ndarray) -> np.ndarray:
    """(Q, L) every leaf per query, nearest first by the partitioner's distance: searching n
    leaves visits the first n. The device keeps the n smallest (distance, leaf) pairs
    (nth_element), so ties go to the lower leaf number; a stable sort does the same."""
    dist = -centroid_scores(index.centroids, queries)
    if index.distance == "l2":
        dist = F32(2) * dist + row_squared_norms(index.centroids)[None, :]
    return np.argsort(dist, axis=1, kind="stable")


def select_leaves(index: DeviceIndex, queries: np.ndarray, n: int) -> np.ndarray:
    """(Q, n) leaves per query, the n smallest partitioner distances (ties: lower leaf)."""
    n = min(n, index.num_leaves)
    if n == index.num_leaves:
        return np.tile(np.arange(n), (len(queries), 1))
    return leaf_order(index, queries)[:, :n]


def lookup_table(index: DeviceIndex, q: np.ndarray) -> np.ndarray:
    """(S, K) float32 table of per-subspace distances for one query.

    Subspaces of one width are computed together (:attr:`DeviceIndex.book_groups`): the same
    float32 products and sums, element by element and in the same order, as one subspace at a
    time, so the table is bit for bit the device's, in a handful of numpy calls."""
    rows = []
    for start, books, norms in index.book_groups:
        g, _, w = books.shape
        qs = q[start : start + g * w].astype(F32).reshape(g, w)
        dot = books[:, :, 0] * qs[:, 0:1]
        for j in range(1, w):
            dot = dot + books[:, :, j] * qs[:, j : j + 1]
        if index.distance == "dot":
            rows.append(-dot)
        else:
            qn = np.zeros((g, 1), dtype=F32)
            for j in range(w):
                qn = qn + qs[:, j : j + 1] * qs[:, j : j + 1]
            rows.append((qn + norms) - F32(2) * dot)
    return np.concatenate(rows).astype(F32)


def quantize_table(lut: np.ndarray, lookup_type: str):
    """The device's fixed-point table: (integer table, min, max)."""
    top = MAX_QUANTIZED[lookup_type]
    lo, hi = F32(lut.min()), F32(lut.max())
    scale = F32(top) / max(F32(hi - lo), np.finfo(F32).eps)
    t = F32(scale) * (lut - lo)
    return t.astype(np.uint8 if lookup_type == "INT8" else np.uint16), lo, hi


def chunks_per_block(lookup_type: str, num_codes: int) -> int:
    """Subspaces the device sums per block: 256 for INT8 over 16 codes, else 32
    (``index_table_sum.h``; docs/native.md, "Arithmetic")."""
    return INT8_16_CODES_PER_BLOCK if lookup_type == "INT8" and num_codes == 16 else CHUNKS_PER_BLOCK


def ah_distances(index: DeviceIndex, table, codes: np.ndarray) -> np.ndarray:
    """Distances of the coded points to the query whose (possibly quantized) table is given."""
    s = codes.shape[1]
    per_block = chunks_per_block(index.lookup_type, (table[0] if isinstance(table, tuple) else table).shape[1])
    gathered = (
        table[0][np.arange(s)[None, :], codes] if isinstance(table, tuple) else table[np.arange(s)[None, :], codes]
    )
    out = np.zeros(len(codes), dtype=F32)
    if index.lookup_type == "FLOAT":
        for b in range(0, s, per_block):
            block = np.cumsum(gathered[:, b : b + per_block], axis=1, dtype=F32)[:, -1]
            out = out + block
        return out
    qtable, lo, hi = table
    top = MAX_QUANTIZED[index.lookup_type]
    dq_scale = F32(F32(hi - lo) / F32(top))
    dq_offset_1 = F32(lo + dq_scale / F32(2))
    for b in range(0, s, per_block):
        width = min(per_block, s - b)
        # The device's block sum is a uint16: it wraps.
        acc = (gathered[:, b : b + width].sum(axis=1, dtype=np.int64) & 0xFFFF).astype(F32)
        out = out + (dq_scale * acc + F32(F32(width) * dq_offset_1))
    return out


def float_distances(index: DeviceIndex, q: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    assert index.vectors is not None  # a float index keeps its vectors (DeviceIndex)
    x = index.vectors[rows]
    dots = (x.astype(np.float64) @ q.astype(np.float64)).astype(F32)
    if index.distance == "dot":
        return -dots
    qn = F32((q.astype(F32) ** 2).sum(dtype=F32))
    xn = (x * x).sum(axis=1, dtype=F32)
    return (qn + xn) - F32(2) * dots


def search(index: DeviceIndex, queries: np.ndarray, k: int, leaves_to_search: int):
    """(Q, k) global ids (-1 where fewer results) and (Q, k) float32 distances."""
    queries = np.atleast_2d(np.asarray(queries, dtype=F32))
    q_count = len(queries)
    ids = np.full((q_count, k), -1, dtype=np.int64)
    dists = np.full((q_count, k), np.inf, dtype=F32)
    if index.size == 0:
        return ids, dists
    leaves = select_leaves(index, queries, leaves_to_search)
    for qi, q in enumerate(queries):
        spans = [np.arange(index.offsets[p], index.offsets[p + 1]) for p in leaves[qi]]
        cand = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
        if len(cand) == 0:
            continue
        if index.codebooks is None:
            d = float_distances(index, q, cand)
        else:
            lut = lookup_table(index, q)
            table = lut if index.lookup_type == "FLOAT" else quantize_table(lut, index.lookup_type)
            assert index.codes is not None  # an AH index keeps its codes (DeviceIndex)
            d = ah_distances(index, table, index.codes[cand])
        take = min(k, len(cand))
        order = np.lexsort((cand, d))[:take]
        ids[qi, :take] = cand[order]
        dists[qi, :take] = d[order]
    return ids, dists


def exact_search(vectors: np.ndarray, distance: str, queries: np.ndarray, k: int):
    """Brute force over float vectors, distances as the device reports them (ties to the lower row)."""
    return exact_search_chunks([(np.arange(len(vectors)), vectors)], distance, queries, k)


def exact_search_chunks(chunks, distance: str, queries: np.ndarray, k: int):
    """Brute force over vectors that arrive as ``(rows, vectors)`` chunks, in any order (a
    catalog's segments): distances as the device reports them, ties to the lower row, memory
    bounded by the chunk."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    qn = (queries * queries).sum(axis=1)
    best_d = [np.zeros(0)] * len(queries)
    best_r = [np.zeros(0, np.int64)] * len(queries)
    for rows, chunk in chunks:
        x = np.asarray(chunk, dtype=np.float64)
        rows = np.asarray(rows, dtype=np.int64)
        xn = (x * x).sum(axis=1)
        for start in range(0, len(queries), 256):
            q = queries[start : start + 256]
            dots = q @ x.T
            d = -dots if distance == "dot" else qn[start : start + 256, None] + xn[None, :] - 2 * dots
            # Each query's k nearest of the chunk, ties at the k-th included, merged with its best so far.
            kth = np.partition(d, k - 1, axis=1)[:, k - 1] if d.shape[1] > k else np.full(len(q), np.inf)
            q_idx, c_idx = np.nonzero(d <= kth[:, None])
            bounds = np.searchsorted(q_idx, np.arange(len(q) + 1))
            for j in range(len(q)):
                cols = c_idx[bounds[j] : bounds[j + 1]]
                i = start + j
                d_all = np.concatenate([best_d[i], d[j, cols]])
                r_all = np.concatenate([best_r[i], rows[cols]])
                order = np.lexsort((r_all, d_all))[:k]
                best_d[i], best_r[i] = d_all[order], r_all[order]
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    dists = np.full((len(queries), k), np.inf, dtype=F32)
    for i in range(len(queries)):
        ids[i, : len(best_r[i])] = best_r[i]
        dists[i, : len(best_d[i])] = best_d[i]
    return ids, dists


def l2_normalize(queries: np.ndarray) -> np.ndarray:
    """The Task Library's ``l2_normalize``, bit for bit: a float32 running sum of squares,
    ``1 / sqrt`` in float32, one multiply per value; zero vectors are left as they are.

    Matching it exactly matters for INT8/INT16 lookup: a one-ulp difference in the query can
    flip a truncated table entry and move a distance by a whole quantization step."""
    q = np.atleast_2d(np.asarray(queries, dtype=F32))
    sq = np.cumsum(q * q, axis=1, dtype=F32)[:, -1] if q.shape[1] else np.zeros(len(q), F32)
    inv = np.where(sq == 0, F32(1), F32(1) / np.sqrt(np.where(sq == 0, F32(1), sq)).astype(F32)).astype(F32)
    return (q * inv[:, None]).astype(F32)
