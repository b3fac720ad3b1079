"""scannlite embed: images to Parquet shards on warm local workers or on a local Ray; both give
the vectors `add --images` gives, bit for bit, and `add CATALOG SHARDS/` ingests them."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from scannlite.plugin.ingest import add as ingest
from scannlite.plugin.ingest import embed_job
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.images import synthetic_images
from tests.support.shared_fixtures import tflite_fixture

pytestmark = pytest.mark.device

REGEX_MODEL = "regex_one_embedding_with_metadata.tflite"  # Google's text embedder (a fixture)
SCANNLITE = str(Path(sys.executable).with_name("scannlite"))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "trips").mkdir(parents=True)
    for i, im in enumerate(synthetic_images(30, 12, 12, seed=8)):
        Image.fromarray(im).save(root / ("trips" if i % 3 == 0 else ".") / f"p{i:03d}.png")
    (root / "p005-broken.png").write_bytes(b"\x89PNG not really")
    return root


def shards(path: Path) -> dict:
    """id -> (embedding as float32 bytes, metadata, source_hash)."""
    t = pq.read_table(path)
    emb = np.asarray(t.column("embedding").combine_chunks().flatten().to_numpy(), np.float32).reshape(t.num_rows, -1)
    return {
        i: (emb[n].tobytes(), m, h)
        for n, (i, m, h) in enumerate(
            zip(t.column("id").to_pylist(), t.column("metadata").to_pylist(), t.column("source_hash").to_pylist())
        )
    }


def catalog_rows(cat: Catalog) -> dict:
    rows = cat._conn.execute("SELECT id, item, metadata, source_hash FROM items WHERE removed_seq IS NULL").fetchall()
    vectors = cat.vectors_for(np.asarray([r[1] for r in rows]))
    return {r[0]: (vectors[n].astype(np.float32).tobytes(), r[2], r[3]) for n, r in enumerate(rows)}


def no_leftovers(tmp_path: Path) -> bool:
    return not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_local_engine_equals_add_images(tmp_path, folder, embedder):
    rep = embed_job.embed_images(str(folder), embedder, tmp_path / "shards", workers=2, batch=8)
    assert (rep.images, rep.embedded) == (31, 30) and rep.shards == 4
    assert [ident for ident, _ in rep.skipped] == ["p005-broken.png"]
    direct = Catalog.create(tmp_path / "direct", 24, normalize=False)
    ingest.add_images(direct, str(folder), embedder, workers=1)
    got = shards(tmp_path / "shards")
    assert got == catalog_rows(direct)  # same ids, vectors (bit for bit), metadata and file hashes
    via = Catalog.create(tmp_path / "via", 24, normalize=False)
    r = via.add_file(tmp_path / "shards")
    assert r.added == 30 and via.head_seq == 2  # one commit for the whole directory
    assert {i: v[:2] for i, v in catalog_rows(via).items()} == {i: v[:2] for i, v in got.items()}
    assert no_leftovers(tmp_path)


def test_manifest_with_relative_paths_ids_and_metadata(tmp_path, folder, embedder):
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "id", "metadata"])
        w.writerow(["photos/p001.png", "007", "1e3"])  # text as written, not numbers
        w.writerow([str(folder / "trips" / "p000.png"), "zero", "second"])
        w.writerow(["photos/missing.png", "gone", "x"])
        w.writerow(["https://example.invalid/a.png", "web", "y"])  # a scheme pyarrow has no filesystem for
    rep = embed_job.embed_images(str(tmp_path / "manifest.csv"), embedder, tmp_path / "m", workers=1)
    got = shards(tmp_path / "m")
    assert sorted(got) == ["007", "zero"] and got["007"][1] == "1e3"
    assert [i for i, _ in rep.skipped] == ["gone", "web"] and all("unreadable" in why for _, why in rep.skipped)
    loose = shards_of_folder(tmp_path, folder, embedder)
    assert got["007"][0] == loose["p001.png"][0] and got["zero"][0] == loose["trips/p000.png"][0]
    (tmp_path / "noid.csv").write_text("path,id\nphotos/p001.png,\n")
    with pytest.raises(InvalidInput, match="row 0: the id is empty"):
        embed_job.embed_images(str(tmp_path / "noid.csv"), embedder, tmp_path / "n")


def shards_of_folder(tmp_path, folder, embedder):
    embed_job.embed_images(str(folder), embedder, tmp_path / "loose", workers=1)
    return shards(tmp_path / "loose")


def test_bad_requests_are_refused_with_nothing_written(tmp_path, folder, embedder):
    (tmp_path / "taken").mkdir()
    with pytest.raises(InvalidInput, match="already exists"):
        embed_job.embed_images(str(folder), embedder, tmp_path / "taken")
    with pytest.raises(InvalidInput, match="use it with --engine ray"):
        embed_job.embed_images(str(folder), embedder, tmp_path / "a", address="ray://nowhere:1")
    with pytest.raises(InvalidInput, match="unknown engine 'spark'"):
        embed_job.embed_images(str(folder), embedder, tmp_path / "a", engine="spark")
    with pytest.raises(InvalidInput, match="is a text embedder, not an image one; scannlite embed takes image"):
        embed_job.embed_images(str(folder), tflite_fixture(REGEX_MODEL), tmp_path / "a")
    (tmp_path / "bad.csv").write_text("file\nx.png\n")
    with pytest.raises(InvalidInput, match="no 'path' column"):
        embed_job.embed_images(str(tmp_path / "bad.csv"), embedder, tmp_path / "a")
    with pytest.raises(InvalidInput, match="no images at"):
        embed_job.embed_images(str(tmp_path / "nowhere"), embedder, tmp_path / "a")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"not an image")
    with pytest.raises(InvalidInput, match="none of the 1 images could be embedded"):
        embed_job.embed_images(str(bad), embedder, tmp_path / "a")
    assert not (tmp_path / "a").exists() and no_leftovers(tmp_path)
    proc = subprocess.run(
        [SCANNLITE, "embed", str(folder), "--embedder", str(embedder), "--out", "/proc/no/such"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "cannot write /proc/no/such" in proc.stderr
    proc = subprocess.run(
        [SCANNLITE, "embed", str(folder), "--embedder", str(embedder), "--out", str(tmp_path / "taken")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "already exists" in proc.stderr


@pytest.mark.slow
def test_ray_engine_equals_local_engine(tmp_path, folder, embedder):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'scannlite[ray]')")
    proc = subprocess.run(
        [
            SCANNLITE,
            "embed",
            str(folder),
            "--embedder",
            str(embedder),
            "--out",
            str(tmp_path / "ray"),
            "--engine",
            "ray",
            "--workers",
            "2",
            "--batch",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "embedded 30 of 31 images" in proc.stdout and "skipped p005-broken.png" in proc.stdout
    local = embed_job.embed_images(str(folder), embedder, tmp_path / "local", workers=1)
    assert local.embedded == 30
    assert shards(tmp_path / "ray") == shards(tmp_path / "local")  # bit for bit, with metadata and hashes
    cat = Catalog.create(tmp_path / "cat", 24, normalize=False)
    assert cat.add_file(tmp_path / "ray").added == 30
    assert no_leftovers(tmp_path)
