"""The one image decoder (store/images.py): the pixels ingestion, probes, `bundle query --image`
and the Datasette search form all see."""

import warnings

import numpy as np
import pytest
from PIL import Image

from scannlite.store import images
from scannlite.store.errors import InvalidInput
from scannlite.store.images import ImageSkipped, load_rgb, open_image


def left_red_right_blue(tmp_path, orientation: int | None, suffix=".png"):
    """A 4x2 picture, red on the left half and blue on the right, with an EXIF orientation."""
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[:, :2], pixels[:, 2:] = (255, 0, 0), (0, 0, 255)
    im = Image.fromarray(pixels)
    exif = im.getexif()
    if orientation is not None:
        exif[0x0112] = orientation
    path = tmp_path / f"photo-{orientation}{suffix}"
    im.save(path, exif=exif.tobytes(), **({"quality": 100} if suffix == ".jpg" else {}))
    return path


def test_every_caller_uses_the_same_decoder():
    from scannlite.plugin.dual_encoder import images as encoder_images

    assert encoder_images.load_rgb is load_rgb and encoder_images.ImageSkipped is ImageSkipped
    assert encoder_images.DEFAULT_MAX_PIXELS == images.DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_the_exif_orientation_is_applied(tmp_path, suffix):
    upright = load_rgb(left_red_right_blue(tmp_path, None, suffix))
    assert upright.shape == (2, 4, 3) and upright[0, 0, 0] > 200 and upright[0, 3, 2] > 200
    turned = load_rgb(left_red_right_blue(tmp_path, 6, suffix))  # "rotate 90 degrees clockwise to view"
    assert turned.shape == (4, 2, 3)
    assert (turned[:2, :, 0] > 200).all() and (turned[2:, :, 2] > 200).all()  # red on top, blue below


def test_transparency_is_composited_over_white_and_bytes_decode_like_files(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[:2, :, 3], rgba[2:, :, 3] = 255, 0, 255  # red: transparent top, opaque bottom
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    got = load_rgb(tmp_path / "rgba.png")
    assert (got[:2] == 255).all() and (got[2:] == (255, 0, 0)).all()
    assert np.array_equal(load_rgb((tmp_path / "rgba.png").read_bytes()), got)
    Image.new("LA", (3, 3), (0, 0)).save(tmp_path / "la.png")
    assert (load_rgb(tmp_path / "la.png") == 255).all()


def test_oversized_images_are_refused_without_touching_pillows_global(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    Image.new("1", (9000, 9000)).save(tmp_path / "huge.png")  # 81 Mpx, a few kB on disk
    Image.new("RGB", (100, 100)).save(tmp_path / "small.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(ImageSkipped, match=r"^too large \(9000x9000 pixels, limit 50,000,000\)$"):
            load_rgb(tmp_path / "huge.png")
        with pytest.raises(ImageSkipped, match=r"too large \(100x100 pixels, limit 9,999\)"):
            load_rgb(tmp_path / "small.png", max_pixels=9_999)
        assert load_rgb(tmp_path / "small.png", max_pixels=10_000).shape == (100, 100, 3)
        with pytest.raises(ImageSkipped, match="too large"):
            with open_image((tmp_path / "huge.png").read_bytes()):
                pass
        assert load_rgb(tmp_path / "huge.png", max_pixels=100_000_000).shape == (9000, 9000, 3)
        Image.new("1", (10_000, 9_500)).save(tmp_path / "over_pillow.png")  # over Pillow's warning level
        with open_image(tmp_path / "over_pillow.png", max_pixels=100_000_000) as im:
            assert im.size == (10_000, 9_500)  # our limit rules, silently
    assert Image.MAX_IMAGE_PIXELS == before


def test_bad_files_are_refused_with_a_reason(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (1, 5)).save(tmp_path / "thin.png")
    expected = {
        "notes.png": "not an image Pillow can read (unknown image format)",
        "cut.jpg": "unreadable (",
        "thin.png": "too small (1x5 pixels",
        "gone.png": "missing file",
    }
    for name, reason in expected.items():
        with pytest.raises(ImageSkipped) as caught:
            load_rgb(tmp_path / name)
        assert str(caught.value).startswith(reason) and "\n" not in str(caught.value)
        assert isinstance(caught.value, (InvalidInput, ValueError))  # store callers catch either
    with pytest.raises(ImageSkipped, match="not a file"):
        load_rgb(tmp_path)
    with pytest.raises(ImageSkipped, match="unknown image format"):
        load_rgb(b"\x00" * 100)


def test_the_search_form_and_probes_see_the_decoders_pixels(tmp_path):
    from scannlite.plugin.integrations.datasette_plugin.queries import BadQuery, decode_image

    photo = left_red_right_blue(tmp_path, 6)
    assert np.array_equal(decode_image(photo.read_bytes()), load_rgb(photo))
    with pytest.raises(BadQuery, match="^the uploaded file is not an image Pillow can read"):
        decode_image(b"nonsense")
    probes = images.load_probe_images(tmp_path, 10)
    assert len(probes) == 1 and np.array_equal(probes[0], load_rgb(photo))
