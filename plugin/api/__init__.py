"""scannlite: on-device semantic search catalogs, from Python.

``import scannlite`` gives the Python API: :func:`open` and :func:`create` return a :class:`Database`, and every error
a caller can fix is a :class:`ScannliteError` with a one-line message. The CLI calls the same facade
(:mod:`scannlite.plugin.facade`), so ``scannlite info --json`` and ``Database.info()`` are one dict (README,
"From Python").

This folder is the ``scannlite`` package itself (pyproject.toml maps it); ``scannlite.store``, ``scannlite.plugin``
and ``scannlite.cli`` are the three layers beside it. Its names load on first use: worker processes import this
package before they block TensorFlow or select protobuf's implementation, so it must import nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scannlite.plugin.facade.database import Database, create, open
    from scannlite.store.errors import ScannliteError

__all__ = ["Database", "ScannliteError", "create", "open"]

_HOMES = {
    "Database": "scannlite.plugin.facade.database",
    "create": "scannlite.plugin.facade.database",
    "open": "scannlite.plugin.facade.database",
    "ScannliteError": "scannlite.store.errors",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'scannlite' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
