"""Images for checking image embedders: a user's folder, or deterministic synthetic ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InvalidInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_rgb(path: Path, max_pixels: int = 40_000_000) -> np.ndarray:
    """An RGB uint8 array; greyscale, palette, RGBA and CMYK are converted. Raises ValueError."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"{path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def load_probe_images(folder: Path, limit: int) -> list[np.ndarray]:
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else (
        [folder] if folder.is_file() else [])
    images = []
    for p in files[:limit]:
        try:
            images.append(load_rgb(p))
        except ValueError:
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
