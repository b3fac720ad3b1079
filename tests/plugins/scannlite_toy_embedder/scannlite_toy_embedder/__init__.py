"""Hashed character n-grams: a deterministic text embedding with no model.

Each text is lower-cased and padded with spaces; every character trigram adds +1 or -1 (from
its hash) to one of ``DIM`` buckets; the sum is L2-normalised (unless it is zero). Texts sharing words share
trigrams, so they land near each other. Pure numpy: it imports nothing from scannlite.
"""

from __future__ import annotations

import hashlib

import numpy as np

DIM = 64
N = 3


def ngram_vector(text: str, dim: int = DIM) -> np.ndarray | None:
    """float32 (dim,), or None for a text without a letter or digit (nothing to embed)."""
    if not any(ch.isalnum() for ch in text):
        return None
    padded = f"  {' '.join(text.lower().split())}  "
    out = np.zeros(dim, np.float64)
    for i in range(len(padded) - N + 1):
        digest = hashlib.blake2b(padded[i : i + N].encode("utf-8"), digest_size=8).digest()
        h = int.from_bytes(digest, "little")
        out[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = np.linalg.norm(out)
    return (out / norm if norm else out).astype(np.float32)
