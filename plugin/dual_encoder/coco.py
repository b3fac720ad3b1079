"""COCO-captions loader: an annotations JSON plus a folder of images.

Why this format: it is what Google's on-device search example trains on, and any captioned
image folder can be written in it. ``coco:PATH`` accepts either the annotations file
(``captions_train2017.json``) or a folder holding it (directly or in ``annotations/``).
Images are looked up, per ``file_name``, in the first existing of: the folder named after the
split (``train2017/`` beside the JSON or beside its folder), ``images/`` beside it, and the
JSON's own folder.

Bad input: an unreadable or empty annotations file is an :class:`EncoderError`; images that
are missing, unreadable or too large, and images without a non-empty caption, are reported
skips. The held-out split is fixed (a hash of ``file_name``), ~10% of the images.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from scannlite.plugin.dual_encoder.images import DEFAULT_MAX_PIXELS, ImageSkipped, load_rgb, resize_square
from scannlite.plugin.embedders.errors import EncoderError

HELD_OUT_PERCENT = 10


def find_annotations(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        candidates = sorted(path.glob("captions_*.json")) + sorted(path.glob("annotations/captions_*.json"))
        candidates = candidates or sorted(path.glob("*.json")) + sorted(path.glob("annotations/*.json"))
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise EncoderError(f"no COCO captions JSON (captions_*.json) found in {path}")
        raise EncoderError(f"several annotation files in {path}; name one: coco:{candidates[0]}")
    raise EncoderError(f"COCO annotations not found: {path}")


def image_dirs(annotations: Path) -> list[Path]:
    split = annotations.stem.removeprefix("captions_")
    here = annotations.parent
    dirs = [here / split, here.parent / split, here / "images", here.parent / "images", here, here.parent]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d not in unique:
            unique.append(d)
    return unique


def read_captions(annotations: Path) -> tuple[list[str], list[list[str]]]:
    """(file names, captions per file) for every image that has at least one caption."""
    try:
        doc = json.loads(annotations.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EncoderError(f"cannot read {annotations}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise EncoderError(f"{annotations} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("images"), list)
        or not isinstance(doc.get("annotations"), list)
    ):
        raise EncoderError(f"{annotations} is not a COCO captions file (needs 'images' and 'annotations' lists)")
    names: dict[object, str] = {}
    for image in doc["images"]:
        if isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str):
            names[image["id"]] = image["file_name"]
    captions: dict[object, list[str]] = {}
    for ann in doc["annotations"]:
        if not isinstance(ann, dict):
            continue
        text = ann.get("caption")
        if isinstance(text, str) and text.strip() and ann.get("image_id") in names:
            captions.setdefault(ann["image_id"], []).append(" ".join(text.split()))
    if not captions:
        raise EncoderError(f"{annotations} has no captions (0 usable caption annotations for {len(names)} images)")
    ordered = sorted(captions, key=lambda i: names[i])
    return [names[i] for i in ordered], [captions[i] for i in ordered]


def is_held_out(file_name: str) -> bool:
    digest = hashlib.sha1(file_name.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def load(path: str | Path, size: int, max_pixels: int = DEFAULT_MAX_PIXELS):
    """(images, captions per image, file names, held_out mask, skipped (file, reason))."""
    annotations = find_annotations(path)
    files, captions = read_captions(annotations)
    dirs = image_dirs(annotations)
    images, kept_files, kept_captions, skipped = [], [], [], []
    for name, caps in zip(files, captions):
        found = next((d / name for d in dirs if (d / name).is_file()), None)
        if found is None:
            skipped.append((name, "missing file"))
            continue
        try:
            images.append(resize_square(load_rgb(found, max_pixels), size))
        except ImageSkipped as why:
            skipped.append((name, str(why)))
            continue
        kept_files.append(name)
        kept_captions.append(caps)
    if not images:
        raise EncoderError(
            f"none of the {len(files)} images in {annotations} could be used "
            f"(first problem: {skipped[0][0]}: {skipped[0][1]})"
        )
    held_out = np.array([is_held_out(f) for f in kept_files], dtype=bool)
    return np.stack(images), kept_captions, kept_files, held_out, skipped
