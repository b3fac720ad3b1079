"""The Python API (scannlite.plugin.facade.database): open a catalog, add, build, search by vector, text or
image, export; plain dicts and lists, the same answers as the CLI and the exported bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import scannlite
from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle import inspection as bundles
from scannlite.store.errors import InvalidInput
from scannlite.store.images import synthetic_images
from scannlite.store.index import snapshot
from tests.support.datasette_site import REGEX_MODEL, SENTENCES, embed_texts

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.usefixtures("fixtures_dir")]


def test_a_text_catalog_from_creation_to_a_verified_bundle(tmp_path):
    rng = np.random.default_rng(4)
    with scannlite.create(tmp_path / "reviews.catalog", 16, num_leaves=8, leaves_to_search=2) as db:
        assert len(db) == 0 and db.dim == 16 and "reviews.catalog" in repr(db)
        added = db.add_texts(SENTENCES, embedder=REGEX_MODEL, metadata=[{"text": t} for t in SENTENCES])
        assert added == {"added": len(SENTENCES), "updated": 0, "unchanged": 0, "skipped": []}
        base = embed_texts(SENTENCES)
        near = base[rng.integers(0, len(base), 400)] + 0.3 * rng.standard_normal((400, 16))
        got = db.add([{"id": f"n{i}", "vector": v, "metadata": f"near {i}"} for i, v in enumerate(near)])
        assert got["added"] == 400 and got["seq"] is not None
        assert db.add(ids=["n0"], vectors=near[:1], metadata=["near 0"])["unchanged"] == 1
        assert len(db) == 400 + len(SENTENCES) and "n7" in db and db.get("n7")["metadata"] == "near 7"
        assert json.loads(db.get("1")["metadata"]) == {"text": SENTENCES[0]}
        assert db.info()["text_embedder"] == f"tflite-text:{REGEX_MODEL.resolve()}"  # add_texts recorded it

        built = db.build()
        assert built["snapshot"] == 1 and built["published"] and built["count"] == 400 + len(SENTENCES)
        assert db.snapshots()[0]["version"] == 1

        # One query gives its hits; a batch gives one list per query.
        hits = db.search(text="a funny film with a great cast", k=5)
        assert len(hits) == 5 and set(hits[0]) == {"id", "distance", "metadata"}
        with snapshot.Catalog.open(db.path) as cat:
            want = snapshot.search(cat, embed_texts(["a funny film with a great cast"]), k=5)[0]
        assert hits == want
        assert db.search(embed_texts(["a funny film with a great cast"])[0], k=5) == hits
        batch = db.search(text=["a funny film with a great cast", "the worst script"], k=5)
        assert len(batch) == 2 and batch[0] == hits
        assert len(db.search(base[:3], k=2)) == 3
        assert db.search(text="a funny film", k=3, exact=True)[0]["id"]

        # The bundle (packed into the configured text embedder) answers as the catalog does.
        manifest = db.export(tmp_path / "reviews.tflite")
        assert manifest["verified"] and manifest["snapshot"] == 1 and manifest["path"].endswith("reviews.tflite")
        queries = ["a touching love story", "a boring and slow drama", "the music is great"]
        phone = bundles.query(tmp_path / "reviews.tflite", device=DeviceProcesses(), texts=queries, k=10)
        ours = db.search(text=queries, k=10)
        assert [[h["id"] for h in row] for row in ours] == [[m.decode() for m, _ in row] for row in phone]

        assert db.delete(["n1", "n2"])["deleted"] == 2 and "n1" not in db
        assert db.build()["snapshot"] == 2

        with pytest.raises(InvalidInput, match="no image embedder"):
            db.search(image=tmp_path / "x.png")
        with pytest.raises(InvalidInput, match="not both vector and text"):
            db.search(base[0], text="x")
        with pytest.raises(InvalidInput, match='has no "vector"'):
            db.add([{"id": "z", "metadata": "no vector"}])
    with scannlite.open(tmp_path / "reviews.catalog") as again:
        assert len(again) == 400 + len(SENTENCES) - 2


def test_an_image_catalog_searched_by_image_file_or_bytes(tmp_path):
    from tests.support.model_builders import image_model

    weights = np.random.default_rng(3).standard_normal((24, 8 * 8 * 3)).astype(np.float32) / 30
    model = tmp_path / "image_embedder.tflite"
    model.write_bytes(image_model(weights, 8, 8, "uint8"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, im in enumerate(synthetic_images(40, 8, 8, seed=2)):
        Image.fromarray(im).save(photos / f"p{i:02d}.png")
    db = scannlite.create(tmp_path / "photos.catalog", 24)
    assert db.add_images(photos, embedder=model, workers=2)["added"] == 40
    assert db.add_images(photos)["unchanged"] == 40  # the embedder it recorded; nothing changed
    db.configure(thumbnails_root=photos)
    assert db.info()["thumbnails_root"] == str(photos.resolve())
    db.build()
    by_file = db.search(image=photos / "p17.png", k=3)
    assert by_file[0]["id"] == "p17.png" and by_file[0]["distance"] == pytest.approx(-1.0, abs=1e-5)
    assert db.search(image=(photos / "p17.png").read_bytes(), k=3) == by_file
    assert [row[0]["id"] for row in db.search(image=[photos / "p03.png", photos / "p31.png"], k=1)] == [
        "p03.png",
        "p31.png",
    ]
    with pytest.raises(InvalidInput, match="is an image embedder, not a text one"):
        db.configure(text_embedder=model)
    db.close()
