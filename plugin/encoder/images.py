"""Reading user images safely with Pillow, in whichever process calls it (never a device one).

Why here and not in the device process: a corrupt file must become a reported skip, not a
crash of the Task Library, and decoding in the caller lets one device process embed a whole
batch of already-decoded uint8 arrays.

Every image becomes RGB uint8 (H, W, 3):
* greyscale, CMYK, 16-bit and float modes convert to RGB;
* transparency (RGBA, LA, palette with a transparent colour) is composited over **white**,
  the background OpenMoji renders use, so a transparent PNG embeds like its rendering;
* the EXIF orientation is applied, as a phone's gallery shows the picture.

Refused with a reason (:class:`ImageSkipped`): unreadable or truncated files, and images
with more than ``max_pixels`` pixels. Knob ``max_pixels`` (default 50 million, a 48 MP phone
photo): larger values accept bigger photos at the cost of memory (3 bytes a pixel, and each
decoded image travels to the device process whole); Pillow's own decompression-bomb limit
is checked from the header, before any pixel is decoded.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 50_000_000
WHITE = (255, 255, 255)


class ImageSkipped(Exception):
    """This file is not a usable image; ``str()`` is the reason shown to the user."""


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency over white."""
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


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to RGB uint8 (H, W, 3) or raise :class:`ImageSkipped` with a reason."""
    path = Path(path)
    if not path.is_file():
        raise ImageSkipped("missing file" if not path.exists() else "not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageSkipped(f"too large ({width}x{height} pixels, limit {max_pixels:,})")
                if width == 0 or height == 0:
                    raise ImageSkipped("empty image (0 pixels)")
                im.load()  # decodes now: truncated data raises here, not later
                im = ImageOps.exif_transpose(im) or im
                return np.asarray(to_rgb(im), dtype=np.uint8).copy()
    except ImageSkipped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageSkipped(f"too large (decompression bomb guard: {exc})".split(". ")[0]) from None
    except Image.UnidentifiedImageError:
        raise ImageSkipped("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageSkipped(f"unreadable ({reason})") from None


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` without keeping the aspect ratio.

    Why not crop: the Task Library's ImageEmbedder stretches the whole picture to the
    model's input size, so training sees what the phone will.
    """
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    im = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)
