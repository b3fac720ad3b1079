"""TensorFlow-side checks used by the tests, called as ``tests.support.selfcheck:<function>``.

Test functions that need TensorFlow must run in a ``tensorflow`` worker process (the test
process itself must stay free of TensorFlow, since other tests start device work from it); a
worker imports functions by module path, and tests/conftest.py puts the repository root on
the workers' PYTHONPATH.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def minilm_reference_cosines(fixture: str, seq_len: int = 64) -> np.ndarray:
    """Cosine between our Keras MiniLM and the stored sentence-transformers vectors, per sentence."""
    from scannlite.plugin.dual_encoder.minilm import sentence_vectors

    ref = np.load(fixture)
    ours = sentence_vectors([str(s) for s in ref["sentences"]], seq_len=seq_len)
    return np.sum(ours * ref["embeddings"], axis=1)


def build_words_probe(out_path: str, vocab_tokens: list[str], seq_len: int) -> str:
    """A word-tower-shaped ``.tflite`` whose output counts the token ids it was given.

    Embedding = identity (one row per vocab id), summed over non-<PAD> positions: the Task
    Library's output vector is the bag of ids its RegexTokenizer produced, so a test can
    compare it exactly with :func:`scannlite.plugin.dual_encoder.words.encode`.
    """
    import keras
    import tensorflow as tf
    from keras import layers, ops

    from scannlite.plugin.dual_encoder import words
    from scannlite.plugin.dual_encoder.conversion import convert_function
    from scannlite.plugin.dual_encoder.tflite_metadata import regex_text_metadata

    size = len(vocab_tokens)
    vocab_path = Path(out_path).with_name("probe_vocab.txt")
    words.write_vocab(vocab_tokens, vocab_path)
    ids = keras.Input((seq_len,), dtype="int32", name="ids")
    emb = layers.Embedding(size, size, name="one_hot", trainable=False)
    x = emb(ids)
    mask = ops.cast(ops.not_equal(ids, 0), "float32")
    model = keras.Model(ids, ops.sum(x * ops.expand_dims(mask, -1), axis=1))
    emb.set_weights([np.eye(size, dtype=np.float32)])

    @tf.function(input_signature=[tf.TensorSpec([1, seq_len], tf.int32, name="ids")])
    def fn(ids):
        return {"embedding": model(ids, training=False)}

    Path(out_path).write_bytes(regex_text_metadata(convert_function(fn, model, None), size, vocab_path))
    return out_path


def save_backbone_weights(backbone: str, path: str, size: int = 32) -> str:
    """Save randomly initialised keras.applications weights, standing in for a user's local file."""
    import keras

    from scannlite.plugin.dual_encoder.settings import TrainSettings
    from scannlite.plugin.dual_encoder.towers import _application

    s = TrainSettings(image_backbone=backbone, image_size=size)
    inputs = keras.Input((size, size, 3))
    model = keras.Model(inputs, _application(inputs, s, None))
    model.layers[-1].save_weights(path)
    return path


def finetuned_minilm_cosines(model_dir: str, texts: list[str]) -> np.ndarray:
    """Cosine between a model directory's MiniLM sentence vectors and the pretrained ones, per text."""
    from scannlite.plugin.dual_encoder import keras_inference
    from scannlite.plugin.dual_encoder.minilm import sentence_vectors

    enc = keras_inference.load(model_dir)
    bert = next(layer for layer in enc.text_model.layers if layer.name == "minilm")
    seq_len = enc.settings.minilm_seq_len
    return np.sum(sentence_vectors(texts, seq_len, model=bert) * sentence_vectors(texts, seq_len), axis=1)


def efficientnet_lite0_top5(image_path: str) -> list[tuple[int, float]]:
    """ImageNet top-5 (class index, probability) of our Keras EfficientNet-Lite0 for one photo.

    The photo is resized to 224 px and scaled to [-1, 1], as the image tower feeds its backbone.
    """
    from PIL import Image

    from scannlite.plugin.dual_encoder import efficientnet_lite

    model = efficientnet_lite.pretrained(224, include_top=True)
    with Image.open(image_path) as im:
        rgb = np.asarray(im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), dtype=np.float32)
    logits = np.asarray(model(rgb[None] / 127.5 - 1.0, training=False), dtype=np.float64)[0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return [(int(i), float(p[i])) for i in np.argsort(-p)[:5]]
