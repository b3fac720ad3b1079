"""Parity: does the real Task Library answer what scannlite's device-equivalent search says?

Used by ``export`` (before publishing) and ``bundle verify``. Results are compared as
lists of device metadata (``M_j``) with distances: the same entries in the same order,
except that entries whose distances tie within ``TIE`` may swap (the device's top-N keeps an
arbitrary one of tied entries), and distances within ``DIST_TOL``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import device_search

TIE = 1e-5
DIST_TOL = 1e-4

Neighbors = list[tuple[bytes, float]]


@dataclass
class ParityReport:
    queries: int = 0
    exact_order: int = 0
    problems: list[str] = field(default_factory=list)

    def merge(self, other: "ParityReport") -> None:
        self.queries += other.queries
        self.exact_order += other.exact_order
        self.problems += other.problems


def compare(device: list[Neighbors], server: list[Neighbors], label: str) -> ParityReport:
    rep = ParityReport(queries=len(server))
    for q, (dev, srv) in enumerate(zip(device, server)):
        where = f"{label} query {q}"
        if len(dev) != len(srv):
            rep.problems.append(f"{where}: the device returned {len(dev)} results, scannlite {len(srv)}")
            continue
        if [m for m, _ in dev] == [m for m, _ in srv]:
            rep.exact_order += 1
        srv_pos = {m: i for i, (m, _) in enumerate(srv)}
        last = srv[-1][1] if srv else 0.0
        for i, ((dm, dd), (sm, sd)) in enumerate(zip(dev, srv)):
            if abs(dd - sd) > DIST_TOL:
                rep.problems.append(f"{where}, rank {i + 1}: device distance {dd:.7g}, scannlite {sd:.7g}")
                break
            if dm == sm:
                continue
            j = srv_pos.get(dm)
            tied = (j is not None and abs(srv[j][1] - sd) <= TIE) or (j is None and abs(sd - last) <= TIE)
            if not tied:
                rep.problems.append(f"{where}, rank {i + 1}: device returned {dm[:40]!r} at {dd:.7g}, "
                                    f"scannlite {sm[:40]!r} at {sd:.7g}")
                break
    return rep


def server_neighbors(index: device_search.DeviceIndex, labels: list[bytes], queries: np.ndarray, k: int,
                     leaves: int) -> list[Neighbors]:
    pos, dist = device_search.search(index, queries, k, leaves)
    return [[(labels[j], float(d)) for j, d in zip(p, dr) if j >= 0] for p, dr in zip(pos, dist)]


def probe_vectors(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` stored vectors plus as many perturbed copies (deterministic)."""
    rng = np.random.default_rng(seed)
    n = len(vectors)
    take = rng.choice(n, size=min(count, n), replace=False) if n else np.zeros(0, np.int64)
    own = vectors[np.sort(take)].astype(np.float32)
    norms = np.linalg.norm(own, axis=1, keepdims=True)
    scale = np.where(norms > 0, norms, 1.0) * 0.1 / np.sqrt(max(vectors.shape[1], 1))
    noisy = (own + rng.standard_normal(own.shape) * scale).astype(np.float32)
    return np.concatenate([own, noisy]) if len(own) else own


def normalised(queries: np.ndarray, l2_normalize: bool) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    return device_search.l2_normalize(q) if l2_normalize else q
