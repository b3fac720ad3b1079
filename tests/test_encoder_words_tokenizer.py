"""The word tower's training tokenizer is exactly the Task Library's RegexTokenizer.

A probe text embedder whose output is the bag of token ids it received (identity embedding,
summed over non-<PAD> positions), converted with the same RegexTokenizer metadata as the word
tower, is run by the Task Library's TextEmbedder on mixed-case, punctuated, non-ASCII and
over-long input; its output must equal the counts of :func:`words.encode`'s ids exactly.
"""

import numpy as np
import pytest

from scannlite.plugin.dual_encoder import words
from scannlite.plugin.embedders.registry import embed_texts
from scannlite.store.workers.boundary import run_in

pytestmark = [pytest.mark.tensorflow, pytest.mark.device, pytest.mark.slow]

INPUTS = [
    "Red apple",
    "red APPLE!",
    "RED, red; Red... rEd",
    "it's a dog's life",
    "'quoted' words",
    "café naïve über",
    "snake_case and 42 numbers",
    "tabs\tand\nnew lines",
    "",
    "!!!",
    "a b c d e f g h i j k l m n o p q r s t",
]
SEQ_LEN = 12


@pytest.mark.task_library
def test_training_tokenizer_equals_task_library_regex_tokenizer(tmp_path):
    tokens = words.build_vocab(
        ["Red apple red APPLE RED rEd it's dog's 'quoted' caf na ve ber snake_case 42 a c e g i k m o q s"]
    )
    vocab = {t: i for i, t in enumerate(tokens)}
    assert {"Red", "red", "RED", "rEd", "APPLE", "apple", "it's", "'quoted'"} <= set(vocab)
    probe = run_in(
        "tensorflow", "tests.support.selfcheck:build_words_probe", str(tmp_path / "probe.tflite"), tokens, SEQ_LEN
    )
    device = embed_texts(probe, INPUTS)
    ids = words.encode(INPUTS, vocab, SEQ_LEN)
    expected = np.stack([np.bincount(row[row != 0], minlength=len(tokens)) for row in ids]).astype(np.float32)
    for text, got, want in zip(INPUTS, device, expected):
        assert np.array_equal(got, want), (
            text,
            {tokens[i]: int(n) for i, n in enumerate(got) if n},
            {tokens[i]: int(n) for i, n in enumerate(want) if n},
        )
    # The check is sharp: case matters, and the bag differs between "Red apple" and "red APPLE!".
    assert not np.array_equal(device[0], device[1])
