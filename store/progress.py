"""Progress reporting without a UI dependency in the library.

Library calls take an optional :class:`Progress`; the CLI passes one drawn with rich, tests
and library users get the silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _ignore(n: int = 1) -> None:
    """What a silent task's ``advance`` does."""


class Progress:
    """Silent progress: subclasses draw it."""

    @contextmanager
    def task(
        self, description: str, total: int | None = None, unit: str | None = None
    ) -> Iterator[Callable[[int], None]]:
        """A step of ``total`` things (``unit``, e.g. "images": drawn as a rate); yields ``advance(n)``."""
        yield _ignore

    def note(self, message: str) -> None:
        pass


SILENT = Progress()
