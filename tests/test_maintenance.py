"""check finds what is wrong; compact and gc reclaim space without changing any answer."""

import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.maintenance import check, compact, gc
from scannlite.store.index import snapshot
from scannlite.store.index.build import build
from tests.support.catalog_helpers import ids_for


@pytest.fixture
def cat(tmp_path, rng):
    cat = Catalog.create(tmp_path / "c", 16)
    for b in range(3):
        cat.add(ids_for(f"b{b}-", 200), rng.standard_normal((200, 16)), [f"m{i}" for i in range(200)])
    build(cat)
    return cat


def segment_files(cat):
    return sorted(p.name for p in (cat.path / "segments").iterdir())


def test_check_passes_then_finds_each_kind_of_damage(cat, tmp_path):
    assert check(cat).ok
    seg = cat.path / cat._conn.execute("SELECT path FROM segments LIMIT 1").fetchone()[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert any("sha256" in p for p in check(cat).problems)
    seg.unlink()
    assert any("missing" in p for p in check(cat).problems)


def test_check_finds_missing_codes_and_wrong_counts(cat):
    cat._conn.execute("DELETE FROM codes WHERE item = (SELECT MIN(item) FROM codes)")
    problems = check(cat).problems
    assert any("have no code" in p for p in problems)
    cat._conn.execute("UPDATE snapshots SET count = count + 1")
    assert any("records 601 items but 600 are visible" in p for p in check(cat).problems)


def test_compact_and_gc_reclaim_without_changing_results(cat, rng):
    queries = rng.standard_normal((20, 16))
    cat.delete(ids_for("b0-", 150))
    cat.add(ids_for("b1-", 100), rng.standard_normal((100, 16)))  # updates
    build(cat)
    before = snapshot.search(cat, queries, k=10)
    exact_before = snapshot.search(cat, queries, k=10, exact=True)
    files_before = segment_files(cat)

    # Snapshot 1 still sees the old rows: nothing is dead yet.
    r = compact(cat)
    assert r["dead_rows"] == 0
    # Forget snapshot 1; now the replaced and deleted rows are dead.
    assert gc(cat, keep=1)["dropped_snapshots"] == [1]
    r = compact(cat)
    assert r["dead_rows"] == 250 and r["segments_rewritten"] >= 1
    assert cat._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 450
    assert check(cat).ok and check(cat).warnings  # the old segment files are now unreferenced
    g = gc(cat)
    assert g["files_removed"] >= 1 and len(segment_files(cat)) < len(files_before) + 1
    assert check(cat).ok and not check(cat).warnings
    assert snapshot.search(cat, queries, k=10) == before
    assert snapshot.search(cat, queries, k=10, exact=True) == exact_before
    # The next build is incremental and sees the same items.
    assert build(cat).count == 450


def test_gc_removes_orphans_a_crash_left(cat):
    orphan = cat.path / "segments" / "0123456789abcdef.parquet"
    orphan.write_bytes(b"half-written")
    assert check(cat).ok and check(cat).warnings
    gc(cat)
    assert not orphan.exists() and check(cat).ok


def test_gc_keep_must_be_positive(cat):
    from scannlite.store.errors import InvalidInput

    with pytest.raises(InvalidInput, match="at least 1"):
        gc(cat, keep=0)
