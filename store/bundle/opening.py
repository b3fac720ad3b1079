"""Opening a bundle or bare on-device index made anywhere: the file mapped read-only, never read whole, its
index parsed by scannlite's own reader, and the pages a pass has read dropped again.

Files from outside are untrusted: a file that is neither a TFLite model nor an index is one
:class:`~scannlite.store.errors.InvalidInput` line (docs/ondevice-format.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from scannlite.store.bundle.embedder_checks import inspect_embedder
from scannlite.store.bundle.manifest import manifest_beside, scannlite_user_info
from scannlite.store.bundle.ondevice.bundle_file import MODEL_IDENTIFIER as TFLITE_MAGIC
from scannlite.store.bundle.ondevice.bundle_file import mapped, read_bundle
from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.index_file import OnDeviceIndex, read_index
from scannlite.store.bundle.ondevice.model_facts import describe_model
from scannlite.store.bundle.ondevice.sstable import RELEASE_EVERY
from scannlite.store.errors import InvalidInput


@dataclass
class OpenedBundle:
    """A bundle or bare index file, mapped read-only: ``data`` and ``index_bytes`` are the map and
    a view of it (the file is never read whole), so use it as a context manager, which drops
    everything read from the file when the block ends."""

    path: Path
    data: bytes
    is_model: bool
    index_bytes: bytes
    index: OnDeviceIndex
    manifest: dict | None
    user_info: dict | None
    describe: dict | None = None
    problems: list[str] = field(default_factory=list)
    _closing: contextlib.ExitStack | None = None

    @cached_property
    def sha256(self) -> str:
        """Of the mapped file itself, a slice at a time with the pages dropped between slices."""
        digest = hashlib.sha256()
        for piece in slices(self.data):
            digest.update(piece)
        return digest.hexdigest()

    @cached_property
    def facts(self):
        """What the Task Library makes of the model (parsed once: each parse re-checks its CRCs)."""
        return inspect_embedder(self.data, self.path.name)

    def __enter__(self) -> OpenedBundle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        # The map's views, then the map: a closed bundle holds nothing of the file (and is used no more).
        self.index = self.index_bytes = self.data = None  # type: ignore[assignment]
        if self._closing is not None:
            self._closing.close()


def open_bundle(path: Path) -> OpenedBundle:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    closing = contextlib.ExitStack()
    try:
        return _opened(path, closing.enter_context(mapped(path)), closing)
    except BaseException:
        closing.close()
        raise


def _opened(path: Path, data, closing: contextlib.ExitStack) -> OpenedBundle:
    is_model = is_tflite_model(data)
    describe = None
    try:
        if is_model:
            bundle = read_bundle(data)
            index_bytes = bundle.require_index()
            describe = describe_model(data)
        else:
            index_bytes = memoryview(data)
        index = read_index(index_bytes, release=dropper(data))
        dropper(data)()
    except IndexFormatError as exc:
        kind = "bundle" if is_model else "TFLite model or on-device index"
        raise InvalidInput(f"{path.name} is not a valid {kind}: {exc}") from None
    return OpenedBundle(
        path,
        data,
        is_model,
        index_bytes,
        index,
        manifest_beside(path),
        scannlite_user_info(index.user_info),
        describe,
        _closing=closing,
    )


def dropper(data) -> Callable[[], None]:
    """What drops a mapped file's resident pages (a no-op for bytes): pages read once for a
    check need not stay, and what is used again is faulted back in from the page cache."""
    if isinstance(data, mmap.mmap):
        return lambda: data.madvise(mmap.MADV_DONTNEED)
    return lambda: None


def slices(data, drop: Callable[[], None] | None = None):
    """``data`` as views of :data:`~.ondevice.sstable.RELEASE_EVERY` bytes, calling ``drop`` (by
    default ``data``'s own dropper) after each: for one pass over a file too large to hold."""
    drop = drop or dropper(data)
    view = memoryview(data)
    for at in range(0, len(view), RELEASE_EVERY):
        yield view[at : at + RELEASE_EVERY]
        drop()


def is_tflite_model(data) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_MAGIC
