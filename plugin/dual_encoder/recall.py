"""Caption -> image recall@k, the number printed after each epoch and in quality reports.

For each held-out caption (the first caption of each held-out image), rank all held-out
images by dot product (embeddings are L2-normalised, so cosine); a hit is its own image in
the top k. Random ranking scores about k / n.

Ties rank pessimistically: a caption's own image is placed after every other image that
scores the same or higher (rank = the number of other images scoring >= it). Counting ties
in the truth's favour let a tower whose output had collapsed to one vector score 1.0.

Collapsed towers are refused: if either side's vectors barely differ across inputs
(:func:`spread` below :data:`COLLAPSE_SPREAD`), :func:`recall_at_k` raises
:class:`CollapsedEmbeddings` instead of returning numbers nobody should quote.
"""

from __future__ import annotations

import numpy as np

from scannlite.plugin.embedders.errors import EncoderError

# Mean squared distance of the vectors to their mean (for unit vectors, 1 - |mean|^2).
# Trained towers here measure 0.5-0.9; a constant tower 0; 1e-4 means all vectors lie
# within about 0.6 degrees of each other on average, far from anything that retrieves.
COLLAPSE_SPREAD = 1e-4


class CollapsedEmbeddings(EncoderError):
    """The tower's embeddings (nearly) do not depend on its input."""


def spread(vectors: np.ndarray) -> float:
    v = np.asarray(vectors, dtype=np.float64)
    if len(v) < 2:
        return 0.0
    return float(((v - v.mean(axis=0)) ** 2).sum(axis=1).mean())


def collapsed_side(text_vectors: np.ndarray, image_vectors: np.ndarray) -> str | None:
    """ "text", "image", or None: which tower (if any) has collapsed on these inputs."""
    for name, v in (("image", image_vectors), ("text", text_vectors)):
        if spread(v) < COLLAPSE_SPREAD:
            return name
    return None


def ranks(text_vectors: np.ndarray, image_vectors: np.ndarray) -> np.ndarray:
    """0-based rank of each caption's own image, ties against it."""
    t, i = np.asarray(text_vectors), np.asarray(image_vectors)
    if t.ndim != 2 or i.ndim != 2 or t.shape != i.shape:
        raise EncoderError(f"recall needs one caption vector per image, same width: got {t.shape} and {i.shape}")
    scores = t @ i.T
    own = np.diag(scores)[:, None]
    return (scores >= own).sum(axis=1) - 1  # the own image is among the >=: not counted


def recall_at_k(
    text_vectors: np.ndarray, image_vectors: np.ndarray, ks=(1, 5, 10), check_collapse: bool = True
) -> dict[int, float]:
    if check_collapse:
        side = collapsed_side(text_vectors, image_vectors)
        if side is not None:
            raise CollapsedEmbeddings(
                f"the {side} tower's embeddings have collapsed (spread {spread(image_vectors if side == 'image' else text_vectors):.2e} "
                f"< {COLLAPSE_SPREAD:g} across {len(text_vectors)} inputs): its recall would be meaningless"
            )
    r = ranks(text_vectors, image_vectors)
    return {k: float((r < k).mean()) for k in ks}


def recall_subset(
    text_vectors: np.ndarray, image_vectors: np.ndarray, subset: np.ndarray, ks=(1, 5, 10)
) -> dict[int, float]:
    """Recall over the captions in ``subset`` (indices or mask), each still ranked against all images."""
    recall_at_k(text_vectors, image_vectors, ks=(1,))  # the collapse check, on the whole set
    r = ranks(text_vectors, image_vectors)[subset]
    if len(r) == 0:
        raise EncoderError("the subset to measure recall on is empty")
    return {k: float((r < k).mean()) for k in ks}
