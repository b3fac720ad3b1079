"""The benchmark data set: synthetic clustered unit vectors, written once per work directory.

Drawn with :func:`scannlite.store.catalog.synthetic.clustered` at its default cluster count and spread
(not tuned to any target), then :func:`~scannlite.store.catalog.synthetic.split` holds out the queries.
The rest is the catalog (the first ``n`` rows) and the additions for the incremental builds
(the rows after it), so the new vectors come from the same distribution and were never trained
on. The arrays go to ``.npy`` files because every measurement runs in a fresh process that
loads them by path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scannlite.store.catalog.synthetic import clustered, split

from .setup import Setup


@dataclass
class Data:
    folder: Path
    setup: Setup

    @property
    def base_path(self) -> Path:
        return self.folder / "base.npy"

    @property
    def extra_path(self) -> Path:
        return self.folder / "extra.npy"

    @property
    def queries_path(self) -> Path:
        return self.folder / "queries.npy"

    def base(self) -> np.ndarray:
        return np.load(self.base_path, mmap_mode="r")

    def extra(self) -> np.ndarray:
        return np.load(self.extra_path, mmap_mode="r")

    def queries(self) -> np.ndarray:
        return np.load(self.queries_path)

    def generator(self) -> str:
        s = self.setup
        return (
            f"clustered({s.total:,}, {s.dim}, seed={s.data_seed}) (defaults: clusters = {s.total // 60:,}, "
            f"spread 0.45, Zipf-like cluster sizes), split(x, {s.queries}, seed={s.split_seed}); "
            f"catalog = first {s.n:,} rows, additions = next {s.extra:,}"
        )

    def profile_text(self) -> str:
        p = neighbour_profile(self)
        ranks = ", ".join(f"{r}th {v:.3f}" if r != 1 else f"1st {v:.3f}" for r, v in p.items() if r)
        text = f"median cosine of a query to its k-th nearest catalog vector: {ranks}; to a typical vector {p[0]:.3f}"
        if p[10] - p[100] > 0.3:
            text += (
                ". The sharp drop from the 10th to the 100th neighbour means each query's top-10 lies in one "
                "tight, well-separated cluster (about 60 points): a partition that keeps clusters whole finds "
                "nearly all of it in the first few leaves, leaving quantization as the limit. Real embedding "
                "collections usually fall off more gradually, and recall at 4 leaves on them may well be "
                "lower than here"
            )
        return text


def neighbour_profile(data: Data, ranks=(1, 10, 100, 1000)) -> dict[int, float]:
    """Median over the held-out queries of the cosine to their r-th nearest catalog vector.

    Describes how hard the data is, independently of any index: a sharp drop between rank 10
    and rank 100 means each query's top-10 sits in one tight, well-separated cluster."""
    base = np.asarray(data.base(), dtype=np.float32)
    q = data.queries().astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ranks = tuple(r for r in ranks if r <= len(base))
    deepest = max(ranks)
    out: dict[int, list[float]] = {r: [] for r in ranks}
    for start in range(0, len(q), 100):
        sims = q[start : start + 100] @ base.T
        top = -np.sort(np.partition(-sims, deepest - 1, axis=1)[:, :deepest], axis=1)  # descending
        for r in ranks:
            out[r] += top[:, r - 1].tolist()
    profile = {r: float(np.median(v)) for r, v in out.items()}
    profile[0] = float(np.median(q[:100] @ base[:: max(1, len(base) // 20_000)].T))  # a typical pair
    return profile


def prepare(setup: Setup, workdir: Path) -> Data:
    """Write (or reuse) the arrays for ``setup`` under ``workdir``."""
    folder = Path(workdir) / f"data-{setup.name}"
    stamp = folder / "setup.json"
    wanted = json.dumps(setup.as_dict(), sort_keys=True)
    data = Data(folder, setup)
    if stamp.is_file() and stamp.read_text() == wanted:
        return data
    folder.mkdir(parents=True, exist_ok=True)
    x = clustered(setup.total, setup.dim, seed=setup.data_seed)
    rest, queries = split(x, setup.queries, seed=setup.split_seed)
    np.save(data.base_path, rest[: setup.n])
    np.save(data.extra_path, rest[setup.n : setup.n + setup.extra])
    np.save(data.queries_path, queries)
    stamp.write_text(wanted)
    return data
