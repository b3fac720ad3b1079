"""recall_at_k: ties rank against the truth, and a collapsed tower gets no recall at all."""

import numpy as np
import pytest

from scannlite.plugin.dual_encoder.recall import CollapsedEmbeddings, ranks, recall_at_k, recall_subset, spread
from scannlite.plugin.embedders.errors import EncoderError


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_constant_tower_is_refused_not_scored_one():
    rng = np.random.default_rng(0)
    text = _unit(rng.normal(size=(50, 8)))
    constant = np.tile(_unit(rng.normal(size=(1, 8))), (50, 1))
    with pytest.raises(CollapsedEmbeddings, match="image tower's embeddings have collapsed"):
        recall_at_k(text, constant)
    with pytest.raises(CollapsedEmbeddings, match="text tower"):
        recall_at_k(constant, text)
    # Measured without the check, every image ties with the truth: pessimistic ranks give 0, not 1.
    assert recall_at_k(text, constant, ks=(1, 10), check_collapse=False) == {1: 0.0, 10: 0.0}


def test_ties_rank_the_own_image_after_every_equal_score():
    text = np.eye(4, dtype=np.float32)
    images = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    # caption 0 ties its own image with image 1 (rank 1); caption 1 scores 0 with everything (rank 3).
    assert list(ranks(text, images)) == [1, 3, 0, 0]
    assert recall_at_k(text, images, ks=(1, 2, 4)) == {1: 0.5, 2: 0.75, 4: 1.0}


def test_distinct_scores_rank_as_before():
    rng = np.random.default_rng(1)
    images = _unit(rng.normal(size=(30, 16)))
    text = _unit(images + 0.01 * rng.normal(size=images.shape))
    assert recall_at_k(text, images, ks=(1,)) == {1: 1.0}
    shuffled = text[::-1]
    scores = shuffled @ images.T  # random scores: no ties, so > and >= rank alike
    expected = np.array([(scores[i] > scores[i, i]).sum() for i in range(30)])
    assert np.array_equal(ranks(shuffled, images), expected)


def test_spread_of_unit_vectors_is_one_minus_squared_mean_norm():
    rng = np.random.default_rng(2)
    v = _unit(rng.normal(size=(200, 32)))
    assert spread(v) == pytest.approx(1 - np.linalg.norm(v.mean(axis=0)) ** 2, rel=1e-9)
    assert spread(v[:1]) == 0.0


def test_subset_recall_ranks_against_all_images_and_refuses_empty_subsets():
    images = np.eye(6, dtype=np.float32)
    text = images.copy()
    text[4] = images[5]  # caption 4 finds image 5 first
    assert recall_subset(text, images, np.array([0, 4]), ks=(1,)) == {1: 0.5}
    with pytest.raises(EncoderError, match="empty"):
        recall_subset(text, images, np.zeros(6, dtype=bool))


def test_mismatched_shapes_are_one_clear_error():
    with pytest.raises(EncoderError, match="one caption vector per image"):
        recall_at_k(np.eye(3), np.eye(4)[:, :3][:4])
