"""Synthetic clustered unit vectors: the built-in data for demos, tests and benchmarks.

Real embedding collections are clumpy: many tight topical clusters of uneven size. Points are
drawn around random unit centres with a per-cluster spread and cluster sizes from a Zipf-like
law, then L2-normalised. Held-out queries come from the same process (they are not in the
catalog), as real queries are.
"""

from __future__ import annotations

import numpy as np


def clustered(n: int, dim: int, *, clusters: int | None = None, spread: float = 0.45, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit vectors drawn around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    clusters = clusters or max(1, n // 60)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.5
    weights /= weights.sum()
    labels = rng.choice(clusters, size=n, p=weights)
    widths = spread * rng.uniform(0.6, 1.4, size=clusters)
    noise = rng.standard_normal((n, dim)) / np.sqrt(dim)
    x = centres[labels] + widths[labels, None] * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def split(x: np.ndarray, queries: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``queries`` rows: (data, held-out queries)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    return x[order[queries:]], x[order[:queries]]


def recall_at_k(found: list[list[str]], truth: list[list[str]], k: int = 10) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth))
    return hits / float(sum(min(k, len(t)) for t in truth) or 1)


def write_example(out_dir: str, n: int = 20_000, dim: int = 64, seed: int = 0) -> None:
    """vectors.parquet (id, embedding, metadata), more.parquet (+5%) and query.npy: tour data."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from scannlite.store.catalog.segments import embedding_array

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = clustered(n + n // 20 + 5, dim, seed=seed)
    parts = {"vectors.parquet": (0, n), "more.parquet": (n, n + n // 20)}
    for name, (a, b) in parts.items():
        ids = [f"doc-{i}" for i in range(a, b)]
        pq.write_table(
            pa.table(
                {
                    "id": ids,
                    "embedding": embedding_array(x[a:b]),
                    "metadata": [f"synthetic document {i}" for i in range(a, b)],
                }
            ),
            out / name,
        )
    np.save(out / "query.npy", x[-5:])


if __name__ == "__main__":
    import sys

    write_example(sys.argv[1] if len(sys.argv) > 1 else ".")
