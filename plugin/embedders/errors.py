"""The exception type the embedders and the dual encoder raise on purpose.

Why: every bad input (a model directory from elsewhere, an empty caption file, an embedder
with the wrong input signature) must reach the user as one clear line, never a traceback.
Its ``str()`` is that line; the worker carries it back verbatim across the process boundary.
"""

from scannlite.store.errors import ScannliteError


class EncoderError(ScannliteError, ValueError):
    """A user-facing, one-line error about encoder input, data or model files."""
