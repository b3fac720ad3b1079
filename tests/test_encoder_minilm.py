"""The Keras MiniLM equals sentence-transformers' all-MiniLM-L6-v2 (stored reference vectors).

The reference (tests/fixtures/minilm_reference.npz) was computed once with the real library
in a throwaway environment (tests/fixtures/minilm_reference.py says how). This test runs our
implementation in a TensorFlow worker, with weights read by safetensors' numpy loader.
"""

from pathlib import Path

import pytest

from scannlite.store.workers.boundary import run_in

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"


def test_keras_minilm_matches_sentence_transformers_within_cosine_0_999():
    cosines = run_in("tensorflow", "tests.support.selfcheck:minilm_reference_cosines", str(FIXTURE))
    assert len(cosines) == 20
    assert cosines.min() >= 0.999, cosines
