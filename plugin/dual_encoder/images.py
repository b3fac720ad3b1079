"""Image helpers of the encoder: only what is encoder-specific lives here.

Decoding is the store's one decoder (:mod:`scannlite.store.images`: EXIF orientation,
transparency over white, its decompression-bomb limit); its names are re-exported for
the embedder types and the training data readers that import them from here.
"""

from __future__ import annotations

import numpy as np

from scannlite.store.images import DEFAULT_MAX_PIXELS, ImageSkipped, load_rgb

__all__ = ["DEFAULT_MAX_PIXELS", "ImageSkipped", "load_rgb", "resize_square"]


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` without keeping the aspect ratio.

    Why not crop: the Task Library's ImageEmbedder stretches the whole picture to the
    model's input size, so training sees what the phone will.
    """
    from PIL import Image

    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    im = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)
