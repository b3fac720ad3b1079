"""A trained partition model: k-means tree leaves plus asymmetric-hashing codebooks.

Exactly what the on-device index can hold (docs/ondevice-format.md): one level of leaves, plain
(non-residual) AH codes with 256 centres per block, or, for catalogs too small to train AH,
raw float vectors in one leaf. New vectors are placed with :meth:`assign` and
:meth:`encode`, so an incremental build reuses the model untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODES_PER_BLOCK = 256


def subspace_widths(dim: int, dims_per_block: int) -> list[int]:
    """ScaNN's block layout: full blocks, then one shorter block for the remainder."""
    full, rest = divmod(dim, dims_per_block)
    return [dims_per_block] * full + ([rest] if rest else [])


@dataclass
class PartitionModel:
    kind: str  # "ah" or "float"
    centroids: np.ndarray  # (num_leaves, dim) float32
    codebooks: list[np.ndarray] | None  # per subspace, (256, width) float32; None for "float"
    dims_per_block: int | None

    @property
    def num_leaves(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def num_subspaces(self) -> int:
        return len(self.codebooks) if self.codebooks is not None else 0

    # -- placing vectors -------------------------------------------------------------------
    # Every vector is placed by these two methods, whether a full build trained the model a
    # moment ago or an incremental build reuses it, so a chunk's placement never depends on
    # which build, chunk size or thread placed it.
    def assign(self, vectors: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Leaf of each vector: the nearest centroid by squared L2, as ScaNN tokenizes
        database points (its tree is trained with SquaredL2 partitioning distance)."""
        if self.num_leaves == 1:
            return np.zeros(len(vectors), dtype=np.int32)
        c = self.centroids.astype(np.float64)
        cn = (c * c).sum(axis=1)
        out = np.empty(len(vectors), dtype=np.int32)
        # The (rows x leaves) float64 matrix is the largest array here; leaves grow with the
        # catalog (2 sqrt(N)), so fewer rows per step keep it near 32 MB at any size.
        chunk = max(256, min(chunk, (1 << 22) // self.num_leaves))
        for start in range(0, len(vectors), chunk):
            x = vectors[start : start + chunk].astype(np.float64)
            d = x @ c.T
            d *= -2.0  # in place: cn - 2 x.c, bit for bit, without two more matrices
            d += cn
            out[start : start + chunk] = np.argmin(d, axis=1)
        return out

    def encode(self, vectors: np.ndarray, chunk: int = 8192) -> np.ndarray | None:
        """One byte per subspace: the nearest codebook entry by squared L2."""
        if self.codebooks is None:
            return None
        codes = np.empty((len(vectors), self.num_subspaces), dtype=np.uint8)
        start = 0
        for s, book in enumerate(self.codebooks):
            w = book.shape[1]
            if w == 1:
                # One dimension per block (the default): the nearest of 256 sorted values is a
                # binary search between midpoints, O(log 256) per value instead of 256
                # distances; it equals the distance argmin except where two entries are equally
                # near to within rounding.
                order, mids = self._sorted_entries(s)
                x = vectors[:, start].astype(np.float64)
                codes[:, s] = order[np.searchsorted(mids, x, side="left")]
            else:
                b = book.astype(np.float64)
                bn = (b * b).sum(axis=1)[None, :]
                for lo in range(0, len(vectors), chunk):
                    x = vectors[lo : lo + chunk, start : start + w].astype(np.float64)
                    codes[lo : lo + chunk, s] = np.argmin(bn - 2.0 * x @ b.T, axis=1)
            start += w
        return codes

    def _sorted_entries(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.codebooks is not None
        values = self.codebooks[s][:, 0].astype(np.float64)
        order = np.argsort(values, kind="stable").astype(np.uint8)
        v = values[order]
        return order, (v[:-1] + v[1:]) / 2.0

    def decode(self, codes: np.ndarray) -> np.ndarray:
        assert self.codebooks is not None
        return np.concatenate([book[codes[:, s]] for s, book in enumerate(self.codebooks)], axis=1)

    # -- health measures (store/index/health.py compares them with the training baseline) --------
    def residual(self, vectors: np.ndarray, leaves: np.ndarray) -> float:
        """Mean squared distance from each vector to its leaf's centroid."""
        if len(vectors) == 0:
            return 0.0
        diff = vectors.astype(np.float64) - self.centroids[leaves].astype(np.float64)
        return float((diff * diff).sum(axis=1).mean())

    def quantization_error(self, vectors: np.ndarray, codes: np.ndarray | None) -> float:
        """Mean squared AH reconstruction error relative to the mean squared norm."""
        if codes is None or len(vectors) == 0:
            return 0.0
        x = vectors.astype(np.float64)
        diff = x - self.decode(codes).astype(np.float64)
        return float((diff * diff).sum(axis=1).mean() / max((x * x).sum(axis=1).mean(), 1e-30))

    # -- storage ---------------------------------------------------------------------------
    def centroid_blob(self) -> bytes:
        return np.ascontiguousarray(self.centroids, dtype="<f4").tobytes()

    def codebook_blob(self) -> bytes | None:
        if self.codebooks is None:
            return None
        return b"".join(np.ascontiguousarray(b, dtype="<f4").tobytes() for b in self.codebooks)

    @classmethod
    def from_blobs(
        cls, kind: str, dim: int, num_leaves: int, dims_per_block: int | None, centroids: bytes, codebooks: bytes | None
    ) -> PartitionModel:
        cents = np.frombuffer(centroids, dtype="<f4").reshape(num_leaves, dim).astype(np.float32)
        books = None
        if kind == "ah":
            if codebooks is None or dims_per_block is None:
                raise ValueError("an asymmetric-hashing model without codebooks")
            flat = np.frombuffer(codebooks, dtype="<f4")
            books, pos = [], 0
            for w in subspace_widths(dim, dims_per_block):
                n = CODES_PER_BLOCK * w
                books.append(flat[pos : pos + n].reshape(CODES_PER_BLOCK, w).astype(np.float32))
                pos += n
            if pos != len(flat):
                raise ValueError("codebook blob size does not match the dimension")
        return cls(kind, cents, books, dims_per_block)
