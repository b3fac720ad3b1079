"""How scannlite replaces a file: readers see the old file or the whole new one.

Every published file (bundles and their manifests, Parquet exports, a new ``catalog.db``,
cached arrays, a worker's answer) is written under a unique temporary name in the target's
own folder (a rename is only atomic within one file system), flushed to disk, renamed over
the target, and then the folder itself is flushed, so the rename survives a power cut and
not only a killed process. A failure before the rename removes the temporary file and leaves
the target as it was.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scannlite.store.oserrors import replace_errors


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def scratch_beside(target: Path | str) -> Iterator[Path]:
    """A temporary path in ``target``'s folder for an intermediate file (an index before it is
    packed into a bundle), removed when the block ends, whatever happens."""
    tmp = _temporary_name(Path(target))
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def replacing(*targets: Path | str) -> Iterator[list[Path]]:
    """Yield one temporary path per target; when the block succeeds, make each durable and
    rename it over its target, in order. Several targets (a bundle and its manifest) are all
    written before any is renamed, so a failure while writing leaves every target untouched."""
    targets_ = [Path(t) for t in targets]
    tmps = [_temporary_name(t) for t in targets_]
    try:  # replace_errors: a full disk or read-only folder is one line naming the target
        with replace_errors(targets_, tmps):
            yield tmps
            for tmp in tmps:
                fsync_file(tmp)
            for tmp, target in zip(tmps, targets_):
                os.replace(tmp, target)
            for folder in {t.parent for t in targets_}:
                fsync_dir(folder)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(target: Path | str, mode: str = "wb") -> Iterator:
    """``with atomic_open(path) as f: f.write(...)``: the file appears whole or not at all."""
    with replacing(target) as (tmp,):
        with open(tmp, mode) as f:
            yield f


def write_atomically(target: Path | str, data: bytes) -> None:
    with atomic_open(target) as f:
        f.write(data)
