"""Frozen-backbone image features, computed once per image set and cached (TensorFlow process).

Why: with the backbone frozen its output for an image never changes, so training runs the
projection head on these vectors instead of the network: EfficientNet-Lite0 over 4,024 emoji
at 224 px takes about a minute on 2 cores, reading the features back a fraction of a second,
and an epoch then takes milliseconds. The key covers the backbone, its weights file's size,
the image size and the images' bytes, so any change recomputes.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from scannlite.plugin.dual_encoder.cache import cache_dir, save_npz_atomic
from scannlite.plugin.embedders.errors import EncoderError

_BATCH = 32


def _key(backbone: str, weights_size: int, images: np.ndarray) -> str:
    h = hashlib.sha1(f"{backbone}-v1|{weights_size}|{images.shape}|".encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()[:20]


def cached_backbone_features(backbone: str, images: np.ndarray, progress=None) -> tuple[np.ndarray, bool]:
    """(float32 (n, F) pooled features of uint8 (n, S, S, 3) images, whether they came from the cache)."""
    if backbone != "efficientnet_lite0":
        raise EncoderError(f"no cached features for the {backbone} backbone")
    from scannlite.plugin.dual_encoder import efficientnet_lite

    path = (
        cache_dir()
        / f"features-{backbone}-{_key(backbone, efficientnet_lite.weights_path().stat().st_size, images)}.npz"
    )
    if path.exists():
        try:
            with np.load(path) as cached:
                features = cached["features"]
            if features.shape == (len(images), efficientnet_lite.FEATURES):
                return features, True
        except (OSError, ValueError, KeyError):
            pass
    net = efficientnet_lite.pretrained(images.shape[1])
    out, t0 = [], time.perf_counter()
    for start in range(0, len(images), _BATCH):
        x = images[start : start + _BATCH].astype(np.float32) / 127.5 - 1.0
        out.append(np.asarray(net(x, training=False), dtype=np.float32))
        if progress is not None and (start // _BATCH) % 10 == 0:
            progress.emit(
                "stage",
                name=f"{backbone} features: {start + len(x)}/{len(images)} images ({time.perf_counter() - t0:.0f} s)",
            )
    features = np.concatenate(out) if out else np.zeros((0, efficientnet_lite.FEATURES), np.float32)
    save_npz_atomic(path, features=features)
    return features, False
