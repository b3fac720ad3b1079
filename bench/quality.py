"""Retrieval quality of the demo's dual encoder, through Keras and through the phone's path.

For each text tower (MiniLM, and the small word tower), on OpenMoji's fixed held-out split:
caption -> image recall@1/5/10 with the Keras towers (exact dot products), and with the
device path: held-out images embedded by the Task Library's ImageEmbedder into a catalog,
exported as a verified text searcher bundle, and each caption searched by TextSearcher.
The two must agree (within 0.02: the device index quantizes vectors to one byte per
dimension). Writes docs/quality.md.

    python -m bench.quality [--out demo-output]
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from scannlite.store.boundary import run_in
from scannlite.plugin.encoder import jobs, modeldir, openmoji
from scannlite.plugin.encoder.errors import EncoderError
from scannlite.plugin.encoder.recall import recall_at_k
from scannlite.store import bundles
from scannlite.store.build import build
from scannlite.store.catalog import Catalog
from scannlite.store.export import export
from scannlite.plugin.device.processes import DeviceProcesses

DEVICE = DeviceProcesses()

KS = (1, 5, 10)
AGREE_EXACT = 0.005  # Keras vs the Task Library's vectors: conversion must not change rankings


def ensure_model(model: Path, tower: str) -> float:
    try:
        modeldir.read_marker(model)
        return 0.0
    except EncoderError:
        t = time.perf_counter()
        jobs.train("openmoji", model, text_tower=tower, show_progress=False)
        return time.perf_counter() - t


def device_recall(work: Path, text_embedder: Path, image_embedder: Path, captions: list[str], images):
    """(recall with the Task Library's own vectors and exact search, recall through the bundle)."""
    vectors = run_in("device", "scannlite.plugin.device.runtime:image_embed", image_embedder.read_bytes(), list(images))
    text_vectors = run_in("device", "scannlite.plugin.device.runtime:text_embed", text_embedder.read_bytes(), captions)
    exact = recall_at_k(text_vectors, vectors, KS)
    path = work / "heldout.catalog"
    shutil.rmtree(path, ignore_errors=True)
    cat = Catalog.create(path, vectors.shape[1], "dot")
    cat.add([str(i) for i in range(len(vectors))], vectors, captions)
    build(cat)
    out = export(cat, device=DEVICE, out=work / "heldout_text_searcher.tflite", embedder=text_embedder)
    hits = bundles.query(out.path, device=DEVICE, texts=captions, k=max(KS))
    ranks = []
    for i, row in enumerate(hits):
        ids = [int(m) for m, _ in row]
        ranks.append(ids.index(i) if i in ids else max(KS))
    ranks = np.asarray(ranks)
    return exact, {k: float((ranks < k).mean()) for k in KS}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-output", type=Path)
    args = ap.parse_args(argv)
    out = args.out
    rows = []
    for tower, model in (("minilm", out / "model"), ("words", out / "model-words")):
        ensure_model(model, tower)
        # Images at the tower's own input size: neither Keras nor the Task Library resizes them,
        # so any difference between the two paths is the conversion's.
        images_all, captions_all, stems, held, _ = openmoji.load(modeldir.settings_of(model).image_size)
        idx = np.flatnonzero(held)
        images, captions = images_all[idx], [captions_all[i] for i in idx]
        towers_dir = out / ("towers" if tower == "minilm" else "towers-words")
        conv = jobs.convert(model, towers_dir)
        text_v, image_v = run_in("tensorflow", "scannlite.plugin.encoder.keras_inference:embed_both",
                                 str(model.resolve()), captions, list(images))
        keras = recall_at_k(text_v, image_v, KS)
        work = out / f"quality-{tower}"
        work.mkdir(parents=True, exist_ok=True)
        tl_exact, device = device_recall(work, Path(conv["text_embedder"]), Path(conv["image_embedder"]), captions, images)
        agree = all(abs(keras[k] - tl_exact[k]) <= AGREE_EXACT for k in KS)
        rows.append((tower, keras, tl_exact, device, agree, Path(conv["text_embedder"]).stat().st_size))
        print(tower, "keras", keras, "task library exact", tl_exact, "bundle", device, "agree" if agree else "DISAGREE")
    lines = [
        "# Retrieval quality of the demo's dual encoder",
        "",
        f"OpenMoji's fixed held-out split: {len(idx)} emoji images, each with its Unicode name as the caption "
        "(never trained on). Caption -> image recall@k: the share of captions whose own image is among the "
        f"top k of all {len(idx)} held-out images. Random ranking would score about k/{len(idx)}.",
        "",
        "- **Keras**: the trained towers, exact dot products over all held-out images.",
        "- **Task Library vectors, exact**: captions and images embedded by the exported towers through the Task "
        "Library (TextEmbedder, ImageEmbedder), exact dot products. Must agree with Keras within "
        f"{AGREE_EXACT}: conversion must not change what the model retrieves.",
        "- **Bundle (TextSearcher)**: the images embedded by the ImageEmbedder into a catalog, exported as a verified "
        "text searcher bundle (one leaf, asymmetric hashing: one byte per dimension), each caption searched by "
        "TextSearcher: what a phone returns. Its gap to the rows above is the cost of the on-device index.",
        "",
        "| text tower | path | recall@1 | recall@5 | recall@10 | agrees with Keras | text tower size |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for tower, keras, tl_exact, device, agree, size in rows:
        lines.append(f"| {tower} | Keras | {keras[1]:.3f} | {keras[5]:.3f} | {keras[10]:.3f} | | {size / 1e6:.1f} MB |")
        lines.append(f"| {tower} | Task Library vectors, exact | {tl_exact[1]:.3f} | {tl_exact[5]:.3f} | "
                     f"{tl_exact[10]:.3f} | {'yes' if agree else '**no**'} | |")
        lines.append(f"| {tower} | bundle (TextSearcher) | {device[1]:.3f} | {device[5]:.3f} | {device[10]:.3f} | | |")
    lines += ["", "MiniLM is all-MiniLM-L6-v2 (pretrained, frozen) plus a trained projection; the word tower is "
              "trained from scratch on the captions with the Task Library's regex tokenizer. Both image towers are "
              "the same small CNN trained from scratch at 64 px, 20 epochs.", "",
              f"Produced by `python -m bench.quality --out {out}` (the models are the ones `make demo` trains, "
              "reused when present).", ""]
    Path("docs").mkdir(exist_ok=True)
    Path("docs/quality.md").write_text("\n".join(lines))
    print("wrote docs/quality.md")


if __name__ == "__main__":
    main()
