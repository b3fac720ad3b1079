"""A write the machine refuses (full disk, read-only file system, no permission, a quota, a
file-size limit) becomes one :class:`StorageError` line: the path, the cause in words, and
what was kept.

Such a failure is a condition of the machine, not a bug, so it is reported like bad input:
``no space left on device while writing segment segments/ab12.parquet; nothing was committed``.
The write sites translate (segments, the on-device index, :mod:`scannlite.store.atomic`, SQLite's commit),
and the CLI translates any storage ``OSError`` that still escapes; see docs/storage-errors.md.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scannlite.store.errors import ScannliteError, one_line

#: errno -> the words a person reads. EFBIG is what a file-size limit (``ulimit -f``,
#: RLIMIT_FSIZE) turns a write into once SIGXFSZ is ignored.
CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit was reached)",
    errno.EIO: "input/output error",
}

#: The strerror texts of CAUSES, for errors that carry only a message (pyarrow's OSError, which
#: often has no errno of its own but quotes the C library's words).
_WORDS = {os.strerror(code).lower(): code for code in CAUSES}

#: SQLite's messages for the same conditions (sqlite3 exceptions carry no errno). SQLITE_FULL is
#: "database or disk is full"; a write failing with another errno (EFBIG, EIO) is SQLITE_IOERR.
_SQLITE = {
    "database or disk is full": "no space left on device",
    "attempt to write a readonly database": "read-only file system or no write permission",
    "disk i/o error": "disk I/O error (the disk may be full or a file-size limit reached)",
    "unable to open database file": "cannot open the database file (no permission or a read-only file system)",
}

NOTHING_COMMITTED = "nothing was committed"
NOTHING_WRITTEN = "nothing was written"
#: A read that fails for space: SQLite sorts and joins large results in temporary files.
READ_OUTCOME = (
    "nothing was changed (large reads need room for SQLite's temporary files too: "
    "$SQLITE_TMPDIR, else $TMPDIR or /var/tmp)"
)


class StorageError(ScannliteError):
    """The machine refused a write: ``path``, ``cause`` (words), ``committed`` (always False:
    every write site rolls back before raising)."""

    def __init__(
        self, path, cause: str, doing: str = "writing", outcome: str = NOTHING_COMMITTED, errno_: int | None = None
    ):
        self.path = None if path is None else Path(path)
        self.cause = cause
        self.errno = errno_
        self.committed = False
        where = f" {self.path}" if path is not None else ""
        super().__init__(f"{cause} while {doing}{where}; {outcome}")


class NotEnoughSpace(StorageError):
    """Refused before a long write began: the space it needs is known and is not there."""

    def __init__(self, folder, needed: int, free: int, what: str):
        self.needed, self.free = needed, free
        ScannliteError.__init__(
            self,
            f"not enough space for {what} in {folder}: it needs at least {needed:,} bytes "
            f"and {free:,} are free; {NOTHING_WRITTEN}",
        )
        self.path, self.cause, self.errno, self.committed = Path(folder), "no space left on device", errno.ENOSPC, False


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def storage_errno(exc: BaseException) -> int | None:
    """The storage errno behind ``exc`` (or an exception it was raised from), else None."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in CAUSES:
            return e.errno
        # pyarrow's errors, and a device or tensorflow process's (WorkerError: its words only)
        if isinstance(e, (OSError, sqlite3.Error)) or type(e).__module__.startswith(("pyarrow", "scannlite.")):
            text = str(e).lower()
            for m in re.finditer(r"errno[ :]*(\d+)", text):
                if int(m.group(1)) in CAUSES:
                    return int(m.group(1))
            for words, code in _WORDS.items():
                if words in text:
                    return code
    return None


def sqlite_cause(exc: BaseException) -> str | None:
    """Words for a SQLite error that means the storage refused a write, else None."""
    if not isinstance(exc, sqlite3.Error):
        return None
    text = str(exc).lower()
    for key, words in _SQLITE.items():
        if key in text:
            return words
    return None


def translate(
    exc: BaseException, path, doing: str = "writing", outcome: str = NOTHING_COMMITTED
) -> StorageError | None:
    """The :class:`StorageError` ``exc`` stands for, or None when it is not a storage failure."""
    if isinstance(exc, StorageError):
        return exc
    code = storage_errno(exc)
    if code is not None:
        return StorageError(path, CAUSES[code], doing, outcome, code)
    words = sqlite_cause(exc)
    if words is not None:
        code = errno.ENOSPC if words.startswith("no space") else _fs_errno(path)
        return StorageError(path, CAUSES[code] if code is not None else words, doing, outcome, code)
    return None


def _fs_errno(path) -> int | None:
    """SQLite reports a refused write as an I/O error or "unable to open"; the file system
    tells which: read-only, full, or not writable by this user. None when it tells nothing."""
    if path is None:
        return None
    folder = Path(path)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if st.f_bavail * st.f_frsize < 64 * 1024:  # less than SQLite needs for its WAL index and a page
        return errno.ENOSPC
    import resource

    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:  # EFBIG is SQLITE_IOERR
        return errno.EFBIG
    if not os.access(folder, os.W_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
        return errno.EACCES
    return None


@contextmanager
def writes(path, doing: str = "writing", outcome: str = NOTHING_COMMITTED):
    """Turn a storage ``OSError`` (or SQLite error) raised in the block into a :class:`StorageError`."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        err = translate(exc, path, doing, outcome)
        if err is None or err is exc:
            raise
        raise err from exc


def free_bytes(folder) -> int:
    return shutil.disk_usage(folder).free


def require_free(folder, needed: int, what: str) -> None:
    """Refuse a write of at least ``needed`` bytes into ``folder`` when fewer are free.

    ``needed`` must be a floor (bytes that will certainly be written), so a write that would
    fit is never refused; the write sites still translate a failure the floor did not foresee."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = free_bytes(folder)
    except OSError:
        return  # unknown: let the write itself tell
    if needed > free:
        raise NotEnoughSpace(folder, int(needed), int(free), what)


def describe(exc: BaseException) -> str | None:
    """One line for an ``OSError`` that reached the CLI untranslated: the path and the cause
    when it is a storage failure or names a file, else None (a bug: let it show)."""
    if isinstance(exc, sqlite3.Error):
        words = sqlite_cause(exc)
        first = one_line(exc)
        if words is not None:
            return f"{words} (SQLite: {first}); {NOTHING_COMMITTED}"
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.ProgrammingError):
            # A damaged catalog.db (copied, truncated, overwritten): a finding, not a bug.
            return f"the catalog database cannot be read (SQLite: {first}); run `scannlite check`"
        return None
    if not isinstance(exc, OSError):
        return None
    code = storage_errno(exc)
    path = exc.filename
    if code is not None:
        where = f" while writing {path}" if path else ""
        return f"{CAUSES[code]}{where}; {NOTHING_COMMITTED}"
    if path:
        reason = exc.strerror or one_line(exc)
        return f"cannot use {path}: {reason}"
    return None


@contextmanager
def replace_errors(targets: list[Path], tmps: list[Path]):
    """:func:`writes` for :func:`.atomic.replacing`: the error names the target whose temporary
    file failed (the first target when it cannot tell); the targets are as they were."""
    try:
        yield
    except (OSError, sqlite3.Error, RuntimeError) as exc:  # RuntimeError: a device process writing the file
        failed = getattr(exc, "filename", None)
        target = next((t for t, tmp in zip(targets, tmps) if failed is not None and Path(failed) == tmp), targets[0])
        err = translate(
            exc,
            target,
            "writing",
            f"{NOTHING_WRITTEN} ({target.name} is as it was)" if target.exists() else NOTHING_WRITTEN,
        )
        if err is None or err is exc:
            raise
        raise err from exc


# ---- floors: bytes a write will certainly put on disk (for require_free) ---------------------


def codes_floor(rows) -> int:
    """A build's rows for the codes table: at least each code's bytes and 4 bytes of integers
    and record header per row (a retrain's ``PlacedRows`` or an incremental list of tuples)."""
    codes = getattr(rows, "codes", None)
    if codes is not None:
        return int(codes.nbytes) + 4 * len(rows)
    if isinstance(rows, list):
        return sum(len(r[3] or b"") for r in rows) + 4 * len(rows)
    return 4 * len(rows)


def export_floor(plan, layouts: dict) -> int:
    """An export's temporary files at their largest: the index (its leaves' codes or vectors and
    the labels are stored raw by scannlite's writer), plus, for a bundle, the model and a second
    copy of the index packed in it. Zero for what only the builder's (compressing) layout knows."""
    layout = layouts.get(plan.layout)  # the export's LAYOUTS (store/bundle/ondevice/layout.py)
    if layout is None:
        index = 0
    else:
        snap = plan.snap
        index = int(snap.codes.nbytes) if snap.codes is not None else int(snap.count) * plan.cat.dim * 4
        if not layout["blocks"].get("compress_metadata"):
            index += sum(len(x) for x in plan.labels)
    return index if plan.index_only else 2 * index + len(plan.model or b"")


@contextmanager
def removed_on_failure(folders: list[Path]):
    """Remove these (new, still empty) folders again if the block fails: a failed ``init`` leaves
    nothing behind, so the same command works once the cause is gone."""
    try:
        yield
    except BaseException:
        for folder in reversed(folders):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty, or already gone: leave it
        raise


@contextmanager
def unlinked_on_failure(files: list[Path]):
    """Delete these new, not yet published files if the block (the transaction that would
    publish them) fails."""
    try:
        yield
    except BaseException:
        for f in files:
            Path(f).unlink(missing_ok=True)
        raise


def native_io_error(exc: BaseException, folder, doing: str) -> StorageError | None:
    """A native library's write failure that names no errno ("I/O error"): the file system
    tells the cause (full, read-only, a file-size limit), else the library's own words."""
    text = one_line(exc) if str(exc).strip() else ""
    code = storage_errno(exc)
    if code is None and "i/o error" not in text.lower():
        return None
    code = code if code is not None else _fs_errno(folder)
    cause = CAUSES[code] if code is not None else f"cannot write ({text})"
    return StorageError(folder, cause, doing, NOTHING_COMMITTED, code)
