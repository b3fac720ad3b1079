"""The image decoder: every picture a model sees in scannlite is decoded by :func:`load_rgb`.

Ingestion (``add --images``, training data), export and ``bundle verify`` probes,
``bundle query --image`` and the Datasette search form all decode here, so one picture gives
the same pixels everywhere. Every image becomes RGB uint8 (H, W, 3):

* greyscale, CMYK, 16-bit and float modes convert to RGB;
* transparency (RGBA, LA, palette with a transparent colour) is composited over **white**,
  the background OpenMoji renders use, so a transparent PNG embeds like its rendering;
* the EXIF orientation is applied, as a phone's gallery shows the picture.

Refused with a reason (:class:`ImageSkipped`, whose ``str()`` is the reason without the file
name, so callers print "skipped NAME: REASON"): missing, unreadable or truncated files, images
under 2x2 pixels (the Task Library's TensorImage drops a 1-pixel axis, failing a whole batch)
and images over ``max_pixels``. Knob ``max_pixels`` (default 50 million, a 48 MP phone photo):
larger values accept bigger photos at the cost of memory (3 bytes a pixel, and each decoded
image travels to the device process whole). It is the decompression-bomb limit, checked
from the header before any pixel is decoded, per call: Pillow's global
``Image.MAX_IMAGE_PIXELS`` is never changed (its warning is silenced during the call; its own
error, at twice that global, still refuses).
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np

from scannlite.store.errors import InvalidInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_MAX_PIXELS = 50_000_000
WHITE = (255, 255, 255)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)  # what bad bytes raise


class ImageSkipped(InvalidInput, ValueError):
    """This file is not a usable image; ``str()`` is the reason shown to the user."""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS):
    """The opened, not yet decoded, Pillow image of a path or of an image file's bytes, once
    its header passed the size limit; use it in a ``with`` block. Raises :class:`ImageSkipped`."""
    from PIL import Image

    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer; got {max_pixels!r}")
    opened: str | Path | io.BytesIO
    if isinstance(source, (bytes, bytearray, memoryview)):
        opened = io.BytesIO(bytes(source))
    elif not Path(source).is_file():
        raise ImageSkipped("missing file" if not Path(source).exists() else "not a file")
    else:
        opened = source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(opened)
    except Image.DecompressionBombError:
        raise ImageSkipped(
            f"too large (over Pillow's decompression-bomb limit of {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels)"
        ) from None
    except Image.UnidentifiedImageError:  # its message names a path or a BytesIO: say what it means
        raise ImageSkipped("not an image Pillow can read (unknown image format)") from None
    except _DECODE_ERRORS as exc:
        raise ImageSkipped(f"unreadable ({_reason(exc)})") from None
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise ImageSkipped(f"too large ({width}x{height} pixels, limit {max_pixels:,})")
    if width == 0 or height == 0:
        im.close()
        raise ImageSkipped("an empty image (0 pixels)")
    return im


def to_rgb(im):
    """Convert any Pillow mode to RGB, compositing transparency over white."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(scaled.round().astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode != "RGB":
        return im.convert("RGB")
    return im


def load_rgb(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a path, or the bytes of an image file, to RGB uint8 (H, W, 3), upright, over
    white; or raise :class:`ImageSkipped` with the reason."""
    from PIL import Image, ImageOps

    with open_image(source, max_pixels) as im:
        if min(im.size) < 2:
            raise ImageSkipped(f"too small ({im.size[0]}x{im.size[1]} pixels; at least 2x2 are needed)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()  # decodes now: truncated data raises here, not later
            upright = ImageOps.exif_transpose(im) or im
            return np.asarray(to_rgb(upright), dtype=np.uint8).copy()
        except _DECODE_ERRORS as exc:
            raise ImageSkipped(f"unreadable ({_reason(exc)})") from None


def load_probe_images(folder: Path, limit: int) -> list[np.ndarray]:
    folder = Path(folder)
    files = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.is_dir()
        else ([folder] if folder.is_file() else [])
    )
    images = []
    for p in files[:limit]:
        try:
            images.append(load_rgb(p))
        except ImageSkipped:
            continue
    if not images:
        raise InvalidInput(f"no readable images in {folder}")
    return images


def synthetic_images(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth colour gradients with blobs: varied enough to give distinct embeddings."""
    rng = np.random.default_rng(seed)
    h, w = max(int(height), 8), max(int(width), 8)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    out = []
    for _ in range(count):
        base = rng.uniform(0, 255, 3)
        grad = rng.uniform(-120, 120, (2, 3))
        img = base + xx[..., None] * grad[0] + yy[..., None] * grad[1]
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        img[blob] = rng.uniform(0, 255, 3)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out
