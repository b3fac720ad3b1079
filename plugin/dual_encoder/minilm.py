"""all-MiniLM-L6-v2 as a Keras 3 model, weights read with ``safetensors.numpy`` (TensorFlow process only).

Why our own implementation: the sentence-transformers model is PyTorch; the phone needs a
TFLite graph with the Task Library's BERT inputs (``ids``, ``mask``, ``segment_ids``, int32
[1, seq_len]). This is a plain post-LayerNorm BERT encoder (6 layers, hidden 384, 12 heads,
exact-erf GELU, LayerNorm eps 1e-12) followed by the sentence-transformers pipeline: mean
pooling over real tokens, then L2 normalisation. tests/test_encoder_minilm.py checks it
against reference vectors from the real library (cosine >= 0.999).

Knob ``seq_len`` (default 32 in training settings): longer sequences cost attention time
quadratically; captions and queries are short, and the Task Library truncates the same way.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from scannlite.plugin.dual_encoder.minilm_files import config, model_dir

HIDDEN = 384


class TokenEmbeddings(layers.Layer):
    """Word + position + token-type embeddings, then LayerNorm (BERT's input block)."""

    def __init__(self, vocab_size: int, hidden: int, max_positions: int, type_vocab: int, eps: float, **kw):
        super().__init__(**kw)
        self.word = layers.Embedding(vocab_size, hidden, name="word")
        self.position = layers.Embedding(max_positions, hidden, name="position")
        self.token_type = layers.Embedding(type_vocab, hidden, name="token_type")
        self.norm = layers.LayerNormalization(epsilon=eps, name="norm")

    def call(self, ids, segment_ids):
        seq_len = ops.shape(ids)[1]
        positions = ops.expand_dims(ops.arange(seq_len, dtype="int32"), 0)
        x = self.word(ids) + self.position(positions) + self.token_type(segment_ids)
        return self.norm(x)


class EncoderBlock(layers.Layer):
    """One BERT layer: self-attention + residual + LayerNorm, GELU MLP + residual + LayerNorm."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float, **kw):
        super().__init__(**kw)
        self.heads, self.head_dim = heads, hidden // heads
        self.query = layers.Dense(hidden, name="query")
        self.key = layers.Dense(hidden, name="key")
        self.value = layers.Dense(hidden, name="value")
        self.attention_out = layers.Dense(hidden, name="attention_out")
        self.attention_norm = layers.LayerNormalization(epsilon=eps, name="attention_norm")
        self.intermediate = layers.Dense(intermediate, name="intermediate")
        self.output_dense = layers.Dense(hidden, name="output_dense")
        self.output_norm = layers.LayerNormalization(epsilon=eps, name="output_norm")

    def _split_heads(self, x):
        batch, seq_len = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, seq_len, self.heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x, attention_bias):
        q, k, v = (self._split_heads(f(x)) for f in (self.query, self.key, self.value))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.head_dim))
        weights = ops.softmax(scores + attention_bias, axis=-1)
        context = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        batch, seq_len = ops.shape(context)[0], ops.shape(context)[1]
        context = ops.reshape(context, (batch, seq_len, self.heads * self.head_dim))
        x = self.attention_norm(x + self.attention_out(context))
        hidden = keras.activations.gelu(self.intermediate(x), approximate=False)
        return self.output_norm(x + self.output_dense(hidden))


class MiniLM(keras.Model):
    """Inputs ``{"ids", "mask", "segment_ids"}`` int32 (B, L) -> L2-normalised (B, 384) sentence vectors."""

    def __init__(self, cfg: dict | None = None, **kw):
        super().__init__(**kw)
        cfg = cfg or config()
        eps = cfg["layer_norm_eps"]
        self.embed = TokenEmbeddings(
            cfg["vocab_size"],
            cfg["hidden_size"],
            cfg["max_position_embeddings"],
            cfg["type_vocab_size"],
            eps,
            name="embeddings",
        )
        self.blocks = [
            EncoderBlock(
                cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"], eps, name=f"layer_{i}"
            )
            for i in range(cfg["num_hidden_layers"])
        ]

    def call(self, inputs):
        ids, mask, segment_ids = inputs["ids"], inputs["mask"], inputs["segment_ids"]
        maskf = ops.cast(mask, "float32")
        bias = ops.reshape((1.0 - maskf) * -10000.0, (ops.shape(mask)[0], 1, 1, ops.shape(mask)[1]))
        x = self.embed(ids, segment_ids)
        for block in self.blocks:
            x = block(x, bias)
        summed = ops.sum(x * ops.expand_dims(maskf, -1), axis=1)
        count = ops.maximum(ops.sum(maskf, axis=1, keepdims=True), 1e-9)
        pooled = summed / count
        return pooled / ops.maximum(ops.norm(pooled, axis=-1, keepdims=True), 1e-12)


def _assign(layer, kernel_or_weights: list[np.ndarray]) -> None:
    layer.set_weights([np.asarray(w, dtype=np.float32) for w in kernel_or_weights])


def load_pretrained(model: MiniLM, seq_len: int = 32) -> MiniLM:
    """Build ``model`` and copy all-MiniLM-L6-v2's weights into it (PyTorch Linear is out x in)."""
    from safetensors.numpy import load_file

    w = load_file(str(model_dir() / "model.safetensors"))
    dummy = np.zeros((1, seq_len), dtype=np.int32)
    model({"ids": dummy, "mask": np.ones_like(dummy), "segment_ids": dummy})
    e = "embeddings."
    _assign(model.embed.word, [w[e + "word_embeddings.weight"]])
    _assign(model.embed.position, [w[e + "position_embeddings.weight"]])
    _assign(model.embed.token_type, [w[e + "token_type_embeddings.weight"]])
    _assign(model.embed.norm, [w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"]])

    def dense(layer, prefix):
        _assign(layer, [w[prefix + ".weight"].T, w[prefix + ".bias"]])

    def norm(layer, prefix):
        _assign(layer, [w[prefix + ".weight"], w[prefix + ".bias"]])

    for i, block in enumerate(model.blocks):
        p = f"encoder.layer.{i}."
        dense(block.query, p + "attention.self.query")
        dense(block.key, p + "attention.self.key")
        dense(block.value, p + "attention.self.value")
        dense(block.attention_out, p + "attention.output.dense")
        norm(block.attention_norm, p + "attention.output.LayerNorm")
        dense(block.intermediate, p + "intermediate.dense")
        dense(block.output_dense, p + "output.dense")
        norm(block.output_norm, p + "output.LayerNorm")
    return model


def pretrained(seq_len: int = 32) -> MiniLM:
    return load_pretrained(MiniLM(name="minilm"), seq_len)


def sentence_vectors(texts: list[str], seq_len: int = 32, batch: int = 256, model: MiniLM | None = None) -> np.ndarray:
    """float32 (n, 384) L2-normalised MiniLM sentence embeddings, tokenized as the Task Library does."""
    from scannlite.plugin.dual_encoder.wordpiece import encode

    model = model or pretrained(seq_len)
    out = []
    for start in range(0, len(texts), batch):
        feats = encode(texts[start : start + batch], seq_len)
        out.append(np.asarray(model(feats, training=False)))
    return np.concatenate(out) if out else np.zeros((0, HIDDEN), np.float32)
