"""A child doing add/delete/build is killed with SIGKILL at random points, many times.
Afterwards the catalog opens, `check` passes, and every acknowledged write is there."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.maintenance import check, gc
from scannlite.store.index import snapshot

pytestmark = pytest.mark.slow

WRITER = Path(__file__).parent / "support" / "crash_writer.py"
KILLS = 24
# Rounds go on past KILLS (up to MAX_ROUNDS) until the writer was acknowledged at least this many
# adds and one build, so a loaded machine, where each write takes longer, still tests them.
ENOUGH_ADDS, MAX_ROUNDS = 24, 96


def test_sigkill_at_random_points_loses_no_acknowledged_write(tmp_path):
    path = tmp_path / "cat"
    Catalog.create(path, 16).close()
    rng = np.random.default_rng(2024)
    acked_rows: dict[str, int] = {}
    deleted: dict[str, int] = {}
    builds = []
    round_ = -1
    while (round_ := round_ + 1) < KILLS or ((len(acked_rows) < ENOUGH_ADDS or not builds) and round_ < MAX_ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(round_)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # Kill anywhere: every fourth round during imports or opening the catalog, the others at a
        # random moment after the writer says it is ready (ScaNN training, Parquet writing or a
        # SQLite commit). Timed from READY, not from the start: on a loaded machine the imports
        # alone can outlast any fixed delay, and then no write would ever be tested.
        assert proc.stdout is not None
        if round_ % 4 == 0:
            time.sleep(float(rng.uniform(0.05, 1.0)))
        else:
            assert proc.stdout.readline() == "READY\n"
            time.sleep(float(rng.uniform(0.05, 3.0)))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        for line in out.splitlines():
            if line == "READY":
                continue
            kind, *rest = line.split()
            if kind == "ADD":
                acked_rows[rest[0]] = int(rest[1])
            elif kind == "DEL":
                deleted[rest[0]] = int(rest[1])
            elif kind == "BUILD":
                builds.append(int(rest[0]))
        cat = Catalog.open(path)
        report = check(cat)
        assert report.ok, report.problems
        for batch, n in acked_rows.items():
            gone = deleted.get(batch, 0)
            present = cat._conn.execute(
                "SELECT COUNT(*) FROM items WHERE removed_seq IS NULL AND id LIKE ?", (f"{batch}-%",)
            ).fetchone()[0]
            # A write may have committed just before the kill, unacknowledged: a delete can
            # only remove rows, an add only add them, so these bounds are exact.
            assert n - (n // 4) <= present <= n if batch not in deleted else present == n - gone, (batch, present, n)
        cat.close()
    assert len(acked_rows) >= ENOUGH_ADDS and builds, f"the writer never got far enough in {round_} rounds"
    cat = Catalog.open(path)
    if builds:
        latest = snapshot.get_snapshot(cat)
        assert latest.version >= max(builds)
    # Files a crash left unpublished are reclaimed, and the catalog is still whole.
    gc(cat)
    assert check(cat).ok and not check(cat).warnings
    rows = snapshot.search(cat, np.ones(16), k=5, exact=True)
    assert len(rows[0]) == 5 or cat.count() < 5
