"""Caption -> image recall@k, the number printed after each epoch and in quality reports.

For each held-out caption (the first caption of each held-out image), rank all held-out
images by dot product (embeddings are L2-normalised, so cosine); a hit is its own image in
the top k. Random ranking scores about k / n.
"""
from __future__ import annotations

import numpy as np


def recall_at_k(text_vectors: np.ndarray, image_vectors: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    scores = text_vectors @ image_vectors.T
    own = np.diag(scores)[:, None]
    rank = (scores > own).sum(axis=1)  # 0 = its own image is first (ties favour the truth)
    return {k: float((rank < k).mean()) for k in ks}
