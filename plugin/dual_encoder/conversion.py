"""Converting a trained model directory to two Task Library embedders (TensorFlow process).

Writes ``text_embedder.tflite`` and ``image_embedder.tflite`` into ``out_dir``: builtin TFLite
ops only (the Task Library ships no Flex delegate), batch 1, static shapes, metadata from
:mod:`.tflite_metadata`. ``quantize=True`` applies dynamic-range quantisation (int8 weights,
float activations): ~4x smaller files, slightly different vectors (the parity test measures
how much). Also returns the Keras vectors of the model directory's held-out sample, so the
caller can check the converted files against them in a device process.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from scannlite.plugin.dual_encoder import modeldir
from scannlite.plugin.embedders.errors import EncoderError
from scannlite.store.atomic import write_atomically

_QUANT_NAMES = {"dynamic": "dynamic-int8", "float16": "float16", "none": "none"}
TEXT_FILE = "text_embedder.tflite"
IMAGE_FILE = "image_embedder.tflite"


def convert_function(fn, trackable, quantize: str | None) -> bytes:
    """A batch-1 ``tf.function`` as builtin-ops TFLite; ``quantize``: None, "dynamic", "float16" or
    "int8-weights" (weight-only int8, :mod:`.weight_quantization`)."""
    import tensorflow as tf

    # Keras 3 variables are not tracked by a Keras model the way tf.Module tracks them, and the
    # converter then exports the graph without their values (NaN outputs). A tf.Module holding
    # the underlying tf.Variables makes them part of the saved graph.
    holder = tf.Module()
    holder.variables_to_keep = [getattr(v, "value", v) for v in trackable.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "int8-weights":
        from scannlite.plugin.dual_encoder.weight_quantization import quantize_weights_int8

        return quantize_weights_int8(converter.convert())
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        # Per-channel hybrid FULLY_CONNECTED is op version 12, which tflite-support 0.4.4's
        # runtime rejects ("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'");
        # per-tensor weight scales give versions it runs.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter.convert()


def run_conversion(
    model_dir: str,
    out_dir: str,
    quantize: bool = False,
    image_quantization: str | None = None,
    image_only: bool = False,
    text_quantization: str | None = None,
) -> dict:
    """Convert and write the towers; ``image_quantization`` ("dynamic", "float16" or "none")
    overrides what ``quantize`` picks for the image tower, ``text_quantization`` ("int8-weights",
    "dynamic", "float16" or "none") what it picks for the text tower, and ``image_only`` leaves the
    text tower as it is (the caller's float16 fallback re-converts just the image tower)."""
    import tensorflow as tf

    from scannlite.plugin.dual_encoder import keras_inference, tflite_metadata

    marker = modeldir.read_marker(model_dir)
    started = time.perf_counter()
    enc = keras_inference.load(model_dir)
    s = enc.settings
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EncoderError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    licenses = marker.get("dataset_license") or None

    image_model = enc.image_model

    @tf.function(input_signature=[tf.TensorSpec([1, s.image_size, s.image_size, 3], tf.float32, name="image")])
    def image_fn(image):
        return {"embedding": image_model(image, training=False)}

    image_mode = image_quantization or ("dynamic" if quantize else "none")
    if image_mode not in ("dynamic", "float16", "none"):
        raise EncoderError(f"unknown image quantization {image_mode!r}: use dynamic, float16 or none")
    t0 = time.perf_counter()
    image_bytes = tflite_metadata.image_metadata(
        convert_function(image_fn, image_model, None if image_mode == "none" else image_mode),
        s.embedding_dim,
        s.image_size,
        licenses,
    )
    image_seconds = time.perf_counter() - t0

    sample = np.load(Path(model_dir) / modeldir.HELDOUT_SAMPLE)
    captions = [str(c) for c in sample["captions"]]
    images = list(sample["images"])
    if image_only:
        write_atomically(out / IMAGE_FILE, image_bytes)
        return {
            "image_embedder": str(out / IMAGE_FILE),
            "image_bytes": len(image_bytes),
            "image_quantization": _QUANT_NAMES[image_mode],
            "seconds": {"image": round(image_seconds, 2)},
            "sample_images": images,
            "keras_images": keras_inference.embed_images_with(enc, images),
        }

    text_model = enc.text_model
    default_text = ("float16" if s.text_tower == "minilm" else "dynamic") if quantize else "none"
    text_mode = text_quantization or default_text
    if text_mode not in ("int8-weights", "dynamic", "float16", "none"):
        raise EncoderError(f"unknown text quantization {text_mode!r}: use int8-weights, dynamic, float16 or none")
    text_q = None if text_mode == "none" else text_mode
    t0 = time.perf_counter()
    if s.text_tower == "words":

        @tf.function(input_signature=[tf.TensorSpec([1, s.words_seq_len], tf.int32, name="ids")])
        def text_fn(ids):
            return {"embedding": text_model(ids, training=False)}

        text_bytes = tflite_metadata.regex_text_metadata(
            convert_function(text_fn, text_model, text_q),
            s.embedding_dim,
            enc.vocab_path,
            licenses,
        )
    else:
        spec = [tf.TensorSpec([1, s.minilm_seq_len], tf.int32, name=n) for n in ("ids", "mask", "segment_ids")]

        @tf.function(input_signature=spec)
        def text_fn(ids, mask, segment_ids):
            return {"embedding": text_model({"ids": ids, "mask": mask, "segment_ids": segment_ids}, training=False)}

        text_bytes = tflite_metadata.bert_text_metadata(
            convert_function(text_fn, text_model, text_q), s.embedding_dim, enc.vocab_path
        )
    text_seconds = time.perf_counter() - t0

    write_atomically(out / TEXT_FILE, text_bytes)
    write_atomically(out / IMAGE_FILE, image_bytes)

    return {
        "text_embedder": str(out / TEXT_FILE),
        "image_embedder": str(out / IMAGE_FILE),
        "text_bytes": len(text_bytes),
        "image_bytes": len(image_bytes),
        "quantized": bool(quantize),
        "text_quantization": _QUANT_NAMES.get(text_mode, text_mode),
        "image_quantization": _QUANT_NAMES[image_mode],
        "text_tower": s.text_tower,
        "embedding_dim": s.embedding_dim,
        "seconds": {
            "text": round(text_seconds, 2),
            "image": round(image_seconds, 2),
            "total": round(time.perf_counter() - started, 2),
        },
        "sample_captions": captions,
        "sample_images": images,
        "keras_text": keras_inference.embed_texts_with(enc, captions),
        "keras_images": keras_inference.embed_images_with(enc, images),
    }
