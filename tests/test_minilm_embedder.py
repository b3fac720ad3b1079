"""``minilm``: all-MiniLM-L6-v2 by name, as a new user would use it, through the CLI: ``add --texts``,
``configure``, ``search --text`` and ``export``; its vectors within cosine 0.99 of the reference
sentence-transformers vectors (tests/fixtures/minilm_reference.npz); export prints the size split.

The converted model is cached (``~/.cache/scannlite``, or ``SCANNLITE_CACHE_DIR``): the first run
converts it in a TensorFlow worker (minutes on this machine), later runs read the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow, pytest.mark.device]

BIN = Path(sys.executable).parent
REFERENCE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"
MIN_COSINE = 0.99
MAX_MODEL_BYTES = 25_000_000  # issue 23's budget for the ready embedder


def cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "scannlite"), *map(str, args)], capture_output=True, text=True, timeout=1500)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.timeout(1800)
def test_minilm_by_name_through_add_configure_search_and_export(tmp_path):
    ref = np.load(REFERENCE)
    keep = [i for i, s in enumerate(ref["sentences"]) if str(s).strip()]  # the fixture's empty string: add refuses it
    sentences, reference = [str(ref["sentences"][i]) for i in keep], ref["embeddings"][keep]
    texts = tmp_path / "notes.jsonl"
    texts.write_text("".join(json.dumps({"id": f"s{i:02d}", "text": s}) + "\n" for i, s in enumerate(sentences)))

    listed = json.loads(cli("embedders", "--json").stdout)
    assert any(e.get("name") == "minilm" and e.get("kind") == "text" for e in _entries(listed))

    cat = tmp_path / "notes.catalog"
    cli("init", cat, "--dim", 384, "--num-leaves", 2, "--leaves-to-search", 2)
    cli("add", cat, "--texts", texts, "--embedder", "minilm")
    with Catalog.open(cat) as c:
        vectors = c.vectors_for(np.asarray([c.get(f"s{i:02d}")["item"] for i in range(len(sentences))]))
    cosines = np.sum(vectors * reference, axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert cosines.min() >= MIN_COSINE, cosines

    cli("build", cat)
    cli("configure", cat, "--text-embedder", "minilm")
    # Each sentence, searched as text, finds itself first: the query and the stored vector come
    # from the same Task Library model.
    found = json.loads(cli("search", cat, "--text", sentences[1], "--text", sentences[2], "-k", 3, "--json").stdout)
    assert [row[0]["id"] for row in _rows(found)] == ["s01", "s02"]

    out = tmp_path / "notes.tflite"
    shown = cli("export", cat, "--embedder", "minilm", "--out", out).stdout
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    split = manifest["sizes"]["split"]
    assert split["model"] + split["index"] + split["metadata"] == manifest["sizes"]["file"] == out.stat().st_size
    assert 0 < split["model"] <= MAX_MODEL_BYTES and split["index"] > 0 and split["metadata"] > 0
    assert f"size: model {split['model'] / 1e6:.1f} MB, index {split['index'] / 1e6:.1f} MB" in shown
    assert manifest["verified"] and manifest["embedder"]["output_dim"] == 384
    info = json.loads(cli("bundle", "info", out, "--json").stdout)
    assert info["split"] == split


def _entries(listed) -> list[dict]:
    return listed if isinstance(listed, list) else listed.get("embedders", [])


def _rows(found) -> list[list[dict]]:
    return found if isinstance(found, list) else found["results"]


def test_minilm_refuses_a_model_path(tmp_path):
    proc = cli("add", tmp_path / "x.catalog", "--texts", REFERENCE, "--embedder", f"minilm:{REFERENCE}", ok=False)
    assert proc.returncode != 0
