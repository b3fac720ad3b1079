"""add --images / --texts: embedding files into a catalog with a Task Library embedder."""

import json

import pytest
from PIL import Image

from scannlite.plugin.ingest import add as ingest
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.images import synthetic_images

pytestmark = pytest.mark.device


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "trips").mkdir(parents=True)
    imgs = synthetic_images(12, 16, 16, seed=4)
    for i, im in enumerate(imgs[:8]):
        Image.fromarray(im).save(root / ("trips" if i % 2 else ".") / f"p{i}.png")
    Image.fromarray(imgs[8]).convert("L").save(root / "grey.png")
    Image.fromarray(imgs[9]).convert("RGBA").save(root / "alpha.png")
    Image.fromarray(imgs[10]).convert("CMYK").save(root / "print.jpg")
    Image.fromarray(imgs[11]).convert("P").save(root / "palette.gif")
    data = (root / "p0.png").read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "garbage.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "notes.txt").write_text("not an image, not even looked at")
    return root


def test_images_are_embedded_converted_and_bad_files_skipped(tmp_path, folder, embedder):
    cat = Catalog.create(tmp_path / "c", 24)
    rep = ingest.add_images(cat, str(folder), embedder)
    assert rep.added == 12 and {name for name, _ in rep.skipped} == {"truncated.png", "garbage.jpg"}
    assert cat.get("trips/p1.png")["metadata"] == "trips/p1.png"  # the relative path by default
    for ident in ("grey.png", "alpha.png", "print.jpg", "palette.gif"):
        assert cat.get(ident) is not None
    # Ingesting recorded the embedder and the image root for the search page.
    assert Catalog.open(cat.path).settings["image_embedder"] == f"tflite-image:{embedder.resolve()}"


def test_rerun_skips_unchanged_files_and_updates_changed_ones(tmp_path, folder, embedder):
    cat = Catalog.create(tmp_path / "c", 24)
    ingest.add_images(cat, str(folder), embedder)
    seq = cat.head_seq
    again = ingest.add_images(cat, str(folder), embedder)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 12)
    Image.fromarray(synthetic_images(1, 16, 16, seed=99)[0]).save(folder / "p0.png")
    third = ingest.add_images(cat, str(folder), embedder)
    assert (third.added, third.updated, third.unchanged) == (0, 1, 11)
    assert cat.head_seq > seq


def test_sidecar_metadata_and_globs(tmp_path, folder, embedder):
    (tmp_path / "meta.jsonl").write_text(
        "\n".join(json.dumps({"id": f"p{i}.png", "metadata": f"photo {i}"}) for i in range(0, 8, 2))
    )
    cat = Catalog.create(tmp_path / "c", 24)
    ingest.add_images(cat, str(folder / "*.png"), embedder, tmp_path / "meta.jsonl")
    assert cat.get("p2.png")["metadata"] == "photo 2" and cat.get("grey.png")["metadata"] == "grey.png"
    assert cat.get("trips/p1.png") is None  # the glob does not recurse
    (tmp_path / "meta.csv").write_text("path,metadata\ntrips/p1.png,a trip\n")
    cat2 = Catalog.create(tmp_path / "c2", 24)
    ingest.add_images(cat2, str(folder), embedder, tmp_path / "meta.csv")
    assert cat2.get("trips/p1.png")["metadata"] == "a trip"


def test_huge_images_are_skipped_not_decoded(tmp_path, embedder):
    root = tmp_path / "big"
    root.mkdir()
    Image.new("RGB", (9000, 9000), (10, 20, 30)).save(root / "huge.png")
    Image.fromarray(synthetic_images(1, 8, 8)[0]).save(root / "small.png")
    from scannlite.plugin.embedders import registry as embedders

    vectors, done, skipped = embedders.embed_images(
        embedder, [root / "huge.png", root / "small.png"], max_pixels=10_000_000
    )
    assert len(done) == 1 and skipped and "huge.png" in skipped[0][0]


def test_bad_ingestion_inputs(tmp_path, folder, embedder, fixtures_dir):
    cat = Catalog.create(tmp_path / "c", 16)
    with pytest.raises(InvalidInput, match="no images at"):
        ingest.add_images(cat, str(tmp_path / "nowhere"), embedder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no image files"):
        ingest.add_images(cat, str(tmp_path / "empty"), embedder)
    (tmp_path / "captions.txt").write_text("\n\n")
    with pytest.raises(InvalidInput, match="holds no text"):
        ingest.add_texts(cat, tmp_path / "captions.txt", fixtures_dir / "regex_one_embedding_with_metadata.tflite")
    with pytest.raises(InvalidInput, match="no such file"):
        ingest.add_texts(cat, tmp_path / "captions.txt", tmp_path / "missing.tflite")
    assert cat.count() == 0


def test_texts_are_embedded_with_the_text_embedder(tmp_path, fixtures_dir):
    model = fixtures_dir / "regex_one_embedding_with_metadata.tflite"
    (tmp_path / "captions.txt").write_text("The weather was excellent.\nIt was a sunny day.\n\nThe cat sat.\n")
    cat = Catalog.create(tmp_path / "c", 16)
    rep = ingest.add_texts(cat, tmp_path / "captions.txt", model)
    assert rep.added == 3 and cat.get("4")["metadata"] == "The cat sat."
    again = ingest.add_texts(cat, tmp_path / "captions.txt", model)
    assert again.unchanged == 3
    from scannlite.store.index import snapshot
    from scannlite.store.index.build import build

    build(cat)
    from scannlite.plugin.embedders.registry import embed_texts

    q = embed_texts(model, ["It was a sunny day."])
    assert snapshot.search(cat, q, k=1)[0][0]["id"] == "2"
