"""Frozen-MiniLM caption vectors, computed once per caption list and cached (TensorFlow process).

Why: with MiniLM frozen, its output for a caption never changes; running MiniLM on 4,024
OpenMoji captions takes ~30 s on 2 cores, reading them back ~10 ms. The cache key covers the
caption list, the sequence length and the weights file's size, so any change recomputes.
"""

from __future__ import annotations

import hashlib

import numpy as np

from scannlite.plugin.dual_encoder.cache import cache_dir, save_npz_atomic
from scannlite.plugin.dual_encoder.minilm_files import model_dir


def _key(captions: list[str], seq_len: int) -> str:
    h = hashlib.sha1()
    h.update(f"minilm-v1|{seq_len}|{(model_dir() / 'model.safetensors').stat().st_size}|".encode())
    for caption in captions:
        h.update(caption.encode("utf-8") + b"\x00")
    return h.hexdigest()[:20]


def cached_sentence_vectors(captions: list[str], seq_len: int) -> tuple[np.ndarray, bool]:
    """(float32 (n, 384) vectors, whether they came from the cache)."""
    path = cache_dir() / f"minilm-captions-{_key(captions, seq_len)}.npz"
    if path.exists():
        try:
            with np.load(path) as cached:
                vectors = cached["vectors"]
            if vectors.shape == (len(captions), 384):
                return vectors, True
        except (OSError, ValueError, KeyError):
            pass
    from scannlite.plugin.dual_encoder.minilm import sentence_vectors

    vectors = sentence_vectors(captions, seq_len=seq_len).astype(np.float32)
    save_npz_atomic(path, vectors=vectors)
    return vectors, False
