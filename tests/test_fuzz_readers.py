"""Files from outside, truncated and mutated (deterministic seeds, hundreds per reader): each is
read correctly or refused with one line; none crashes the process or raises anything else.
The harness is tests/support/fuzz_readers.py; each reader runs in its own process, so a crash in a
native decoder shows as a crash. A sample also goes through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import fuzz_readers
from tests.support.disk_faults import cli

HARNESS = Path(__file__).parent / "support" / "fuzz_readers.py"
CASES = 300
SEED = 2026


#: The reader `make test-quick` fuzzes (a pure-numpy one, seconds); the others are slow.
QUICK_READER = "npy"


@pytest.mark.parametrize(
    "reader",
    [pytest.param(r, marks=() if r == QUICK_READER else pytest.mark.slow) for r in sorted(fuzz_readers.READERS)],
)
def test_damaged_files_are_read_or_refused_in_one_line(reader, tmp_path):
    if reader in ("bundle", "index"):
        from tests.support.shared_fixtures import require_fixtures

        require_fixtures()
    p = subprocess.run(
        [sys.executable, str(HARNESS), reader, str(SEED), str(CASES), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, f"the {reader} reader crashed its process (status {p.returncode}):\n{p.stderr[-3000:]}"
    report = json.loads(p.stdout)
    assert report["failures"] == [], json.dumps(report["failures"][:5], indent=1)
    assert report["cases"] >= CASES - 5 and report["ok"] + report["refused"] == report["cases"]
    assert report["refused"] > 0  # the damage was real enough to be refused


def test_mutations_are_deterministic_and_damaged():
    rng1, rng2 = np.random.default_rng(1), np.random.default_rng(1)
    data = bytes(range(256)) * 4
    a = list(fuzz_readers.mutations(data, rng1, 60))
    assert a == list(fuzz_readers.mutations(data, rng2, 60))
    assert all(bad != data for _, bad in a)
    assert len({bad for _, bad in a}) > 50


# ---- a sample through the real CLI ------------------------------------------------------------

SAMPLE = 6


def _assert_clean(r, what: str) -> None:
    assert "Traceback" not in r.err and "Traceback" not in r.out, f"{what}: a traceback:\n{r.err}"
    assert r.code in (0, 1), f"{what}: exit status {r.code}:\n{r.err}"
    if r.code:
        assert len(r.err_lines) <= 1, f"{what}: {len(r.err_lines)} lines on stderr:\n{r.err}"
        assert not r.err_lines or r.err_lines[0].startswith("error: "), r.err


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["parquet", "npy", "bundle", "index", "patch", "catalog-db"])
def test_damaged_files_through_the_cli(reader, tmp_path):
    if reader in ("bundle", "index"):
        from tests.support.shared_fixtures import require_fixtures

        require_fixtures()
    (tmp_path / "work").mkdir()
    harness, files = fuzz_readers.cases_for(reader, SEED + 1, 60, tmp_path / "work")
    picked = files[:: max(1, len(files) // SAMPLE)][:SAMPLE]
    seen_error = False
    for i, (what, path) in enumerate(picked):
        if reader == "parquet":
            cat = tmp_path / f"cat{i}"
            assert cli("init", cat, "--dim", 8).code == 0
            r = cli("add", cat, path)
        elif reader == "npy":
            cat = tmp_path / f"cat{i}"
            assert cli("init", cat, "--dim", 8).code == 0
            r = cli("add", cat, path, "--ids", harness.ids)
        elif reader in ("bundle", "index"):
            r = cli("bundle", "info", path)
        elif reader == "patch":
            r = cli("bundle", "patch", harness.work / "a.tflite", path, "-o", tmp_path / f"out{i}.tflite")
            assert not list(tmp_path.glob(".*.tmp"))
        else:
            damaged = tmp_path / f"db{i}"
            import shutil

            shutil.copytree(harness.src, damaged)
            shutil.copyfile(path, damaged / "catalog.db")
            r = cli("check", damaged)
            _assert_clean(r, f"check {what}")
            r = cli("search", damaged, "--vector-file", _query(tmp_path))
        _assert_clean(r, f"{reader} {what}")
        seen_error |= r.code != 0
    assert seen_error


def _query(folder: Path) -> Path:
    p = folder / "q.npy"
    if not p.exists():
        np.save(p, np.ones(8, np.float32))
    return p


@pytest.mark.slow
@pytest.mark.device
def test_damaged_images_through_the_embedding_workers(tmp_path, fixtures_dir):
    """`add --images` decodes in its warm workers: damaged images are skipped with a reason,
    the good ones embedded, no worker dies and nothing is printed twice."""
    from tests.support.datasette_site import image_embedder

    model = tmp_path / "image_embedder.tflite"
    model.write_bytes(image_embedder())
    (tmp_path / "work").mkdir()
    _, files = fuzz_readers.cases_for("image", SEED + 2, 60, tmp_path / "work")
    folder = tmp_path / "images"
    folder.mkdir()
    for _, path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    cat = tmp_path / "cat"
    assert cli("init", cat, "--dim", 8).code == 0
    r = cli("add", cat, "--images", folder, "--embedder", model, "--workers", "2")
    _assert_clean(r, "add --images")
    assert r.code == 0, r.err
    from scannlite.store.catalog.catalog import Catalog

    with Catalog.open(cat) as c:
        added = c.count()
    m = re.match(r"added (\d+), updated 0, unchanged 0, skipped (\d+) unreadable", r.out)
    assert m and int(m.group(1)) == added > 0 and int(m.group(2)) > 0, r.out
    assert added + int(m.group(2)) == len(files), r.out  # every file embedded or skipped with a reason
