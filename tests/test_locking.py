"""One writer at a time; a second writer waits up to its timeout, then fails clearly;
readers are never blocked."""

import subprocess
import sys
import textwrap
import time

import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import CatalogLocked
from scannlite.store.index import snapshot
from scannlite.store.index.build import build

HOLDER = textwrap.dedent("""
    import sys, time
    from scannlite.store.catalog.catalog import Catalog
    cat = Catalog.open(sys.argv[1])
    with cat.writing():
        with cat.transaction():          # a write transaction is open too
            cat.new_commit("add", {"note": "held by the test"})
            print("locked", flush=True)
            time.sleep(float(sys.argv[2]))
""")


@pytest.mark.slow
def test_second_writer_times_out_and_readers_proceed(tmp_path, rng):
    cat = Catalog.create(tmp_path / "c", 8)
    cat.add([f"a{i}" for i in range(20)], rng.standard_normal((20, 8)))
    build(cat)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cat.path), "4"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    try:
        blocked = Catalog.open(cat.path, lock_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(CatalogLocked, match=r"being written by another process \(pid \d+\); gave up after 1 s"):
            blocked.add(["x"], rng.standard_normal((1, 8)))
        assert 0.9 <= time.monotonic() - started < 3.0
        # Readers are not blocked by the writer's lock nor its open transaction.
        assert cat.count() == 20
        assert len(snapshot.search(cat, rng.standard_normal(8), k=3)[0]) == 3
    finally:
        holder.wait(timeout=30)
    # Once the holder is gone, a waiting writer gets in.
    waiting = Catalog.open(cat.path, lock_timeout=10)
    assert waiting.add(["x"], rng.standard_normal((1, 8))).added == 1


def test_writer_waits_for_a_short_lock(tmp_path, rng):
    cat = Catalog.create(tmp_path / "c", 8)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cat.path), "1"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    try:
        r = Catalog.open(cat.path, lock_timeout=20).add(["y"], rng.standard_normal((1, 8)))
        assert r.added == 1
    finally:
        holder.wait(timeout=30)
