"""add --images/--texts with N workers: the same catalog as with one (same items, order, vectors
and commits), embedded concurrently by warm device workers, with a rate on the progress bar."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scannlite.plugin.embedders.hookspecs import Embedded
from scannlite.plugin.ingest import add as ingest
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.images import synthetic_images
from scannlite.store.workers import boundary

pytestmark = pytest.mark.device


BIN = Path(sys.executable).parent


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i, im in enumerate(synthetic_images(70, 12, 12, seed=8)):
        Image.fromarray(im).save(root / f"p{i:03d}.png")
    (root / "p031-broken.png").write_bytes(b"\x89PNG not really")  # a skip inside a part
    return root


def contents(cat: Catalog, ids: list[str]) -> tuple[list, np.ndarray, int]:
    rows = [cat.get(i) for i in ids]
    items = np.array([r["item"] for r in rows])
    return [(r["id"], r["item"], r["metadata"], r["added_seq"]) for r in rows], cat.vectors_for(items), cat.head_seq


def test_embed_in_chunks_keeps_order_and_runs_parts_at_once():
    inputs = [f"t{i}" for i in range(23)]
    running, most, lock = [0], [0], threading.Lock()

    def embed(items):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        keep = [x for x in items if x != "t5"]
        return Embedded(
            np.array([[float(x[1:])] for x in keep], np.float32).reshape(-1, 1),
            keep,
            [("t5", "odd")] if "t5" in items else [],
        )

    for workers in (1, 3, 8):
        advanced = []
        got = list(ingest.embed_in_chunks(embed, inputs, 10, workers, 1, advanced.append))
        assert [(a, b) for a, b, _ in got] == [(0, 10), (10, 20), (20, 23)]
        assert [k for _, _, e in got for k in e.keys] == [x for x in inputs if x != "t5"]
        assert np.concatenate([e.vectors for _, _, e in got]).ravel().tolist() == [
            float(x[1:]) for x in inputs if x != "t5"
        ]
        assert got[0][2].skipped == [("t5", "odd")] and sum(advanced) == 23
    assert most[0] >= 3  # the parts of a chunk did run at once


def test_a_failing_part_stops_the_ingestion_with_its_error():
    def embed(items):
        if "t12" in items:
            raise ValueError("part failed")
        return Embedded(np.zeros((len(items), 1), np.float32), list(items), [])

    out = ingest.embed_in_chunks(embed, [f"t{i}" for i in range(40)], 10, 4, 1)
    assert next(out)[:2] == (0, 10)
    with pytest.raises(ValueError, match="part failed"):
        next(out)


def test_images_with_n_workers_make_the_same_catalog_as_one(tmp_path, folder, embedder, monkeypatch):
    monkeypatch.setattr(ingest, "CHUNK", 16)  # 5 chunks, each in 3 parts
    ids = [f"p{i:03d}.png" for i in range(70)]
    one = Catalog.create(tmp_path / "one", 24)
    rep1 = ingest.add_images(one, str(folder), embedder, workers=1)
    before = boundary.stats()["started"]["device"]
    three = Catalog.create(tmp_path / "three", 24)
    rep3 = ingest.add_images(three, str(folder), embedder, workers=3)
    assert boundary.stats()["started"]["device"] - before <= 3  # at most one warm worker per thread
    assert (rep1.added, rep1.skipped) == (rep3.added, rep3.skipped) == (70, [("p031-broken.png", rep1.skipped[0][1])])
    rows1, vectors1, seq1 = contents(one, ids)
    rows3, vectors3, seq3 = contents(three, ids)
    assert rows1 == rows3 and seq1 == seq3
    assert np.array_equal(vectors1, vectors3)
    # And the same as embedding each image alone.
    from scannlite.plugin.embedders.registry import embed_images

    alone, _, _ = embed_images(embedder, [folder / ids[40]])
    norm = alone[0] / np.linalg.norm(alone[0])
    np.testing.assert_allclose(vectors3[40], norm, rtol=1e-6, atol=1e-7)


def test_texts_with_n_workers_make_the_same_catalog_as_one(tmp_path, fixtures_dir, monkeypatch):
    from tests.support.datasette_site import REGEX_MODEL, SENTENCES

    monkeypatch.setattr(ingest, "CHUNK", 2)  # texts: 16 per chunk
    texts = tmp_path / "reviews.txt"
    texts.write_text("\n".join(SENTENCES * 2) + "\n")
    ids = [str(n) for n in range(1, 2 * len(SENTENCES) + 1)]
    cats = {}
    for workers in (1, 2):
        cats[workers] = Catalog.create(tmp_path / f"w{workers}", 16)
        rep = ingest.add_texts(cats[workers], texts, REGEX_MODEL, workers=workers)
        assert rep.added == 2 * len(SENTENCES)
    rows1, vectors1, seq1 = contents(cats[1], ids)
    rows2, vectors2, seq2 = contents(cats[2], ids)
    assert rows1 == rows2 and seq1 == seq2 and len({r[3] for r in rows1}) == 5  # one commit per chunk
    assert np.array_equal(vectors1, vectors2)


@pytest.mark.slow
def test_the_cli_takes_workers_and_the_progress_bar_shows_a_rate(tmp_path, folder, embedder):
    cat = tmp_path / "c"
    Catalog.create(cat, 24).close()
    proc = subprocess.run(
        [
            str(BIN / "scannlite"),
            "add",
            str(cat),
            "--images",
            str(folder),
            "--embedder",
            str(embedder),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "added 70" in proc.stdout and "skipped 1 unreadable" in proc.stdout
    proc = subprocess.run(
        [
            str(BIN / "scannlite"),
            "add",
            str(cat),
            "--images",
            str(folder),
            "--embedder",
            str(embedder),
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "--workers" in proc.stderr

    from rich.console import Console

    from scannlite.cli.common import RichProgress

    out = io.StringIO()
    bar = RichProgress(enabled=True, console=Console(file=out, force_terminal=True, width=120))
    with bar.task("embedding 40 images", total=40, unit="images") as advance:
        for _ in range(4):
            time.sleep(0.15)
            advance(10)
        bar_text = out.getvalue()
    assert "images/s" in bar_text
