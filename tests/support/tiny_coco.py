"""A tiny, generated COCO-captions set: coloured shapes on white, with several captions each.

Why: the tests of the COCO loader, training, conversion and the CLI need a captioned image
folder that every machine can make in a second without downloads. Captions vary in case
and punctuation ("A red circle.", "red CIRCLE") like real annotations do.
Optional damage: an annotation whose image file is missing, a truncated JPEG, an image
without captions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 170),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "cross")


def _draw(shape: str, colour: tuple, size: int, rng: np.random.Generator) -> Image.Image:
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    m = int(size * rng.uniform(0.12, 0.25))
    box = (m, m, size - m, size - m)
    if shape == "circle":
        d.ellipse(box, fill=colour)
    elif shape == "square":
        d.rectangle(box, fill=colour)
    elif shape == "triangle":
        d.polygon([(size // 2, m), (size - m, size - m), (m, size - m)], fill=colour)
    else:
        w = max(2, size // 8)
        d.rectangle((size // 2 - w, m, size // 2 + w, size - m), fill=colour)
        d.rectangle((m, size // 2 - w, size - m, size // 2 + w), fill=colour)
    return im


def make_tiny_coco(
    root: str | Path,
    n: int = 48,
    seed: int = 0,
    missing: int = 0,
    truncated: int = 0,
    uncaptioned: int = 0,
    split: str = "train2017",
) -> Path:
    """Write ``root/annotations/captions_<split>.json`` and ``root/<split>/*.png``; return the JSON path."""
    root = Path(root)
    images_dir = root / split
    images_dir.mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    images, annotations = [], []
    for i in range(n):
        colour, shape = names[i % len(names)], SHAPES[(i // len(names)) % len(SHAPES)]
        fname = f"{i:06d}.png"
        _draw(shape, COLOURS[colour], int(rng.integers(40, 96)), rng).save(images_dir / fname)
        images.append({"id": i + 1, "file_name": fname})
        annotations += [
            {"id": 3 * i + 1, "image_id": i + 1, "caption": f"A {colour} {shape}."},
            {"id": 3 * i + 2, "image_id": i + 1, "caption": f"{colour.upper()} {shape} on white"},
        ]
    next_id = n + 1
    for k in range(missing):
        images.append({"id": next_id, "file_name": f"missing_{k}.png"})
        annotations.append({"id": 10_000 + next_id, "image_id": next_id, "caption": "a picture that is not there"})
        next_id += 1
    for k in range(truncated):
        fname = f"truncated_{k}.jpg"
        buf = images_dir / fname
        _draw("circle", COLOURS["red"], 64, rng).save(buf, "JPEG")
        data = buf.read_bytes()
        buf.write_bytes(data[: len(data) // 2])
        images.append({"id": next_id, "file_name": fname})
        annotations.append({"id": 10_000 + next_id, "image_id": next_id, "caption": "a broken red circle"})
        next_id += 1
    for k in range(uncaptioned):
        fname = f"uncaptioned_{k}.png"
        _draw("square", COLOURS["blue"], 48, rng).save(images_dir / fname)
        images.append({"id": next_id, "file_name": fname})
        next_id += 1
    path = root / "annotations" / f"captions_{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}), encoding="utf-8")
    return path
