"""The dual encoder's embedder types, registered through their own ``scannlite`` entry point (pyproject.toml).

``dual-encoder-text`` / ``dual-encoder-image``: a model directory from ``scannlite train``, run with Keras in a
TensorFlow process (the reference the ``.tflite`` towers are checked against). They live here, beside the model
they run, so that the core embedders never import the dual encoder (tests/test_layers.py).
``minilm``: all-MiniLM-L6-v2, the general-purpose sentence embedder, converted once to a Task Library model and
cached (:mod:`scannlite.plugin.dual_encoder.minilm_embedder`, docs/embedders.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scannlite.plugin.embedders.builtin import DEFAULT_IMAGE_BATCH, call_worker, embed_image_files, model_path
from scannlite.plugin.embedders.errors import EncoderError
from scannlite.plugin.embedders.hookspecs import DIRECTORY, Embedded, EmbedderError, EmbedderType, hookimpl
from scannlite.store.images import DEFAULT_MAX_PIXELS

_KERAS = "scannlite.plugin.dual_encoder.keras_inference"


class DualEncoderEmbedder:
    """A ``scannlite train`` model directory, embedding with Keras in a TensorFlow process."""

    def __init__(self, path: str, kind: str, batch: int = DEFAULT_IMAGE_BATCH):
        from scannlite.plugin.dual_encoder.modeldir import read_marker

        self.path, self.kind, self.batch = model_path(path, f"dual-encoder-{kind}", "a model directory"), kind, batch
        try:
            self.dim = int(read_marker(self.path)["settings"].get("embedding_dim", 128))
        except EncoderError as exc:
            raise EmbedderError(str(exc)) from None

    def embed(self, items: Sequence[str] | None = None) -> Embedded:
        items = [str(i) for i in (items or [])]
        if self.kind == "text":
            if not items:
                return Embedded(np.zeros((0, self.dim), np.float32), [], [])
            return Embedded(call_worker("tensorflow", f"{_KERAS}:embed_texts", self.path, items), items, [])
        return embed_image_files(
            items,
            lambda arrays: call_worker("tensorflow", f"{_KERAS}:embed_images", self.path, arrays),
            self.batch,
            DEFAULT_MAX_PIXELS,
            None,
            self.dim,
        )


@hookimpl
def scannlite_embedders() -> list[EmbedderType]:
    model_dir = (DIRECTORY,)
    from scannlite.plugin.dual_encoder.minilm_embedder import NAME, MiniLMEmbedder

    return [
        EmbedderType(
            NAME,
            "text",
            "all-MiniLM-L6-v2 sentence embedder (384-d, int8 weights, Task Library; converted once, cached): "
            "text-to-text search",
            MiniLMEmbedder,
        ),
        EmbedderType(
            "dual-encoder-text",
            "text",
            "text tower of a `scannlite train` model directory (Keras, TensorFlow process)",
            lambda path: DualEncoderEmbedder(path, "text"),
            model_dir,
        ),
        EmbedderType(
            "dual-encoder-image",
            "image",
            "image tower of a `scannlite train` model directory (Keras, TensorFlow process)",
            lambda path: DualEncoderEmbedder(path, "image"),
            model_dir,
        ),
    ]
