"""The error type of :mod:`scannlite.store.bundle.ondevice`.

Index files and bundles come from users and from other tools, so every way they can be
malformed must surface as a single exception with a one-line message the CLI can print as
is, never as an ``IndexError`` or ``struct.error`` from deep inside a parser.
"""

from __future__ import annotations

from scannlite.store.errors import ScannliteError


class IndexFormatError(ScannliteError, ValueError):
    """An on-device index, its config, or a TFLite bundle is malformed; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        # Messages sometimes embed text read from the file; keep them on one line.
        super().__init__(" ".join(str(message).split()))
