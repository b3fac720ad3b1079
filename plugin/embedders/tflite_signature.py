"""Checking an embedder file by path, for the tflite embedder types: a thin caller.

The reader is :mod:`scannlite.store.bundle.ondevice.bundle_file`, the rules are
:mod:`scannlite.store.bundle.embedder_checks` (the acceptance policy, shared with ``configure``,
``export`` and the device runtime); this only turns a refusal into an :class:`EncoderError`
and lists tensors as ``(name, dtype, shape)``. Pure python: safe in the CLI process.
"""

from __future__ import annotations

from pathlib import Path

from scannlite.plugin.embedders.errors import EncoderError
from scannlite.store.bundle.embedder_checks import EmbedderRefused, read_embedder


def _signature(path: str | Path, kind: str | None) -> dict:
    try:
        _, facts = read_embedder(path, kind)
    except EmbedderRefused as exc:
        raise EncoderError(str(exc)) from None
    d = facts.description
    return {side: [(t["name"], t["dtype"], t["shape"]) for t in d[side]] for side in ("inputs", "outputs")}


def describe(path: str | Path) -> dict:
    """``{"inputs": [(name, dtype, shape)], "outputs": [...]}`` of an acceptable embedder."""
    return _signature(path, None)


def check_text_embedder(path: str | Path) -> dict:
    return _signature(path, "text")


def check_image_embedder(path: str | Path) -> dict:
    return _signature(path, "image")
