"""The scannlite side: one embedder type, ``toy-ngrams``, registered through the hook."""

from __future__ import annotations

import numpy as np

from scannlite.plugin.embedders.hookspecs import Embedded, EmbedderError, EmbedderType, hookimpl

from . import DIM, ngram_vector


class NgramEmbedder:
    kind = "text"
    dim = DIM

    def __init__(self, path: str):
        if path:
            raise EmbedderError(f"toy-ngrams needs no model file (got {path}); name it as toy-ngrams")
        self.path = path

    def embed(self, items=None) -> Embedded:
        rows, keys, skipped = [], [], []
        for text in items or []:
            vector = ngram_vector(text)
            if vector is None:
                skipped.append((text, "nothing to embed"))
            else:
                rows.append(vector)
                keys.append(text)
        vectors = np.stack(rows) if rows else np.zeros((0, DIM), np.float32)
        return Embedded(vectors, keys, skipped)


@hookimpl
def scannlite_embedders():
    return [EmbedderType("toy-ngrams", "text", f"hashed character trigrams, {DIM}-d (no model)", NgramEmbedder)]
