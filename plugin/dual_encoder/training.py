"""Training the dual encoder (TensorFlow process only; reached through :func:`.jobs.train`).

Flow: load the pairs (:mod:`.datasets`) -> prepare text inputs (cached frozen-MiniLM
vectors, MiniLM token ids when fine-tuning, or word ids with a vocabulary built from the
training captions only) -> epochs of shuffled batches with the CLIP loss (:mod:`.clip_loss`),
one random caption per image per epoch -> after each epoch, held-out caption->image
recall@1/5/10 -> write the model directory (:mod:`.modeldir`) under a temporary name and
rename it into place.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from scannlite.plugin.dual_encoder import modeldir, words
from scannlite.plugin.dual_encoder.datasets import PairSet, load_dataset
from scannlite.plugin.dual_encoder.progress_log import ProgressWriter
from scannlite.plugin.dual_encoder.recall import collapsed_side, recall_at_k
from scannlite.plugin.dual_encoder.settings import PACKAGED_BACKBONES, TrainSettings
from scannlite.plugin.embedders.errors import EncoderError

HELDOUT_SAMPLE_SIZE = 16


def _text_inputs(data: PairSet, train_idx: np.ndarray, s: TrainSettings, progress: ProgressWriter):
    """(flat captions, text input array(s) per flat caption, vocab tokens or None, info)."""
    flat = [c for caps in data.captions for c in caps]
    info: dict = {}
    if s.text_tower == "words":
        vocab_tokens = words.build_vocab([c for i in train_idx for c in data.captions[i]], s.words_vocab_size)
        vocab = {t: i for i, t in enumerate(vocab_tokens)}
        return flat, words.encode(flat, vocab, s.words_seq_len), vocab_tokens, info
    if s.finetune_minilm:
        from scannlite.plugin.dual_encoder.wordpiece import encode

        feats = encode(flat, s.minilm_seq_len)
        return flat, np.stack([feats["ids"], feats["mask"], feats["segment_ids"]], axis=1), None, info
    from scannlite.plugin.dual_encoder.caption_vectors import cached_sentence_vectors

    progress.emit("stage", name=f"MiniLM vectors for {len(flat)} captions")
    t0 = time.perf_counter()
    vectors, cached = cached_sentence_vectors(flat, s.minilm_seq_len)
    info["caption_vectors_seconds"] = round(time.perf_counter() - t0, 2)
    info["caption_vectors_cached"] = cached
    return flat, vectors, None, info


def run_training(dataset: str, out_dir: str, settings: dict, progress_path: str | None = None) -> dict:
    """Train, write ``out_dir``, return a summary (history, timings, recall)."""
    s = TrainSettings.from_dict(settings).validate()
    out = modeldir.check_output_dir(out_dir)
    progress = ProgressWriter(progress_path)
    started = time.perf_counter()

    progress.emit("stage", name=f"loading {dataset}")
    t0 = time.perf_counter()
    data = load_dataset(dataset, s.image_size)
    load_seconds = time.perf_counter() - t0
    train_idx, held_idx = data.split()
    if len(train_idx) < 2:
        raise EncoderError(f"{dataset} has {len(train_idx)} training image(s); at least 2 are needed")
    if len(held_idx) == 0:
        raise EncoderError(f"{dataset} has no held-out images to measure recall on")

    flat, text_inputs, vocab_tokens, text_info = _text_inputs(data, train_idx, s, progress)
    frozen_image = s.image_backbone in PACKAGED_BACKBONES
    if frozen_image:
        from scannlite.plugin.dual_encoder.image_features import cached_backbone_features

        progress.emit("stage", name=f"{s.image_backbone} features for {len(data)} images")
        t0 = time.perf_counter()
        image_inputs, cached = cached_backbone_features(s.image_backbone, data.images, progress)
        text_info["image_features_seconds"] = round(time.perf_counter() - t0, 2)
        text_info["image_features_cached"] = cached
    else:
        image_inputs = data.images
    offsets = np.cumsum([0] + [len(c) for c in data.captions])

    import keras
    import tensorflow as tf

    from scannlite.plugin.dual_encoder import towers
    from scannlite.plugin.dual_encoder.clip_loss import clip_loss, initial_log_scale

    keras.utils.set_random_seed(s.seed)
    image_model = towers.image_tower(s)
    # A frozen backbone's features are precomputed: only its head runs in the loop.
    image_trained = image_model.get_layer("image_head") if frozen_image else image_model
    text_model = towers.text_head(s, len(vocab_tokens) if vocab_tokens else None)
    minilm_model = None
    if s.text_tower == "minilm" and s.finetune_minilm:
        from scannlite.plugin.dual_encoder.minilm import pretrained

        minilm_model = pretrained(s.minilm_seq_len)
    log_scale = tf.Variable(initial_log_scale(s.initial_temperature), dtype=tf.float32, name="log_scale")
    optimizer = keras.optimizers.Adam(s.learning_rate)
    head_vars = image_trained.trainable_variables + text_model.trainable_variables + [log_scale]
    optimizer.build(head_vars)
    backbone_optimizer = None
    if minilm_model is not None:
        backbone_optimizer = keras.optimizers.Adam(s.finetune_learning_rate)
        backbone_optimizer.build(minilm_model.trainable_variables)
    shift = s.augment_shift / s.image_size
    augment = (
        keras.layers.RandomTranslation(
            shift, shift, fill_mode="constant", fill_value=1.0, interpolation="nearest", seed=s.seed
        )
        if s.augment_shift
        else None
    )

    def encode_text(batch, training):
        if minilm_model is not None:
            sentence = minilm_model(
                {"ids": batch[:, 0], "mask": batch[:, 1], "segment_ids": batch[:, 2]}, training=training
            )
            return text_model(sentence, training=training)
        return text_model(batch, training=training)

    @tf.function(reduce_retracing=True)
    def image_input(batch):
        return tf.cast(batch, tf.float32) if frozen_image else tf.cast(batch, tf.float32) / 127.5 - 1.0

    def train_step(image_batch, text_batch):
        x = image_input(image_batch)
        if augment is not None and not frozen_image:
            x = augment(x, training=True)
        with tf.GradientTape() as tape:
            loss = clip_loss(image_trained(x, training=True), encode_text(text_batch, True), log_scale)
        variables = head_vars + (minilm_model.trainable_variables if minilm_model is not None else [])
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads[: len(head_vars)], head_vars))
        if backbone_optimizer is not None:
            backbone_optimizer.apply_gradients(zip(grads[len(head_vars) :], minilm_model.trainable_variables))
        return loss

    held_captions = offsets[held_idx]  # first caption of each held-out image

    def evaluate() -> tuple[dict[int, float], str | None]:
        iv = np.concatenate(
            [
                np.asarray(image_trained(image_input(image_inputs[held_idx[i : i + 256]]), training=False))
                for i in range(0, len(held_idx), 256)
            ]
        )
        tv = np.concatenate(
            [
                np.asarray(encode_text(tf.constant(text_inputs[held_captions[i : i + 256]]), False))
                for i in range(0, len(held_captions), 256)
            ]
        )
        # A collapsed tower is flagged on its epoch rather than ending the run: early epochs
        # can pass through it, and the history should show it.
        return recall_at_k(tv, iv, check_collapse=False), collapsed_side(tv, iv)

    rng = np.random.default_rng(s.seed)
    steps = max(1, len(train_idx) // s.batch_size) if len(train_idx) >= s.batch_size else 1
    progress.emit(
        "start",
        epochs=s.epochs,
        steps_per_epoch=steps,
        train_images=int(len(train_idx)),
        held_out_images=int(len(held_idx)),
        skipped=len(data.skipped),
    )
    history = []
    train_started = time.perf_counter()
    for epoch in range(1, s.epochs + 1):
        t_epoch = time.perf_counter()
        order = rng.permutation(train_idx)
        losses = []
        for step in range(steps):
            batch = order[step * s.batch_size : (step + 1) * s.batch_size]
            if len(batch) < 2:
                continue
            choice = offsets[batch] + rng.integers(0, offsets[batch + 1] - offsets[batch])
            loss = float(train_step(tf.constant(image_inputs[batch]), tf.constant(text_inputs[choice])))
            losses.append(loss)
            progress.emit("step", epoch=epoch, step=step + 1, loss=loss)
        recall, collapsed = evaluate()
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": round(float(np.mean(losses)), 4),
            "recall@1": round(recall[1], 4),
            "recall@5": round(recall[5], 4),
            "recall@10": round(recall[10], 4),
            "temperature": round(1.0 / min(float(np.exp(log_scale.numpy())), 100.0), 4),
            "seconds": round(time.perf_counter() - t_epoch, 2),
        }
        if collapsed:
            record["collapsed"] = collapsed
        history.append(record)
        progress.emit("epoch", **record)
    train_seconds = time.perf_counter() - train_started

    staging = modeldir.staging_dir(out)
    try:
        image_model.save_weights(str(staging / modeldir.IMAGE_WEIGHTS))
        text_model.save_weights(str(staging / modeldir.TEXT_HEAD_WEIGHTS))
        if minilm_model is not None:
            minilm_model.save_weights(str(staging / modeldir.MINILM_WEIGHTS))
        if vocab_tokens is not None:
            words.write_vocab(vocab_tokens, staging / modeldir.WORDS_VOCAB)
        sample = held_idx[:HELDOUT_SAMPLE_SIZE]
        np.savez(
            staging / modeldir.HELDOUT_SAMPLE,
            images=data.images[sample],
            captions=np.array([flat[offsets[i]] for i in sample]),
            keys=np.array([data.keys[i] for i in sample]),
        )
        summary = {
            "dataset": data.name,
            "dataset_license": data.license,
            "settings": s.to_dict(),
            "images": {"train": int(len(train_idx)), "held_out": int(len(held_idx)), "skipped": len(data.skipped)},
            "skipped_examples": [list(x) for x in data.skipped[:20]],
            "history": history,
            "final": history[-1],
            "log_scale": float(log_scale.numpy()),
            "timings": {
                "load_seconds": round(load_seconds, 2),
                "train_seconds": round(train_seconds, 2),
                "total_seconds": round(time.perf_counter() - started, 2),
                **text_info,
            },
        }
        modeldir.write_marker(staging, summary)
        modeldir.publish(staging, out)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress.emit("done", out_dir=str(out))
    summary["skipped"] = [list(x) for x in data.skipped]
    summary["out_dir"] = os.fspath(out)
    return summary
