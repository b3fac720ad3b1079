"""The caller-side API: ``train`` and ``convert``, run from the CLI/store process.

Why a separate layer: the CLI process must never import TensorFlow or tflite-support's
natives, so these functions check what they can cheaply here (settings, output directory,
model-directory marker), then start a TensorFlow worker with ``run_in`` and, for ``convert``,
a device worker that runs the fresh ``.tflite`` files through the Task Library on the model's
held-out sample (the "verified" in a verified conversion). Training progress arrives through a
JSON-lines file (:mod:`.progress_log`) tailed while the worker runs, drawn with ``rich``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from scannlite.plugin.dual_encoder import modeldir
from scannlite.plugin.dual_encoder.datasets import parse_spec
from scannlite.plugin.dual_encoder.progress_log import ProgressReader
from scannlite.plugin.dual_encoder.settings import TrainSettings
from scannlite.plugin.embedders.errors import EncoderError
from scannlite.store.workers.boundary import ProcessFailed, WorkerError, run_in

PARITY_THRESHOLD = 0.999
# float16 weights move a deep pretrained tower's vectors a little (measured: min cosine 0.97
# over held-out emoji, recall within 0.008); below this it is refused, not shipped.
FLOAT16_PARITY_THRESHOLD = 0.95
# Weight-only int8 text towers (the demo's default, docs/quality.md): the vectors must stay this
# close to Keras; retrieval quality is held to its own rule there (at most 0.01 recall lost).
INT8_WEIGHTS_PARITY_THRESHOLD = 0.99
TEXT_QUANTIZATIONS = ("int8-weights", "dynamic", "float16", "none")


def _run(kind: str, func: str, *args, **kwargs) -> Any:
    """Training and conversion run in a fresh TensorFlow process each: they are long, hold
    gigabytes, and must not inherit Keras' global state (seeds, layer names) from earlier jobs."""
    try:
        return run_in(kind, func, *args, fresh=kind == "tensorflow", **kwargs)
    except (WorkerError, ProcessFailed) as exc:
        raise EncoderError(str(exc)) from None


class _TrainDisplay:
    """Rich progress bar + one printed line per epoch, fed by worker events."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = None
        self.epochs = 0
        self.steps = 1

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("starting TensorFlow", total=None, info="")
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def handle(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "stage":
            self.progress.update(self.task, description=ev["name"], total=None, info="")
        elif kind == "start":
            self.epochs, self.steps = ev["epochs"], max(1, ev["steps_per_epoch"])
            self.console.print(
                f"training on {ev['train_images']} images, recall measured on "
                f"{ev['held_out_images']} held-out images ({ev['skipped']} skipped)"
            )
            self.progress.update(
                self.task, description=f"epoch 1/{self.epochs}", total=self.epochs * self.steps, completed=0
            )
        elif kind == "step":
            done = (ev["epoch"] - 1) * self.steps + ev["step"]
            self.progress.update(
                self.task,
                description=f"epoch {ev['epoch']}/{self.epochs}",
                completed=done,
                info=f"loss {ev['loss']:.3f}",
            )
        elif kind == "epoch":
            self.console.print(
                f"epoch {ev['epoch']:>3}/{self.epochs}  loss {ev['loss']:.4f}  "
                f"recall@5 {ev['recall@5']:.3f}  recall@1 {ev['recall@1']:.3f}  "
                f"temperature {ev['temperature']:.4f}  ({ev['seconds']:.1f} s)"
            )
            self.progress.update(self.task, completed=ev["epoch"] * self.steps)


def train(
    dataset: str,
    out_dir: str | Path,
    text_tower: str = "minilm",
    epochs: int | None = None,
    console=None,
    show_progress: bool = True,
    timeout: float | None = 6 * 3600,
    **overrides,
) -> dict:
    """Train a dual encoder on ``dataset`` ("openmoji" or "coco:PATH") into ``out_dir``.

    ``overrides`` are :class:`TrainSettings` fields (``batch_size``, ``image_size``,
    ``finetune_minilm``, ``image_backbone``, ...). Returns the training summary (history,
    timings, skipped images). Raises :class:`EncoderError` with one line on bad input.
    """
    given: dict[str, Any] = {"epochs": epochs} if epochs else {}
    settings = TrainSettings(text_tower=text_tower, **given, **overrides).validate()
    parse_spec(dataset)
    out = modeldir.check_output_dir(out_dir)
    if settings.image_backbone_weights:
        settings.image_backbone_weights = str(Path(settings.image_backbone_weights).resolve())
    args = (dataset, str(out.resolve()), settings.to_dict())
    func = "scannlite.plugin.dual_encoder.training:run_training"
    if not show_progress:
        return _run("tensorflow", func, *args, timeout=timeout)

    from rich.console import Console

    console = console or Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="scannlite-train-") as tmp:
        log = Path(tmp, "progress.jsonl")
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = _run("tensorflow", func, *args, progress_path=str(log), timeout=timeout)
            except BaseException as exc:  # handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, daemon=True)
        reader = ProgressReader(log)
        with _TrainDisplay(console) as display:
            worker.start()
            while worker.is_alive():
                for ev in reader.read():
                    display.handle(ev)
                time.sleep(0.2)
            for ev in reader.read():
                display.handle(ev)
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def convert(
    model_dir: str | Path,
    out_dir: str | Path,
    quantize: bool = False,
    verify: bool = True,
    text_quantization: str | None = None,
) -> dict:
    """Write ``text_embedder.tflite`` and ``image_embedder.tflite``; check them with the Task Library.

    The result has the file paths and sizes, conversion seconds and, with ``verify``, the
    minimum cosine between Task Library and Keras vectors on the held-out sample
    (``parity``); below 0.999 raises :class:`EncoderError`. With ``quantize``, an image tower
    that dynamic int8 bends below that (pretrained backbones: cosine down to -0.4) is converted
    again in float16, which must reach :data:`FLOAT16_PARITY_THRESHOLD`; ``fallback`` in the
    result says why, and the converted file is never a silently broken one.
    """
    if text_quantization not in (None, *TEXT_QUANTIZATIONS):
        raise EncoderError(f"unknown text quantization {text_quantization!r}: use {', '.join(TEXT_QUANTIZATIONS)}")
    modeldir.read_marker(model_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EncoderError(f"{out} exists and is not a directory")
    args = (str(Path(model_dir).resolve()), str(out.resolve()))
    result = _run(
        "tensorflow",
        "scannlite.plugin.dual_encoder.conversion:run_conversion",
        *args,
        quantize=quantize,
        text_quantization=text_quantization,
    )
    keras_text, keras_images = result.pop("keras_text"), result.pop("keras_images")
    captions, images = result.pop("sample_captions"), result.pop("sample_images")
    if verify:
        t0 = time.perf_counter()
        device_text = _run("device", "scannlite.plugin.device.runtime:text_embed", result["text_embedder"], captions)
        text_cos = _min_cosine(device_text, keras_text)
        image_cos = _min_cosine(
            _run("device", "scannlite.plugin.device.runtime:image_embed", result["image_embedder"], images),
            keras_images,
        )
        if quantize and image_cos < PARITY_THRESHOLD and result["image_quantization"] == "dynamic-int8":
            redo = _run(
                "tensorflow",
                "scannlite.plugin.dual_encoder.conversion:run_conversion",
                *args,
                image_quantization="float16",
                image_only=True,
            )
            result["fallback"] = (
                f"dynamic int8 bent the image tower (min cosine {image_cos:.4f} < {PARITY_THRESHOLD}); "
                "converted it in float16 instead"
            )
            result.update(image_bytes=redo["image_bytes"], image_quantization=redo["image_quantization"])
            result["seconds"]["image_fallback"] = redo["seconds"]["image"]
            image_cos = _min_cosine(
                _run(
                    "device",
                    "scannlite.plugin.device.runtime:image_embed",
                    result["image_embedder"],
                    redo["sample_images"],
                ),
                redo["keras_images"],
            )
        parity = {
            "text": text_cos,
            "image": image_cos,
            "samples": len(captions),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        result["parity"] = parity
        # MiniLM in float16 still reaches PARITY_THRESHOLD; int8 weights are held to the lower bar
        need_text = INT8_WEIGHTS_PARITY_THRESHOLD if result["text_quantization"] == "int8-weights" else PARITY_THRESHOLD
        need_image = FLOAT16_PARITY_THRESHOLD if "fallback" in result else PARITY_THRESHOLD
        if text_cos < need_text or image_cos < need_image:
            raise EncoderError(
                f"converted towers disagree with Keras: min cosine text {text_cos:.5f} "
                f"({result['text_quantization']}, need {need_text}), image {image_cos:.5f} "
                f"({result['image_quantization']}, need {need_image})"
            )
    return result


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(np.asarray(a) * np.asarray(b), axis=1)))
