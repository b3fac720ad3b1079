"""Embed image files where they are read: in a device process.

One function serves both engines of ``scannlite embed``: a warm device worker calls it for the
local engine, and each Ray actor calls it in its own process for the Ray engine (the actor made
itself a device process first: :func:`scannlite.store.workers.worker.enter`). Files are read here, so a
Ray worker on another machine reads them from where they live (a local path, or any URI
pyarrow's filesystems open: ``s3://``, ``gs://``, ``hdfs://``), hashed, decoded by the store's one
decoder, and embedded by :func:`scannlite.plugin.device.runtime.image_embed`: the same
pixels and the same call as ``scannlite add --images``, so the same vectors bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np

from scannlite.plugin.device.runtime import image_embed
from scannlite.store.images import DEFAULT_MAX_PIXELS, ImageSkipped, load_rgb


def read_file(location: str) -> bytes:
    """The bytes at a local path or a URI (``scheme://...``) through pyarrow's filesystems."""
    if "://" not in location:
        with open(location, "rb") as f:
            return f.read()
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(location)
    with filesystem.open_input_stream(path) as f:
        return f.read()


def embed_image_files(model: bytes | str, locations: list[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """``{"vectors": float32 (kept, D), "kept": [index], "hashes": [sha256 of each kept file],
    "skipped": [(index, reason)]}`` for the files at ``locations``. A file that cannot be read
    or decoded is skipped with its reason; the others are embedded."""
    arrays, kept, hashes, skipped = [], [], [], []
    for i, location in enumerate(locations):
        try:
            data = read_file(location)
        except OSError as exc:
            skipped.append((i, f"unreadable ({exc.strerror or exc})"))
            continue
        except (ValueError, TypeError) as exc:  # pyarrow: an unknown scheme, a bad URI (ArrowInvalid)
            skipped.append((i, f"unreadable ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})"))
            continue
        try:
            arrays.append(load_rgb(data, max_pixels))
        except ImageSkipped as why:
            skipped.append((i, str(why)))
            continue
        kept.append(i)
        hashes.append(hashlib.sha256(data).hexdigest())
    vectors = image_embed(model, arrays) if arrays else np.zeros((0, 0), np.float32)
    return {"vectors": vectors, "kept": kept, "hashes": hashes, "skipped": skipped}
