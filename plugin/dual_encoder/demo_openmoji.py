"""``scannlite demo``: Google's TFLite Searcher recipe, offline, on OpenMoji.

1. train a dual encoder on OpenMoji's emoji and their Unicode names (MiniLM and
   EfficientNet-Lite0, both frozen, with trained projections; or reuse the model a previous run made); 2. convert both towers to Task Library models; 3. embed every emoji
   image into a catalog and build partitions; 4. export a text searcher and an image searcher
   bundle, both verified by the Task Library; 5. run text queries through TextSearcher and an
   image query through ImageSearcher, print the ranked results and draw them (HTML page and
   PNG contact sheet). Every step reuses what an earlier run made, so a re-run takes seconds.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.plugin.integrations import search_page
from scannlite.store.bundle import inspection as bundles
from scannlite.store.bundle.export import export
from scannlite.store.bundle.ondevice.tflite_modules import embedder_runtime
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.digests import sha256
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.snapshot import get_snapshot
from scannlite.store.progress import SILENT, Progress

DEVICE = DeviceProcesses()

QUERIES = [
    "red apple",
    "smiling cat",
    "airplane",
    "red heart",
    "rain cloud",
    "flag of japan",
    "birthday cake",
    "dog face",
]
IMAGE_PX = 96
# The demo's image tower: EfficientNet-Lite0 (ImageNet, frozen) + a trained projection, which
# retrieves emoji it never saw better than the small CNN from scratch (docs/quality.md).
# The head trains on cached features, so a lower learning rate for longer costs seconds.
IMAGE_TOWER: dict[str, Any] = {
    "image_backbone": "efficientnet_lite0",
    "image_size": 224,
    "learning_rate": 5e-4,
    "epochs": 40,
}
TOP = 8
# The text tower ships in the text bundle: weight-only int8 makes it a quarter of float32's size
# within the quality rule of docs/quality.md (at most 0.01 recall@10 lost through the bundle).
TEXT_QUANTIZATION = "int8-weights"


def _say_step(say, n: int, text: str) -> None:
    say(f"{n}. {text}")


def _model(out: Path, say, console, epochs: int | None) -> Path:
    from scannlite.plugin.dual_encoder import jobs, modeldir
    from scannlite.plugin.embedders.errors import EncoderError

    model = out / "model"
    try:
        settings = modeldir.read_marker(model)["settings"]
        # A model from before the demo's image tower changed is retrained, not reused.
        if all(settings.get(k) == IMAGE_TOWER[k] for k in ("image_backbone", "image_size")):
            _say_step(say, 1, f"reusing the dual encoder in {model}")
            return model
    except EncoderError:
        pass
    t = time.perf_counter()
    summary = jobs.train(
        "openmoji", model, console=console, **{**IMAGE_TOWER, **({"epochs": epochs} if epochs else {})}
    )
    last = (summary.get("history") or [{}])[-1]
    _say_step(
        say,
        1,
        f"trained the dual encoder on OpenMoji in {time.perf_counter() - t:.0f} s "
        f"(held-out caption->image recall@5 {last.get('recall@5', float('nan')):.3f})",
    )
    return model


def _towers(model: Path, out: Path, say) -> tuple[Path, Path]:
    from scannlite.plugin.dual_encoder import jobs

    towers = out / "towers"
    text, image = towers / "text_embedder.tflite", towers / "image_embedder.tflite"
    marker = model / "scannlite-dual-encoder.json"
    made_as = towers / "text_quantization.txt"
    if (
        text.is_file()
        and image.is_file()
        and text.stat().st_mtime >= marker.stat().st_mtime
        and made_as.is_file()
        and made_as.read_text().strip() == TEXT_QUANTIZATION
    ):
        _say_step(say, 2, f"reusing the converted towers in {towers}")
        return text, image
    t = time.perf_counter()
    r = jobs.convert(model, towers, text_quantization=TEXT_QUANTIZATION)
    made_as.write_text(TEXT_QUANTIZATION + "\n")
    p = r.get("parity", {})
    _say_step(
        say,
        2,
        f"converted both towers in {time.perf_counter() - t:.0f} s (text tower {r['text_quantization']}, "
        f"{r['text_bytes'] / 1e6:.1f} MB); {embedder_runtime()} vs Keras cosine "
        f"text {p.get('text', float('nan')):.6f}, image {p.get('image', float('nan')):.6f}",
    )
    return text, image


def _emoji_files(out: Path) -> tuple[Path, Path, dict[str, str]]:
    """PNG files of every named emoji, and a sidecar of captions (written once)."""
    from PIL import Image

    from scannlite.plugin.dual_encoder import openmoji

    folder, sidecar = out / "openmoji", out / "openmoji-captions.jsonl"
    images, captions, stems, _, _ = openmoji.load(IMAGE_PX)
    names = {f"{s}.png": c for s, c in zip(stems, captions)}
    if not sidecar.is_file() or len(list(folder.glob("*.png"))) != len(stems):
        folder.mkdir(parents=True, exist_ok=True)
        for img, stem in zip(images, stems):
            Image.fromarray(img).save(folder / f"{stem}.png", optimize=False)
        sidecar.write_text(
            "".join(json.dumps({"id": f"{s}.png", "metadata": c}) + "\n" for s, c in zip(stems, captions))
        )
    return folder, sidecar, names


def _catalog(out: Path, image_embedder: Path, text_embedder: Path, say, progress) -> Catalog:
    from scannlite.plugin.ingest import add as ingest

    folder, sidecar, _ = _emoji_files(out)
    path = out / "emoji.catalog"
    # Ingest skips files whose bytes it has seen, whatever model embedded them: a catalog made
    # by an earlier image tower is rebuilt, or new text queries would meet old image vectors.
    made_by = out / "emoji.catalog.image-embedder.sha256"
    digest = sha256(image_embedder.read_bytes())
    if path.exists() and (not made_by.is_file() or made_by.read_text().strip() != digest):
        import shutil

        shutil.rmtree(path)
        for manifest in out.glob("emoji_*_searcher.manifest.json"):
            manifest.unlink()  # their bundles hold the old catalog's index: export again
        say(f"   {path.name} was embedded by another image tower: embedding it again")
    made_by.write_text(digest + "\n")
    cat = (
        Catalog.open(path)
        if (path / "catalog.db").is_file()
        else Catalog.create(path, 128, "dot", index=IndexConfig(num_leaves=64, leaves_to_search=6))
    )
    rep = ingest.add_images(cat, str(folder), image_embedder, sidecar, progress=progress)
    _say_step(say, 3, f"catalog {path}: {rep.line()}")
    with cat.writing():
        with cat.transaction():
            cat.set_setting("text_embedder", str(text_embedder.resolve()))
    r = build(cat, progress=progress)
    say("   " + "\n   ".join(r.lines()))
    return cat


def _verified(manifest: dict) -> str:
    """Who verified an export: the Task Library and libscannlite on 3.11, libscannlite alone where
    tflite-support cannot install (docs/python-versions.md)."""
    names = ["the Task Library" if v.startswith("task-library") else v for v in manifest.get("verified_by") or []]
    return " and ".join(names) or "the Task Library"


def _bundle(cat: Catalog, embedder: Path, out: Path, probe: Path | None, say, progress) -> Path:
    """Export unless the bundle beside its manifest already holds this snapshot and embedder."""
    manifest_path = out.with_suffix(".manifest.json")
    latest = get_snapshot(cat, None).version
    if out.is_file() and manifest_path.is_file():
        m = json.loads(manifest_path.read_text())
        if (
            m.get("snapshot") == latest
            and m.get("embedder", {}).get("sha256") == sha256(embedder.read_bytes())
            and m.get("sha256", {}).get("file") == sha256(out.read_bytes())
        ):
            say(f"   reusing {out.name} (snapshot {latest}, verified when it was exported)")
            return out
    r = export(cat, device=DEVICE, out=out, embedder=embedder, probe=probe, progress=progress)
    m = r.manifest
    say(
        f"   exported {out.name}: {m['sizes']['file']:,} bytes, {m['items']} items, {m['leaves']} leaves, "
        f"{m['leaves_searched']} searched; {_verified(m)} matched scannlite on {m['parity']['queries']} queries"
    )
    return out


def _draw(
    out: Path, folder: Path, names: dict[str, str], results: list[tuple[str, list[tuple[str, float]]]]
) -> tuple[Path, Path]:
    from PIL import Image, ImageDraw, ImageFont

    rows = []
    for label, hits in results:
        cells = "".join(
            f'<figure><img src="openmoji/{html.escape(i)}" width="{IMAGE_PX}" height="{IMAGE_PX}" alt="">'
            f"<figcaption>{html.escape(names.get(i, i))}<br><small>{d:+.3f}</small></figcaption></figure>"
            for i, d in hits
        )
        rows.append(f"<section><h2>{html.escape(label)}</h2><div class=row>{cells}</div></section>")
    page = out / "index.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>scannlite demo: OpenMoji searched on a phone's terms</title>"
        "<style>body{font-family:sans-serif;margin:2em}.row{display:flex;gap:12px;flex-wrap:wrap}"
        "figure{margin:0;width:110px;text-align:center;font-size:12px}h2{font-size:16px;margin:1.2em 0 .4em}</style>"
        "<h1>What a phone returns</h1><p><a href='search.html?images=openmoji/&amp;labels=emoji_names.json'>Search the text bundle in this browser, offline</a> "
        "(search.html, when `make web` built its parts).</p><p>Each query ran through the TFLite Task Library (TextSearcher, or "
        "ImageSearcher for the image query) on the bundles this demo exported. Emoji: OpenMoji, CC-BY-SA-4.0."
        "</p>" + "".join(rows),
        encoding="utf-8",
    )
    cell, label_w, pad = IMAGE_PX, 170, 6
    sheet = Image.new("RGB", (label_w + TOP * (cell + pad) + pad, len(results) * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    for r, (label, hits) in enumerate(results):
        y = pad + r * (cell + pad)
        draw.text((pad, y + cell // 2 - 9), label[:20], fill="black", font=font)
        for c, (ident, _) in enumerate(hits[:TOP]):
            with Image.open(folder / ident) as im:
                sheet.paste(im.convert("RGB").resize((cell, cell)), (label_w + pad + c * (cell + pad), y))
    png = out / "contact_sheet.png"
    sheet.save(png)
    return page, png


def _search_page(out: Path, text_bundle: Path, folder: Path, names: dict[str, str], say) -> Path | None:
    """search.html beside the bundle: the text bundle searched in a browser, offline (docs/web.md);
    skipped with one line when its parts are not built (`make demo` builds them)."""
    if search_page.missing():
        say(f"   no search.html: {search_page.missing()[0]} is missing (`make web` builds the page's parts)")
        return None
    labels = out / "emoji_names.json"
    tmp = labels.with_name(labels.name + ".tmp")
    tmp.write_text(json.dumps(names, ensure_ascii=False), encoding="utf-8")
    tmp.replace(labels)
    page = search_page.write(out)
    query = f"?bundle={text_bundle.name}&images={folder.name}/&labels={labels.name}"
    say(f"   search.html{query}: the text bundle searched offline in a browser (serve {out} with any static server)")
    return page


def run(out: Path, say=print, progress: Progress = SILENT, console=None, epochs: int | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = _model(out, say, console, epochs)
    text_embedder, image_embedder = _towers(model, out, say)
    cat = _catalog(out, image_embedder, text_embedder, say, progress)
    folder, _, names = _emoji_files(out)
    _say_step(
        say, 4, "bundles (each verified before it is written: libscannlite, and the Task Library where installed):"
    )
    text_bundle = _bundle(cat, text_embedder, out / "emoji_text_searcher.tflite", None, say, progress)
    image_bundle = _bundle(cat, image_embedder, out / "emoji_image_searcher.tflite", folder, say, progress)
    _say_step(say, 5, "what a phone returns (TextSearcher on the text bundle):")
    hits = bundles.query(text_bundle, device=DEVICE, texts=QUERIES, k=TOP)
    results = []
    for q, row in zip(QUERIES, hits):
        ranked = [(m.decode(), d) for m, d in row]
        results.append((f'"{q}"', ranked))
        say(f"   {q!r:>16}: " + ", ".join(f"{names.get(i, i)} ({d:+.2f})" for i, d in ranked[:4]))
    probe_image = folder / sorted(names)[len(names) // 3]
    row = bundles.query(image_bundle, device=DEVICE, images=[probe_image], k=TOP)[0]
    ranked = [(m.decode(), d) for m, d in row]
    results.append((f"image: {names.get(probe_image.name, probe_image.name)}", ranked))
    say(
        f"   image of {names.get(probe_image.name)!r} (ImageSearcher): "
        + ", ".join(f"{names.get(i, i)} ({d:+.2f})" for i, d in ranked[:4])
    )
    page, png = _draw(out, folder, names, results)
    web = _search_page(out, text_bundle, folder, names, say)
    _say_step(say, 6, f"drew the results: {page} and {png} ({time.perf_counter() - started:.0f} s in all)")
    return {
        "page": str(page),
        "contact_sheet": str(png),
        "text_bundle": str(text_bundle),
        "image_bundle": str(image_bundle),
        "search_page": str(web) if web else None,
        "seconds": time.perf_counter() - started,
    }
