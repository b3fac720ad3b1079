"""``scannlite search --text/--image``: queries embedded by the catalog's configured embedders
return what ``scannlite bundle query`` returns from the snapshot's exported bundle (the Task
Library's TextSearcher/ImageSearcher), for the same snapshot and leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.workers.boundary import run_in
from tests.support.datasette_site import REGEX_MODEL, SENTENCES, embed_texts

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.usefixtures("fixtures_dir")]

BIN = Path(sys.executable).parent
QUERIES = [
    "a funny film with a great cast",
    "the worst script of the year",
    "a boring and slow drama",
    "a touching love story",
    "the music is great",
    "the plot makes no sense at all",
]


def cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "scannlite"), *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def same_answers(search_rows: list[list[dict]], bundle_rows: list[list[dict]]) -> None:
    assert len(search_rows) == len(bundle_rows)
    for ours, phone in zip(search_rows, bundle_rows):
        assert [h["id"] for h in ours] == [h["metadata"] for h in phone]
        np.testing.assert_allclose([h["distance"] for h in ours], [h["distance"] for h in phone], rtol=1e-5, atol=1e-6)


def test_search_text_equals_bundle_query_on_the_exported_bundle(tmp_path):
    """Review sentences and 1,500 vectors around them, 16 leaves, 3 searched, asymmetric hashing."""
    rng = np.random.default_rng(7)
    base = embed_texts(SENTENCES)
    noise = base[rng.integers(0, len(base), 1500)] + 0.35 * rng.standard_normal((1500, base.shape[1]))
    path = tmp_path / "reviews"
    with Catalog.create(path, 16, index=IndexConfig(num_leaves=16, leaves_to_search=3)) as cat:
        cat.add(
            [f"r{i:02d}" for i in range(len(SENTENCES))] + [f"n{i:04d}" for i in range(len(noise))],
            np.vstack([base, noise]),
            SENTENCES + [f"near {i}" for i in range(len(noise))],
        )
        build(cat)
    missing = cli("search", path, "--text", "a funny film", ok=False)
    assert missing.returncode == 1 and "this catalog has no text embedder" in missing.stderr
    cli("configure", path, "--text-embedder", REGEX_MODEL)
    bundle = tmp_path / "reviews.tflite"
    cli("export", path, "--embedder", REGEX_MODEL, "--out", bundle)

    args = [a for q in QUERIES for a in ("--text", q)]
    ours = json.loads(cli("search", path, *args, "-k", 10, "--json").stdout)
    phone = json.loads(cli("bundle", "query", bundle, *args, "-k", 10, "--json").stdout)
    same_answers(ours, phone)
    assert all(len(row) == 10 for row in ours)
    # The text search is the vector search of the embedder's vector, and --exact works on texts too.
    np.save(tmp_path / "q.npy", embed_texts(QUERIES[:1]))
    by_vector = json.loads(cli("search", path, "--vector-file", tmp_path / "q.npy", "-k", 10, "--json").stdout)
    assert by_vector == ours[:1]
    exact = json.loads(cli("search", path, "--text", QUERIES[0], "--exact", "-k", 3, "--json").stdout)
    assert len(exact[0]) == 3
    # People get a table with the query as its title; mixing kinds of query is one clear line.
    assert QUERIES[0] in cli("search", path, "--text", QUERIES[0], "-k", 2).stdout
    both = cli("search", path, "--text", "x", "--vector-file", tmp_path / "q.npy", ok=False)
    assert both.returncode == 1 and "not both --vector-file and --text" in both.stderr


def test_search_image_equals_bundle_query_on_the_exported_bundle(tmp_path):
    from PIL import Image

    from scannlite.store.images import synthetic_images
    from tests.support.model_builders import image_model

    weights = np.random.default_rng(3).standard_normal((24, 8 * 8 * 3)).astype(np.float32) / 30
    model = tmp_path / "image_embedder.tflite"
    model.write_bytes(image_model(weights, 8, 8, "uint8"))
    images = synthetic_images(600, 8, 8, seed=11)
    vectors = run_in("device", "scannlite.plugin.device.runtime:image_embed", model.read_bytes(), images)
    path = tmp_path / "photos"
    with Catalog.create(path, 24, index=IndexConfig(num_leaves=8, leaves_to_search=2, dims_per_block=2)) as cat:
        cat.add([f"img{i}" for i in range(len(images))], vectors)
        build(cat)
    cli("configure", path, "--image-embedder", model)
    bundle = tmp_path / "photos.tflite"
    cli("export", path, "--embedder", model, "--out", bundle)
    queries = []
    for i in (7, 123, 400):
        noisy = np.clip(images[i].astype(int) + np.random.default_rng(i).integers(-40, 40, images[i].shape), 0, 255)
        queries.append(tmp_path / f"q{i}.png")
        Image.fromarray(noisy.astype(np.uint8)).save(queries[-1])
    args = [a for q in queries for a in ("--image", q)]
    ours = json.loads(cli("search", path, *args, "-k", 8, "--json").stdout)
    phone = json.loads(cli("bundle", "query", bundle, *args, "-k", 8, "--json").stdout)
    same_answers(ours, phone)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    proc = cli("search", path, "--image", bad, ok=False)
    assert proc.returncode == 1 and "could not embed the query" in proc.stderr and "\n" not in proc.stderr.strip()
    proc = cli("search", path, "--image", tmp_path / "gone.png", ok=False)
    assert proc.returncode == 1 and "gone.png: no such file" in proc.stderr


def test_searching_by_text_loads_neither_tensorflow_nor_the_task_library(tmp_path):
    """`scannlite search --text` and the Python API embed in device workers; their own process
    only parses the model file."""
    path = tmp_path / "reviews"
    with Catalog.create(path, 16) as cat:
        cat.add([f"r{i}" for i in range(len(SENTENCES))], embed_texts(SENTENCES), SENTENCES)
        build(cat)
    cli("configure", path, "--text-embedder", REGEX_MODEL)
    script = f"""
import contextlib, io, json, sys
from scannlite.cli.app import app
import scannlite as api
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        app(["search", {str(path)!r}, "--text", "a funny film", "-k", "3", "--json"])
    except SystemExit as exc:
        assert not exc.code, exc.code
cli_ids = [h["id"] for h in json.loads(out.getvalue())[0]]
api_ids = [h["id"] for h in api.open({str(path)!r}).search(text="a funny film", k=3)]
loaded = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tflite_support", "tflite_runtime")
          or m.startswith("tensorflow_lite_support.python")]
print(json.dumps({{"same": cli_ids == api_ids, "found": len(cli_ids), "loaded": loaded}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"same": True, "found": 3, "loaded": []}
