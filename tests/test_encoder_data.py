"""Data for the dual encoder: OpenMoji captions/renders/split, the COCO loader, safe image reading."""

import json
import time

import numpy as np
import pytest
from PIL import Image

from scannlite.plugin.dual_encoder import coco, openmoji
from scannlite.plugin.dual_encoder.captions import caption_for, codepoints
from scannlite.plugin.dual_encoder.datasets import load_dataset, parse_spec
from scannlite.plugin.dual_encoder.images import ImageSkipped, load_rgb
from scannlite.plugin.embedders.errors import EncoderError
from tests.support.tiny_coco import make_tiny_coco

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "stem, caption",
    [
        ("1F34E", "red apple"),
        ("1F1EB-1F1F7", "flag fr"),
        ("1F44D-1F3FD", "thumbs up sign medium skin tone"),
        ("0023-FE0F-20E3", "number sign keycap"),
        ("1F468-200D-1F469-200D-1F467", "man woman girl"),
        ("1F3F4-E0067-E0062-E0065-E006E-E0067-E007F", "waving black flag gbeng"),
        ("E000", None),
    ],
)
def test_openmoji_captions_from_unicode_names(stem, caption):
    assert caption_for(codepoints(stem)) == caption


def test_openmoji_catalogue_split_and_cached_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNLITE_CACHE_DIR", str(tmp_path))
    stems, captions, skipped = openmoji.catalogue()
    assert len(stems) > 3900 and len(skipped) > 100  # 4,024 named of 4,495 files here
    assert all(c == c.lower() and "  " not in c for c in captions)
    images, caps, keys, held_out, reasons = openmoji.load(32)
    assert images.shape == (len(stems), 32, 32, 3) and images.dtype == np.uint8
    assert 0.07 < held_out.mean() < 0.13  # fixed ~10% split
    assert [openmoji.is_held_out(k) for k in keys] == list(held_out)  # deterministic, by name
    assert (images.reshape(len(images), -1).min(axis=1) < 200).mean() > 0.99  # glyphs drawn, not blank
    apple = keys.index("1F34E")
    assert caps[apple] == "red apple"
    r, g, b = images[apple].reshape(-1, 3).astype(int).T
    assert ((r > 150) & (g < 110) & (b < 110)).sum() > 50  # drawn in colour (COLRv0)
    assert len(reasons) == len(skipped) and "no name" in reasons[0][1]
    assert list(tmp_path.glob("openmoji-*-32px.npz"))
    t0 = time.perf_counter()
    again = openmoji.load(32)[0]
    assert time.perf_counter() - t0 < 2.0 and np.array_equal(again, images)


def test_coco_loader_reports_missing_truncated_and_uncaptioned(tmp_path):
    ann = make_tiny_coco(tmp_path, n=12, missing=1, truncated=1, uncaptioned=1)
    images, captions, files, held_out, skipped = coco.load(tmp_path, 24)  # the folder form finds the JSON
    assert images.shape == (12, 24, 24, 3)
    assert len(captions) == 12 and all(len(c) == 2 for c in captions)
    reasons = dict(skipped)
    assert reasons["missing_0.png"] == "missing file"
    assert reasons["truncated_0.jpg"].startswith("unreadable")
    assert "uncaptioned_0.png" not in files  # no caption: not a training pair
    data = load_dataset(f"coco:{ann}", 24)
    assert data.held_out.any() and not data.held_out.all()
    assert len(data.skipped) == 2


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "not valid JSON"),
        ("[]", "not a COCO captions file"),
        (json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": []}), "has no captions"),
        (
            json.dumps(
                {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 1, "caption": "   "}]}
            ),
            "has no captions",
        ),
    ],
)
def test_bad_caption_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "captions_val.json"
    path.write_text(content)
    with pytest.raises(EncoderError, match=message) as err:
        coco.load(path, 32)
    assert "\n" not in str(err.value)


def test_dataset_spec():
    assert parse_spec("openmoji") == ("openmoji", None)
    assert parse_spec("coco:/data/captions.json") == ("coco", "/data/captions.json")
    with pytest.raises(EncoderError, match="unknown dataset"):
        parse_spec("imagenet")


def test_images_become_rgb_and_bad_files_are_skips(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "rgba.png")
    Image.new("L", (8, 6), 128).save(tmp_path / "grey.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("P", (8, 8), 3).save(tmp_path / "palette.png")
    Image.new("I;16", (8, 8), 4000).save(tmp_path / "grey16.png")
    assert (load_rgb(tmp_path / "rgba.png") == 255).all()  # composited over white
    assert load_rgb(tmp_path / "grey.png").shape == (6, 8, 3)
    cmyk = load_rgb(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (8, 8, 3) and cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60
    assert load_rgb(tmp_path / "palette.png").shape == (8, 8, 3)
    assert load_rgb(tmp_path / "grey16.png").dtype == np.uint8

    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    Image.new("1", (9000, 9000)).save(tmp_path / "huge.png")  # 81 Mpx, a few kB on disk
    expected = {"notes.png": "not an image", "cut.jpg": "unreadable", "huge.png": "too large", "gone.png": "missing"}
    for name, reason in expected.items():
        with pytest.raises(ImageSkipped, match=reason):
            load_rgb(tmp_path / name)
