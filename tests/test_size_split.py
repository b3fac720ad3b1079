"""``export`` shows what a bundle's bytes are for (issue 23): model, index and metadata, printed, in the
manifest and in ``bundle info --json``; the three add up to the file. Real index writer and Task Library."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig

pytestmark = [pytest.mark.device, pytest.mark.slow]

SCANNLITE = str(Path(sys.executable).with_name("scannlite"))
REGEX_MODEL = "regex_one_embedding_with_metadata.tflite"


def run(*args) -> str:
    proc = subprocess.run([SCANNLITE, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_export_prints_and_records_the_size_split(tmp_path, fixtures_dir):
    x = clustered(600, 16, clusters=12, seed=3)
    with Catalog.create(tmp_path / "c", 16, index=IndexConfig(num_leaves=8, leaves_to_search=2)) as cat:
        cat.add([f"v{i}" for i in range(600)], x, [f"item number {i} " * 3 for i in range(600)])
        build(cat)
    model = fixtures_dir / REGEX_MODEL
    out = tmp_path / "b.tflite"
    shown = run("export", tmp_path / "c", "--embedder", model, "--out", out, "--device-metadata", "metadata")
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    split = manifest["sizes"]["split"]
    assert sum(split.values()) == out.stat().st_size == manifest["sizes"]["file"]
    # the model part is the embedder (plus a few bytes of packing); metadata is every label's bytes
    assert 0 <= split["model"] - model.stat().st_size < 4096
    assert split["metadata"] == sum(len(f"item number {i} " * 3) for i in range(600))
    assert split["index"] > 600 * 8  # at least the codes
    line = ", ".join(f"{k} {split[k] / 1e6:.1f} MB" for k in ("model", "index", "metadata"))
    assert f"size: {line}" in shown
    info = json.loads(run("bundle", "info", out, "--json"))
    assert info["split"] == split
    assert f"size: {line}" in run("bundle", "info", out)

    bare = tmp_path / "b.ldb"
    run("export", tmp_path / "c", "--index-only", "--out", bare)
    bare_split = json.loads(bare.with_suffix(".manifest.json").read_text())["sizes"]["split"]
    assert bare_split["model"] == 0 and bare_split["index"] + bare_split["metadata"] == bare.stat().st_size
