"""Errors scannlite reports to people: one line each, no traceback.

Every failure a user can cause (bad input, a missing file, a locked catalog) raises a
subclass of :class:`ScannliteError`; the CLI prints ``error: <message>`` and exits non-zero.
Anything else escaping is a bug.
"""


class ScannliteError(Exception):
    """Base class: ``str(exc)`` is a complete one-line explanation."""


def one_line(exc: BaseException, *, with_type: bool = False, last: bool = False) -> str:
    """The line of an exception that a message quotes.

    Its first non-empty line (``last``: its last, where a wrapper puts the cause at the end), without the
    payload tag absl statuses carry, prefixed by the type's name with ``with_type``; the type's name alone
    when it has no text. Why one function: messages built from foreign exceptions must read alike.
    """
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    line = (lines[-1] if last else lines[0]).split(" [tflite::support::TfLiteSupportStatus")[0].rstrip()
    return f"{type(exc).__name__}: {line}" if with_type else line


class NotACatalog(ScannliteError):
    pass


class InvalidInput(ScannliteError):
    """The data offered to a write is wrong; nothing was committed."""


class CatalogLocked(ScannliteError):
    """Another writer held the catalog for longer than the lock timeout."""


class UnknownSnapshot(ScannliteError):
    pass


class CatalogCorrupt(ScannliteError):
    """The catalog's files disagree with what SQLite recorded."""
