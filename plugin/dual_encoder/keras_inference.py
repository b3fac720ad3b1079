"""Loading a trained model directory back into Keras, and embedding with it (TensorFlow process).

Why: conversion needs the towers with the Task Library's input signatures, and the parity
tests and the ``dual-encoder-*`` embedders need Keras outputs for the same inputs the phone
gets. Text is tokenized exactly as the Task Library does (:mod:`.wordpiece`, :mod:`.words`);
images are resized to the tower's size like the ImageEmbedder does, then scaled to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from scannlite.plugin.dual_encoder import modeldir, towers, words
from scannlite.plugin.dual_encoder.images import resize_square
from scannlite.plugin.dual_encoder.settings import TrainSettings
from scannlite.plugin.embedders.errors import EncoderError


@dataclass
class LoadedEncoder:
    settings: TrainSettings
    image_model: keras.Model  # float32 (B, S, S, 3) in [-1, 1] -> (B, D)
    text_model: keras.Model  # device-format inputs -> (B, D)
    vocab: dict[str, int] | None  # the word tower's vocabulary
    vocab_path: Path  # vocab.txt (MiniLM) or words_vocab.txt


def load(model_dir: str | Path) -> LoadedEncoder:
    model_dir = Path(model_dir)
    s = modeldir.settings_of(model_dir)
    image_model = towers.image_tower(s, load_backbone_weights=False)
    image_model.load_weights(str(model_dir / modeldir.IMAGE_WEIGHTS))
    if s.text_tower == "words":
        vocab_path = model_dir / modeldir.WORDS_VOCAB
        vocab = words.read_vocab(vocab_path)
        text_model = towers.text_head(s, len(vocab))
        text_model.load_weights(str(model_dir / modeldir.TEXT_HEAD_WEIGHTS))
        return LoadedEncoder(s, image_model, text_model, vocab, vocab_path)
    from scannlite.plugin.dual_encoder.minilm import MiniLM, load_pretrained
    from scannlite.plugin.dual_encoder.wordpiece import minilm_vocab_path

    head = towers.text_head(s)
    head.load_weights(str(model_dir / modeldir.TEXT_HEAD_WEIGHTS))
    bert = load_pretrained(MiniLM(name="minilm"), s.minilm_seq_len)
    if s.finetune_minilm:
        bert.load_weights(str(model_dir / modeldir.MINILM_WEIGHTS))
    inputs = {
        name: keras.Input((s.minilm_seq_len,), dtype="int32", name=name) for name in ("ids", "mask", "segment_ids")
    }
    text_model = keras.Model(inputs, head(bert(inputs)), name="text_tower")
    return LoadedEncoder(s, image_model, text_model, None, minilm_vocab_path())


def text_features(enc: LoadedEncoder, texts: list[str]):
    """The device-format inputs for ``texts``: what the Task Library would put in the tensors."""
    s = enc.settings
    if s.text_tower == "words":
        if enc.vocab is None:
            raise EncoderError("the words text tower was saved without its vocabulary")
        return words.encode(texts, enc.vocab, s.words_seq_len)
    from scannlite.plugin.dual_encoder.wordpiece import encode

    return encode(texts, s.minilm_seq_len)


def embed_texts_with(enc: LoadedEncoder, texts: list[str], batch: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(texts), batch):
        feats = text_features(enc, texts[start : start + batch])
        out.append(np.asarray(enc.text_model(feats, training=False), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, enc.settings.embedding_dim), np.float32)


def embed_images_with(
    enc: LoadedEncoder, images: list[np.ndarray] | np.ndarray, batch: int | None = None
) -> np.ndarray:
    size = enc.settings.image_size
    # 256 images of 64 px; fewer of bigger ones: a pretrained backbone at 224 px holds
    # gigabytes of activations per 256 images (a worker was killed for memory at 21 GB).
    batch = batch or max(8, int(256 * (64 / size) ** 2))
    arr = (
        np.stack([resize_square(np.asarray(im, dtype=np.uint8), size) for im in images])
        if len(images)
        else np.zeros((0, size, size, 3), np.uint8)
    )
    out = [
        np.asarray(
            enc.image_model(arr[i : i + batch].astype(np.float32) / 127.5 - 1.0, training=False), dtype=np.float32
        )
        for i in range(0, len(arr), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, enc.settings.embedding_dim), np.float32)


def embed_texts(model_dir: str, texts: list[str]) -> np.ndarray:
    """Worker entry: Keras text-tower vectors, float32 (n, D)."""
    return embed_texts_with(load(model_dir), list(texts))


def embed_images(model_dir: str, images: list[np.ndarray]) -> np.ndarray:
    """Worker entry: Keras image-tower vectors, float32 (n, D), from RGB uint8 arrays."""
    return embed_images_with(load(model_dir), images)


def embed_both(model_dir: str, texts: list[str], images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Worker entry: both towers in one process start (TensorFlow imports take seconds)."""
    enc = load(model_dir)
    return embed_texts_with(enc, list(texts)), embed_images_with(enc, images)
