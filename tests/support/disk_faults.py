"""A small file system to fill, and the real CLI run against it (tests/test_disk_full.py).

As root the catalog lives on a tmpfs mounted for the test, and a filler file leaves a chosen
number of bytes free before each command. Where mounting is not allowed, the command runs
with ``RLIMIT_FSIZE`` instead (SIGXFSZ ignored, so a write past the limit fails with EFBIG
rather than killing the process): the same failures, one file at a time.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.maintenance import check
from scannlite.store.catalog.segments import embedding_array

CLI = [sys.executable, "-c", "import sys; from scannlite.cli.app import main; sys.argv[0] = 'scannlite'; main()"]
#: Files a command may leave that are not its output: SQLite's WAL side files and the lock.
SIDE_FILES = {"catalog.db-wal", "catalog.db-shm", ".lock"}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def _limited(fsize: int | None):
    def setup():
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return setup


#: Runs a command as root without the capabilities that bypass file permissions, so a folder
#: owned by another user refuses its writes (EACCES) as it would for that user's neighbours.
WITHOUT_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def cli(*args, fsize: int | None = None, timeout: float = 300, prefix: list[str] = ()) -> Run:
    """The real ``scannlite`` command in a fresh process (optionally under RLIMIT_FSIZE, or
    behind ``prefix`` such as :data:`WITHOUT_DAC`)."""
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    p = subprocess.run(
        [*prefix, *CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=_limited(fsize),
    )
    return Run(p.returncode, p.stdout, p.stderr)


class SmallFs:
    """A tmpfs of ``size`` bytes at ``root`` (mounted by :meth:`mount`), filled on demand."""

    def __init__(self, root: Path, size: int):
        self.root, self.size = Path(root), size
        self.filler = self.root / "filler.bin"
        self.mounted = False

    def mount(self) -> bool:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return False
        p = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.root)], capture_output=True
        )
        self.mounted = p.returncode == 0
        return self.mounted

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)
            self.mounted = False

    def free(self) -> int:
        return shutil.disk_usage(self.root).free

    def leave_free(self, nbytes: int) -> int:
        """Grow the filler so that about ``nbytes`` stay free; returns the free bytes."""
        self.release()
        want = self.free() - nbytes
        if want > 0:
            with open(self.filler, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, want)
        return self.free()

    def release(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remount(self, readonly: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if readonly else 'rw'}", str(self.root)], check=True)


def vectors_file(folder: Path, rows: int, dim: int, seed: int) -> Path:
    """A Parquet input of ``rows`` new ids (unique per seed)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((rows, dim)).astype(np.float32)
    path = Path(folder) / f"in-{seed}.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [f"s{seed}-{i}" for i in range(rows)],
                "embedding": embedding_array(v),
                "metadata": [f"item {i} of batch {seed}" for i in range(rows)],
            }
        ),
        path,
    )
    return path


def files_under(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in Path(folder).rglob("*")
        if p.is_file() and p.name not in SIDE_FILES and p.name != "filler.bin"
    }


def state(catalog: Path) -> dict:
    """What a write changes: commits, live items, snapshots, exports."""
    with Catalog.open(catalog) as cat:
        return {
            "head": cat.head_seq,
            "count": cat.count(),
            "snapshots": cat._conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0],
            "exports": len(cat.exports()),
            "segments": cat.segment_count(),
        }


def problems(catalog: Path) -> list[str]:
    """``check``'s problems and warnings (an unreferenced segment is a warning: a leftover)."""
    with Catalog.open(catalog) as cat:
        rep = check(cat)
    return rep.problems + rep.warnings


def unique_name(stem: str, suffix: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}{suffix}"
