"""The two towers of the dual encoder as Keras models (TensorFlow process only).

Both end in a linear projection to ``embedding_dim`` followed by L2 normalisation, so a dot
product is a cosine and the Task Library's searcher can compare them directly.

* Image tower: float32 (B, S, S, 3) in [-1, 1] (pixel/127.5 - 1: exactly the Task Library's
  NormalizationOptions mean = std = 127.5) -> backbone -> global average -> projection.
  The small CNN is four stride-2 3x3 conv stages (BatchNorm + ReLU), an extra conv at 1/8
  resolution, width ``cnn_width`` doubling to 4x. EfficientNet-Lite0 (:mod:`.efficientnet_lite`)
  is frozen, its projection a separate model (:func:`image_head`) so training can feed it
  cached features. keras.applications backbones are built
  with ``weights=<local file>``, never "imagenet".
* Text tower, MiniLM: ``{"ids","mask","segment_ids"}`` -> MiniLM (384-d, L2-normalised) ->
  projection. While MiniLM is frozen the training loop feeds the cached 384-d vectors
  straight into the projection (:func:`text_head`), which is why the head is its own model.
* Text tower, words: int32 (B, L) ids -> embedding -> mean over non-<PAD> positions ->
  Dense(256, ReLU) -> projection. <PAD> is id 0 (see :mod:`.words`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from scannlite.plugin.dual_encoder.settings import TrainSettings
from scannlite.plugin.embedders.errors import EncoderError


class L2Normalize(layers.Layer):
    def call(self, x):
        return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)


def _small_cnn(x, width: int):
    for i, channels in enumerate((width, width * 2, width * 4, width * 4)):
        x = layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i == 2:
            x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name="conv2b")(x)
            x = layers.BatchNormalization(name="bn2b")(x)
            x = layers.ReLU(name="relu2b")(x)
    return layers.GlobalAveragePooling2D(name="pool")(x)


def _application(x, s: TrainSettings, weights: str | None):
    from pathlib import Path

    if weights is not None and not Path(weights).is_file():
        raise EncoderError(f"backbone weights file not found: {weights}")
    shape = (s.image_size, s.image_size, 3)
    apps = keras.applications
    if s.image_backbone == "mobilenet_v2":
        net = apps.MobileNetV2(input_shape=shape, include_top=False, weights=weights, pooling="avg")
        return net(x)  # expects [-1, 1] already
    if s.image_backbone == "mobilenet_v3_small":
        net = apps.MobileNetV3Small(
            input_shape=shape, include_top=False, weights=weights, pooling="avg", include_preprocessing=False
        )
        return net(x)  # [-1, 1] when its own preprocessing is off
    if s.image_backbone == "efficientnet_b0":
        net = apps.EfficientNetB0(input_shape=shape, include_top=False, weights=weights, pooling="avg")
        return net(layers.Rescaling(127.5, offset=127.5, name="to_0_255")(x))  # it rescales 0-255 itself
    raise EncoderError(f"unknown image backbone {s.image_backbone!r}")


def image_head(s: TrainSettings, features: int) -> keras.Model:
    """Pooled backbone features -> projection -> L2: the trainable part over a frozen backbone."""
    inputs = keras.Input((features,), dtype="float32", name="features")
    x = layers.Dense(s.embedding_dim, name="image_projection")(inputs)
    return keras.Model(inputs, L2Normalize(name="image_l2")(x), name="image_head")


def image_tower(s: TrainSettings, load_backbone_weights: bool = True) -> keras.Model:
    inputs = keras.Input((s.image_size, s.image_size, 3), dtype="float32", name="image")
    if s.image_backbone == "efficientnet_lite0":
        from scannlite.plugin.dual_encoder import efficientnet_lite

        backbone = efficientnet_lite.build(s.image_size)
        if load_backbone_weights:
            efficientnet_lite.load_weights(backbone)
        # Frozen: training never runs it (it learns on cached features through image_head),
        # and BatchNorm stays in inference mode whatever ``training`` says.
        backbone.trainable = False
        head = image_head(s, efficientnet_lite.FEATURES)
        return keras.Model(inputs, head(backbone(inputs, training=False)), name="image_tower")
    if s.image_backbone == "small_cnn":
        features = _small_cnn(inputs, s.cnn_width)
    else:
        try:
            features = _application(inputs, s, s.image_backbone_weights if load_backbone_weights else None)
        except EncoderError:
            raise
        except ValueError as exc:
            detail = str(exc).strip().splitlines()[0].split(". Example")[0].rstrip(":. ") if str(exc).strip() else ""
            raise EncoderError(
                f"cannot load {s.image_backbone} weights from {s.image_backbone_weights} "
                f"(not weights of this architecture? {detail})"
            ) from None
    x = layers.Dense(s.embedding_dim, name="image_projection")(features)
    return keras.Model(inputs, L2Normalize(name="image_l2")(x), name="image_tower")


def text_head(s: TrainSettings, vocab_size: int | None = None) -> keras.Model:
    """MiniLM: 384-d sentence vector -> projection. Words: the whole word tower."""
    if s.text_tower == "minilm":
        inputs = keras.Input((384,), dtype="float32", name="sentence")
        x = inputs
        if s.text_head_hidden:
            x = layers.Dense(s.text_head_hidden, activation="gelu", name="text_hidden")(x)
        x = layers.Dense(s.embedding_dim, name="text_projection")(x)
        return keras.Model(inputs, L2Normalize(name="text_l2")(x), name="text_head")
    if vocab_size is None:
        raise ValueError("the word tower needs its vocabulary size")
    ids = keras.Input((s.words_seq_len,), dtype="int32", name="ids")
    x = layers.Embedding(vocab_size, s.words_dim, name="word_vectors")(ids)
    mask = ops.cast(ops.not_equal(ids, 0), "float32")
    x = ops.sum(x * ops.expand_dims(mask, -1), axis=1) / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
    x = layers.Dense(256, activation="relu", name="words_hidden")(x)
    x = layers.Dense(s.embedding_dim, name="text_projection")(x)
    return keras.Model(ids, L2Normalize(name="text_l2")(x), name="text_head")
