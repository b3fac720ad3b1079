"""One writer per catalog: an advisory ``flock`` on ``CATALOG/.lock``.

SQLite's WAL mode already keeps readers unblocked, but a scannlite write spans more than one
SQLite transaction's worth of work (Parquet files are written and fsynced first, then
published), so writers are serialised around the whole operation. ``flock`` is released by
the kernel when the holder dies, so a killed writer never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from scannlite.store.errors import CatalogLocked

DEFAULT_TIMEOUT = float(os.environ.get("SCANNLITE_LOCK_TIMEOUT", "10"))


@contextmanager
def writer_lock(catalog_dir: Path, timeout: float | None = None):
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    path = Path(catalog_dir) / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise CatalogLocked(
                        f"catalog {catalog_dir} is being written by another process (pid {holder}); "
                        f"gave up after {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
