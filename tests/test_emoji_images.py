"""The five-style emoji set of bench/emoji_images.py (docs/queries.md, table (c)): its codepoint matching, the
emoji.json reading and the framing, on small hand-made inputs (the npm packages are not needed here)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench import emoji_images as E


def test_a_sequence_key_drops_variation_selectors_and_ignores_case_and_the_png_suffix():
    assert E.sequence_key("2764-FE0F") == E.sequence_key("2764") == E.sequence_key("2764-fe0f.png") == (0x2764,)
    assert E.sequence_key("1F468-200D-1F469-200D-1F467") == (0x1F468, 0x200D, 0x1F469, 0x200D, 0x1F467)
    assert E.sequence_key("0023-FE0F-20E3") == (0x23, 0x20E3)
    for bad in ("", "FE0F", "1F600--1F3FB", "hello", "1F600-1234567", "1F6 00"):
        with pytest.raises(ValueError, match="not a codepoint sequence"):
            E.sequence_key(bad)


EMOJI_JSON = [
    {
        "unified": "1F385",
        "image": "1f385.png",
        "has_img_google": True,
        "has_img_apple": False,
        "skin_variations": {
            "1F3FB": {"unified": "1F385-1F3FB", "image": "1f385-1f3fb.png", "has_img_google": True},
            "1F3FC": {"unified": "1F385-1F3FC", "image": "1f385-1f3fc.png", "has_img_google": False},
        },
    },
    {"unified": "2764-FE0F", "image": "2764-fe0f.png", "has_img_google": True, "has_img_apple": True},
    {"unified": "1FAE8", "image": "1fae8.png", "has_img_google": "yes"},  # not true: not drawn
]


def test_a_style_draws_only_what_emoji_json_says_it_has_skin_tones_included():
    google = E.style_images("google", EMOJI_JSON)
    assert [i.unified for i in google] == ["1F385", "1F385-1F3FB", "2764-FE0F"]
    assert [i.file for i in E.style_images("apple", EMOJI_JSON)] == ["2764-fe0f.png"]
    assert E.style_images("twitter", EMOJI_JSON) == []


def test_style_images_match_openmoji_by_codepoints_and_an_ambiguous_openmoji_set_is_refused():
    google = E.style_images("google", EMOJI_JSON)
    matched = E.match(["1F385.png", "2764.png", "1F600.png"], google)
    assert {i.unified: oid for i, oid in matched.items()} == {"1F385": "1F385.png", "2764-FE0F": "2764.png"}
    with pytest.raises(ValueError, match="same codepoint sequence"):
        E.match(["2764.png", "2764-FE0F.png"], google)


def test_a_glyph_is_framed_as_the_demo_frames_openmoji_cropped_centred_on_white():
    glyph = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    glyph.paste(Image.new("RGBA", (20, 10), (255, 0, 0, 255)), (5, 40))  # off-centre, wide
    rgb = E.frame(glyph, size=96)
    assert rgb.shape == (96, 96, 3) and rgb.dtype == np.uint8
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60)
    rows, cols = np.nonzero(red)
    # the ink fills the square's width but the margin (1 / 1.08 of the side), centred both ways
    assert 80 <= cols.max() - cols.min() + 1 <= 90 and abs((cols.min() + cols.max()) / 2 - 47.5) <= 1.5
    assert abs((rows.min() + rows.max()) / 2 - 47.5) <= 1.5 and 38 <= rows.max() - rows.min() + 1 <= 48
    assert (rgb[0, 0] == 255).all() and (rgb[-1, -1] == 255).all()  # transparency became white
    with pytest.raises(ValueError, match="fully transparent"):
        E.frame(Image.new("RGBA", (8, 8), (0, 0, 0, 0)))


def test_missing_packages_are_one_line_naming_the_make_target(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "PACKAGES", tmp_path)
    with pytest.raises(SystemExit, match=r"emoji-datasource-google is not installed in .*make bench-emoji-styles"):
        E.package_dir("google")


def test_an_emoji_json_entry_naming_a_path_or_no_codepoints_is_refused():
    def entry(**changes):
        return [{"unified": "1F600", "image": "1f600.png", "has_img_google": True, **changes}]

    with pytest.raises(ValueError, match="not a PNG file name"):
        E.style_images("google", entry(image="../../secret.png"))
    with pytest.raises(ValueError, match="not a codepoint sequence"):
        E.style_images("google", entry(unified="../1F600"))
    with pytest.raises(ValueError, match="has no unified or image name"):
        E.style_images("google", entry(image=None))
    assert E.style_images("twitter", entry(image="../../secret.png")) == []  # not drawn by twitter: not read
