"""A retrain placed on Ray tasks publishes the same snapshot, bit for bit, as one placed on
this machine's cores: same model, same leaf and code for every item, same health baseline and
recall estimate. The commit stays with the driver."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.index.config import IndexConfig

SCANNLITE = str(Path(sys.executable).with_name("scannlite"))


def untimed(record: str):
    """A JSON record without its wall times (which differ between any two runs)."""

    def drop(value):
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if "seconds" not in k}
        return [drop(v) for v in value] if isinstance(value, list) else value

    return drop(json.loads(record))


def snapshot_rows(path: Path):
    db = sqlite3.connect(path / "catalog.db")
    try:
        codes = db.execute(
            "SELECT i.id, c.leaf, c.code FROM codes c JOIN items i USING (item) ORDER BY i.id"
        ).fetchall()
        model = [
            (*r[:4], untimed(r[4]))
            for r in db.execute("SELECT kind, num_leaves, centroids, codebooks, training FROM models")
        ]
        snap = [(*r[:2], untimed(r[2])) for r in db.execute("SELECT count, leaves_to_search, build FROM snapshots")]
    finally:
        db.close()
    return codes, model, snap


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("engines") / "c"
    x = clustered(6000, 16, seed=21)
    with Catalog.create(path, 16, index=IndexConfig(num_leaves=30, training_sample_size=3000)) as cat:
        for lo in range(0, 6000, 1500):  # four segments
            cat.add([f"v{i:05d}" for i in range(lo, lo + 1500)], x[lo : lo + 1500])
    return path


@pytest.mark.slow
def test_ray_placement_equals_local_placement(tmp_path, catalog):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'scannlite[ray]')")
    local, ray = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(catalog, local)
    shutil.copytree(catalog, ray)
    for path, extra in ((local, []), (ray, ["--engine", "ray", "--workers", "2"])):
        proc = subprocess.run([SCANNLITE, "build", str(path), "--full", *extra], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "retrained the partitions, 6000 vectors encoded" in proc.stdout
    (codes_a, model_a, snap_a), (codes_b, model_b, snap_b) = snapshot_rows(local), snapshot_rows(ray)
    assert len(codes_a) == 6000 and codes_a == codes_b
    assert model_a == model_b  # centroids, codebooks and the training record with its health baseline
    assert snap_a == snap_b and snap_a[0][2]["recall"]["recall"]  # the recall estimate too


def test_engine_options_are_checked_before_anything_is_written(tmp_path, catalog):
    before = snapshot_rows(catalog)
    for args, message in (
        (["--engine", "spark"], "unknown engine 'spark'"),
        (["--address", "ray://head:10001"], "use it with --engine ray"),
    ):
        proc = subprocess.run([SCANNLITE, "build", str(catalog), *args], capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert snapshot_rows(catalog) == before
