"""Image+caption sets for training, behind one spec string: ``openmoji`` or ``coco:PATH``.

Why one type: training, evaluation and the CLI should not care where pairs come from. A
:class:`PairSet` holds decoded, square, RGB uint8 images at the training size, one or more
captions per image, and a fixed held-out mask (never trained on; recall@5 is measured there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scannlite.plugin.dual_encoder import coco, openmoji
from scannlite.plugin.embedders.errors import EncoderError


@dataclass
class PairSet:
    name: str
    images: np.ndarray  # (N, S, S, 3) uint8
    captions: list[list[str]]  # at least one caption per image
    keys: list[str]  # file name or emoji code per image
    held_out: np.ndarray  # (N,) bool
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    license: str = ""

    def __len__(self) -> int:
        return len(self.keys)

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training images and of the held-out images."""
        return np.flatnonzero(~self.held_out), np.flatnonzero(self.held_out)


def parse_spec(spec: str) -> tuple[str, str | None]:
    spec = (spec or "").strip()
    if spec == "openmoji":
        return "openmoji", None
    if spec.startswith("coco:") and spec[5:].strip():
        return "coco", spec[5:].strip()
    raise EncoderError(f"unknown dataset {spec!r}: use 'openmoji' or 'coco:PATH' (annotations JSON or its folder)")


def load_dataset(spec: str, image_size: int) -> PairSet:
    kind, path = parse_spec(spec)
    if kind == "openmoji":
        images, captions, stems, held_out, skipped = openmoji.load(image_size)
        return PairSet("openmoji", images, [[c] for c in captions], stems, held_out, skipped, openmoji.LICENSE)
    if path is None:
        raise EncoderError(f"dataset {spec!r} names no COCO annotations path")
    images, captions, files, held_out, skipped = coco.load(path, image_size)
    if held_out.all() or not held_out.any():
        # A tiny set can land entirely on one side of the hash split: hold out one image.
        held_out = np.zeros(len(files), dtype=bool)
        if len(files) > 1:
            held_out[-1] = True
    return PairSet(f"coco:{path}", images, captions, files, held_out, skipped)
