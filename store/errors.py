"""Errors scannlite reports to people: one line each, no traceback.

Every failure a user can cause (bad input, a missing file, a locked catalog) raises a
subclass of :class:`ScannliteError`; the CLI prints ``error: <message>`` and exits non-zero.
Anything else escaping is a bug.
"""


class ScannliteError(Exception):
    """Base class: ``str(exc)`` is a complete one-line explanation."""


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
