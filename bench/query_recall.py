"""Recall for the queries people send (issue 27): short typed queries against a catalog of whole sentences.

Real text (:mod:`bench.real_text`, MiniLM, 384-d): the catalog's sentences, and held-out sentences as queries,
whole and cut to their first :data:`WORDS` words (what people type). The held-out queries are split in two: the
first half, short, is the catalog's query sample (``scannlite queries CATALOG add``), the second half is only
measured. Two builds of one catalog with default settings: without the sample (today's leave-one-out estimate
and target) and with it (the estimate on the sample, and the target met on it). At every ladder value: the
estimates, and recall measured on the held-out halves by the device-equivalent search
(``snapshot.search(..., leaves_to_search=L)``) against exact search (``exact=True``): the share of the exact
top-10 ids found.

``python -m bench.query_recall [--spec stdlib|full] [--quick]``: ``stdlib`` (default) is the standard library's
sentences (about 12,000 in the catalog, minutes to embed here), ``full`` the 120,000-sentence set
(:data:`bench.real_text.FULL`, about 20 minutes of MiniLM on 2 cores); ``--quick`` the cached 5,000 + 100 smoke
set. Writes ``bench/results/benchmarks/query_recall.json`` (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import block_tensorflow, query_synthetic, results

block_tensorflow()

WORDS = 4
K = 10
SPECS = {
    "quick": dict(name="quick", roots=("stdlib",), catalog=5_000, min_catalog=5_000, queries=100),
    "stdlib": dict(name="queries-stdlib", roots=("stdlib",), catalog=12_000, min_catalog=6_000, queries=1_000),
    "full": dict(name="full"),
}


def short(text: str, words: int = WORDS) -> str:
    return " ".join(text.split()[:words])


def embed(texts: list[str], console) -> np.ndarray:
    """MiniLM vectors of ``texts`` as :mod:`bench.real_text` makes them (cached by the texts' hash)."""
    from .real_text import PART, QUICK, _embed, cache_root

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache_root() / f"short-{key}.npy"
    if path.is_file():
        return np.load(path)
    work = cache_root() / f"work-short-{key}"
    _embed(texts, QUICK, work, console)
    order = np.load(work / "order.npy")
    out = np.zeros((len(texts), 384), np.float32)
    for p, start in enumerate(range(0, len(texts), PART)):
        out[order[start : start + PART]] = np.load(work / f"part-{p:05d}.npy")
    np.save(path, out)
    return out


def measured(cat, queries: np.ndarray, ladder: list[int]) -> list[float]:
    """Recall@10 of the device-equivalent search at each leaves value: share of the exact top-10 ids found."""
    from scannlite.store.index import snapshot

    snap = snapshot.load_snapshot(cat)
    truth = [{h["id"] for h in row} for row in snapshot.search(cat, queries, k=K, exact=True, snapshot=snap)]
    out = []
    for leaves in ladder:
        got = snapshot.search(cat, queries, k=K, leaves_to_search=leaves, snapshot=snap)
        out.append(float(np.mean([len(t & {h["id"] for h in row}) / K for t, row in zip(truth, got)])))
    return out


def recall_on(built) -> str:
    """Which estimate a build met its recall target on ("queries" or "leave-one-out"), by the build's own rule
    (``build_recall.target_estimate``: the sample's once it holds enough queries)."""
    from scannlite.store.index.build_recall import target_estimate

    chosen = target_estimate(built.recall, built.query_recall)[0]
    return chosen.kind if chosen is not None else "none"


def _met_or_capped(stated: float, leaves: int) -> str:
    """How the recall target (IndexConfig's defaults) ended: met, or stopped at the leaves cap below it."""
    from scannlite.store.index.config import IndexConfig

    cfg = IndexConfig()
    if stated >= cfg.recall_target:
        return f"the {cfg.recall_target:.2f} target met"
    return f"the {cfg.recall_target:.2f} target not reached within the cap of {cfg.max_leaves_to_search} leaves"


def run(spec_name: str, console) -> dict:
    from scannlite.store.catalog import query_sample
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build

    from .real_text import Spec, load

    spec = Spec(**SPECS[spec_name])
    real = load(spec, console=console)
    half = len(real.query_texts) // 2
    short_texts = [short(t) for t in real.query_texts]
    t0 = time.perf_counter()
    short_vectors = embed(short_texts, console)
    embed_short_s = time.perf_counter() - t0
    sample, held_whole, held_short = short_vectors[:half], real.query_vectors[half:], short_vectors[half:]
    with tempfile.TemporaryDirectory(prefix="scannlite-query-recall-") as tmp:
        cat = Catalog.create(Path(tmp) / "c", real.vectors.shape[1])
        cat.add(real.ids, real.vectors)
        t0 = time.perf_counter()
        plain = build(cat)
        build_s = time.perf_counter() - t0
        ladder = plain.recall.ladder
        whole_m = measured(cat, held_whole, ladder)
        short_m = measured(cat, held_short, ladder)
        query_sample.add(cat, sample, texts=short_texts[:half])
        with_sample = build(cat)
        q = with_sample.query_recall
        short_after = measured(cat, held_short, ladder)  # same partitions: the same figures, checked
        cat.close()
    rows = []
    for i, leaves in enumerate(ladder):
        rows.append(
            {
                "leaves": leaves,
                "loo_estimate": round(plain.recall.recall[i], 4),
                "sample_estimate": round(q.recall[i], 4),
                "sample_stderr": q.stderr[i],
                "measured_whole": round(whole_m[i], 4),
                "measured_short": round(short_m[i], 4),
                "gap_sample_vs_short": round(q.recall[i] - short_m[i], 4),
                "gap_loo_vs_short": round(plain.recall.recall[i] - short_m[i], 4),
            }
        )
    chosen = with_sample.leaves_to_search
    return {
        "spec": spec_name,
        "catalog": len(real.ids),
        "dim": int(real.vectors.shape[1]),
        "num_leaves": plain.num_leaves,
        "sample": int(q.sample),
        "held_out": len(held_short),
        "words": WORDS,
        "rows": rows,
        "without_sample": {
            "leaves_to_search": plain.leaves_to_search,
            "stated": round(plain.recall.at(plain.leaves_to_search), 4),
            "measured_whole": round(whole_m[ladder.index(plain.leaves_to_search)], 4),
            "measured_short": round(short_m[ladder.index(plain.leaves_to_search)], 4),
        },
        "with_sample": {
            "leaves_to_search": chosen,
            "stated": round(q.at(chosen), 4),
            "measured_short": round(short_after[ladder.index(chosen)], 4),
            "recall_on": recall_on(with_sample),
        },
        "max_abs_gap_sample": round(max(abs(r["gap_sample_vs_short"]) for r in rows), 4),
        "full_build_seconds": round(build_s, 2),
        "loo_estimate_seconds": round(plain.recall.seconds, 2),
        "sample_estimate_seconds": round(q.seconds, 2),
        "sample_estimate_share_of_build": round(q.seconds / build_s, 3),
        "embed_short_seconds": round(embed_short_s, 1),
        "examples": [[real.query_texts[half + i], short_texts[half + i]] for i in range(3)],
    }


def run_cross(demo: Path, console, sample_size: int = 500, held_out: int = 400, images: str = "openmoji") -> dict:
    """(b) Cross-modal: the demo's captions, embedded by its text tower, against its image catalog (OpenMoji:
    4,024 emoji, 64 leaves forced as the demo does). Captions are shuffled (seed 0): the first ``sample_size`` are
    the query sample (added through the configured text embedder), the next ``held_out`` are only measured.
    ``images="all-styles"`` (c): the same captions against OpenMoji and four other styles of the same emoji
    (:mod:`bench.emoji_images`, about 19,000 images) with default settings (2 leaves per sqrt(N)): what a user
    gets."""
    import shutil

    from scannlite.plugin.facade.database import Database
    from scannlite.plugin.facade.search import embed_queries
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build

    captions = [json.loads(line)["metadata"] for line in (demo / "openmoji-captions.jsonl").open() if line.strip()]
    order = np.random.default_rng(0).permutation(len(captions))
    sample_texts = [captions[i] for i in order[:sample_size]]
    held_texts = [captions[i] for i in order[sample_size : sample_size + held_out]]
    source, facts, changes = demo / "emoji.catalog", None, {"recall_target": 0.9, "num_leaves": 64}
    if images == "all-styles":
        from . import emoji_images

        source, facts = emoji_images.catalog(demo, console)
        changes = {"recall_target": 0.9}
        facts["openmoji_max_abs_diff"] = emoji_images.openmoji_difference(source, demo / "emoji.catalog")
        facts["neighbours"] = emoji_images.neighbour_shares(source)
    with tempfile.TemporaryDirectory(prefix="scannlite-query-recall-x-") as tmp:
        path = Path(tmp) / "emoji.catalog"
        shutil.copytree(source, path)
        (path / ".lock").unlink(missing_ok=True)
        cat = Catalog.open(path)
        db = Database(cat)
        db.configure(text_embedder=demo / "towers" / "text_embedder.tflite")
        plain = build(cat, full=True, changes=changes)
        items = plain.count
        ladder = plain.recall.ladder
        held = embed_queries(cat, "text", held_texts)
        held_m = measured(cat, held, ladder)
        # the sample's own captions measured the same way: how much of a gap is the draw of captions
        sample_m = measured(cat, embed_queries(cat, "text", sample_texts), ladder)
        t0 = time.perf_counter()
        db.add_queries(texts=sample_texts)
        add_s = time.perf_counter() - t0
        with_sample = build(cat)
        q = with_sample.query_recall
        cat.close()
    rows = [
        {
            "leaves": leaves,
            "loo_estimate": round(plain.recall.recall[i], 4),
            "sample_estimate": round(q.recall[i], 4),
            "sample_stderr": q.stderr[i],
            "measured_captions": round(held_m[i], 4),
            "measured_sample_captions": round(sample_m[i], 4),
            "gap_sample_vs_measured": round(q.recall[i] - held_m[i], 4),
            "gap_loo_vs_measured": round(plain.recall.recall[i] - held_m[i], 4),
        }
        for i, leaves in enumerate(ladder)
    ]
    out = {
        "catalog": "OpenMoji 17.0 (make demo): 4,024 emoji images, 128-d image tower; 64 leaves forced",
        "num_leaves": plain.num_leaves,
        "sample": int(q.sample),
        "held_out": len(held_texts),
        "rows": rows,
        "without_sample": {
            "leaves_to_search": plain.leaves_to_search,
            "stated": round(plain.recall.at(plain.leaves_to_search), 4),
            "measured_captions": round(held_m[ladder.index(plain.leaves_to_search)], 4),
        },
        "with_sample": {
            "leaves_to_search": with_sample.leaves_to_search,
            "stated": q.at(with_sample.leaves_to_search),
            "measured_captions": round(held_m[ladder.index(with_sample.leaves_to_search)], 4),
        },
        "max_abs_gap_sample": round(max(abs(r["gap_sample_vs_measured"]) for r in rows), 4),
        "max_abs_gap_loo": round(max(abs(r["gap_loo_vs_measured"]) for r in rows), 4),
        "queries_add_seconds": round(add_s, 1),
        "note": "OpenMoji is small (4,024 images, 64 leaves of about 63 each): the figures show the direction and size of the gap on the demo, not what a large image catalog gives",
    }
    if facts is not None:
        from . import emoji_images

        out.update(emoji_images.describe(facts, items, plain.num_leaves))
    return out


def styles_markdown(styles: dict | None) -> str:
    """Table (c) of docs/queries.md: captions against the five-style emoji set (bench/emoji_images.py)."""
    if not styles:
        return ""
    w, s = styles["without_sample"], styles["with_sample"]
    out = [
        f"**(c) Captions against five styles of the same emoji** (`{styles['command']}`, {styles['date']}): "
        f"{styles['catalog']}; the same {styles['sample']}-caption sample and {styles['held_out']} other captions "
        f"as (b). {styles['note']}.",
        "",
        "| leaves | leave-one-out estimate | sample estimate (± s.e.) | measured, held-out captions "
        "| sample - measured | leave-one-out - measured | measured, the sample's own captions |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {r['leaves']} | {r['loo_estimate']:.3f} | {r['sample_estimate']:.3f} ± {r['sample_stderr']:.3f} "
        f"| {r['measured_captions']:.3f} | {r['gap_sample_vs_measured']:+.3f} | {r['gap_loo_vs_measured']:+.3f} "
        f"| {r['measured_sample_captions']:.3f} |"
        for r in styles["rows"]
    ]
    out += [
        "",
        f"Without the sample the build searched {w['leaves_to_search']} leaves and stated {w['stated']:.3f}; "
        f"held-out captions got {w['measured_captions']:.3f} there. With it the build chose on the sample: "
        f"{_met_or_capped(s['stated'], s['leaves_to_search'])}: {s['leaves_to_search']} leaves, stated "
        f"{s['stated']:.3f}, held-out captions {s['measured_captions']:.3f}. Largest gap: "
        f"{styles['max_abs_gap_sample']:.3f} for the sample's estimate, {styles['max_abs_gap_loo']:.3f} for "
        f"leave-one-out ({100 * styles['neighbours']['own_style']:.0f}% of an image's 10 nearest images are in "
        f"its own style, {100 * styles['neighbours']['same_emoji_other_style']:.0f}% are the same emoji in another "
        f"style, on {styles['neighbours']['images']:,} of them). Measured on the sample's own captions the same way, recall is within "
        f"{max(abs(r['sample_estimate'] - r['measured_sample_captions']) for r in styles['rows']):.3f} of the "
        "sample's estimate at every leaves value: the rest of the gap is which captions were drawn, not the "
        f"estimate. The OpenMoji images' vectors equal the demo catalog's (largest difference "
        f"{styles['openmoji_max_abs_diff']:.1g}): the set was framed and embedded as the demo does.",
        "",
    ]
    return "\n".join(out)


def markdown(real: dict | None, cross: dict | None) -> str:
    """The tables docs/queries.md shows, from the two results files."""
    out = []
    if real:
        out += [
            f"**(a) Short typed queries, real text** (`{real['command']}`, {real['date']}): {real['catalog']:,} "
            f"sentences, {real['dim']}-d MiniLM, {real['num_leaves']} leaves (default settings); the sample: "
            f"{real['sample']} held-out sentences cut to their first {real['words']} words; measured on "
            f"{real['held_out']} other held-out sentences, whole and cut the same way.",
            "",
            "| leaves | leave-one-out estimate | sample estimate (± s.e.) | measured, whole sentences "
            "| measured, short queries | sample - measured |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {r['leaves']} | {r['loo_estimate']:.3f} | {r['sample_estimate']:.3f} ± {r['sample_stderr']:.3f} "
            f"| {r['measured_whole']:.3f} | {r['measured_short']:.3f} | {r['gap_sample_vs_short']:+.3f} |"
            for r in real["rows"]
        ]
        w, s = real["without_sample"], real["with_sample"]
        out += [
            "",
            f"Without the sample the build searched {w['leaves_to_search']} leaves and stated {w['stated']:.3f}; "
            f"held-out short queries got {w['measured_short']:.3f} there (whole sentences "
            f"{w['measured_whole']:.3f}). With it the build chose on the sample: "
            f"{_met_or_capped(s['stated'], s['leaves_to_search'])}: {s['leaves_to_search']} leaves, "
            f"stated {s['stated']:.3f}, measured on held-out short queries {s['measured_short']:.3f}. Largest gap "
            f"between the sample's estimate and held-out short queries: {real['max_abs_gap_sample']:.3f}. The "
            f"sample's estimate took {real['sample_estimate_seconds']:.1f} s, "
            f"{100 * real['sample_estimate_share_of_build']:.1f}% of the {real['full_build_seconds']:.1f} s full "
            "build.",
            "",
        ]
    if cross:
        out += [
            f"**(b) Captions against images** (`{cross['command']}`, {cross['date']}): {cross['catalog']}; the "
            f"sample: {cross['sample']} captions added through the catalog's text tower; measured on "
            f"{cross['held_out']} other captions. {cross['note']}.",
            "",
            "| leaves | leave-one-out estimate | sample estimate (± s.e.) | measured, captions | sample - measured |",
            "| --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {r['leaves']} | {r['loo_estimate']:.3f} | {r['sample_estimate']:.3f} ± {r['sample_stderr']:.3f} "
            f"| {r['measured_captions']:.3f} | {r['gap_sample_vs_measured']:+.3f} |"
            for r in cross["rows"]
        ]
        out += [
            "",
            f"Without the sample the build searched {cross['without_sample']['leaves_to_search']} leaves; with it "
            f"{cross['with_sample']['leaves_to_search']} (stated {cross['with_sample']['stated']:.3f}). Largest "
            f"gap: {cross['max_abs_gap_sample']:.3f} for the sample's estimate, {cross['max_abs_gap_loo']:.3f} for "
            "leave-one-out.",
            "",
        ]
    return "\n".join(out)


def _codes(x) -> str:
    return "not reached" if x is None else f"{x:,}"


def _share(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _range(pair, fmt: str = "{:.3f}") -> str:
    return "" if not pair else f" [{fmt.format(pair[0])}, {fmt.format(pair[1])}]"


def knobs_markdown(knobs: dict | None) -> str:
    """docs/queries.md's "Partitions for such queries" tables, from bench/results/raw/query_knobs.json (short typed
    queries, whole sentences beside them) or query_knobs_cross.json (captions against images)."""
    if not knobs:
        return ""
    runs = knobs["runs"]
    budgets = [str(b) for b in knobs["budgets"]]
    mid = budgets[1]
    target = knobs["target"]
    cross = knobs.get("set") == "captions against images"
    what = "caption" if cross else "short"
    whole = any(r.get("codes_for_0.90_whole") is not None for r in runs)
    several = knobs["orders"] > 1

    def spread(pair, fmt: str = "{:.3f}") -> str:
        return _range(pair, fmt) if several else ""

    if cross and knobs.get("images") == "all-styles":
        head = (
            f"**Partitions for captions against five styles of images** (`{knobs['command']}`, {knobs['date']}): "
            f"the {knobs['catalog']:,} images and the {knobs['sample']}-caption sample of (c), otherwise default "
            f"settings. Recall@10 of the {knobs['held_out']} held-out captions"
        )
    elif cross:
        head = (
            f"**Partitions for captions against images** (`{knobs['command']}`, {knobs['date']}): {knobs['note']}; "
            f"the same {knobs['sample']}-caption sample as (b), otherwise the demo's settings. Recall@10 of the "
            f"{knobs['held_out']} held-out captions"
        )
    else:
        spec = knobs.get("spec", "stdlib")
        head = (
            f"**Partitions for short typed queries, {knobs['catalog']:,} sentences** (`{knobs['command']}`, "
            f"{knobs['date']}): the real text set of `python -m bench.query_recall --spec {spec}` and a "
            f"{knobs['sample']}-query sample of held-out sentences cut to their first {WORDS} words, otherwise "
            f"default settings. Recall@10 of the {knobs['held_out']} other held-out short (and whole) queries"
        )
    out = [
        head + " by the sample estimate's definition, against the codes the leaves searched hold on average for "
        f"those queries (what a phone scans; codes for {target:.2f} and recall at a fixed number of codes are "
        f"interpolated linearly between ladder steps). "
        + (
            f"Each variant was built {knobs['orders']} times, the items added in another order each time (another "
            "draw of k-means++): the mean over those builds, [lowest, highest] build, and ± the queries' standard "
            "error. "
            if several
            else "Each variant was built once (one draw of k-means++; the 12,000-sentence study shows how far draws "
            "spread), ± the queries' standard error. "
        )
        + '"sample est. error": the largest |sample estimate - '
        "held-out recall| over the ladder and the builds, with the queries the estimate used (with "
        f'`train_on_queries` only the half of the sample the tree did not train on). "build chose": the leaves '
        f"the {target:.2f} target chose on the sample in each build (cap 64), and the held-out {what} queries' "
        "recall there, lowest to highest.",
        "",
        f"| variant | leaves | tree's query points | codes for {target:.2f}, {what} | "
        + " | ".join(f"{what} at {int(b):,} codes" for b in budgets)
        + (f" | codes for {target:.2f}, whole | whole at {int(mid):,} codes" if whole else "")
        + f" | sample est. error (queries) | build chose: leaves; held-out {what} there |",
        "| --- " * (6 + len(budgets) + (2 if whole else 0)) + "|",
    ]
    for r in runs:
        cells = []
        for b in budgets:
            v = r["recall_short_at_codes"][b]
            cell = _share(v) + spread(r["recall_short_range_at_codes"][b]) if v is not None else "-"
            if b == mid and v is not None:
                cell += f" ± {r['recall_short_stderr_at_codes'][b]:.3f}"
            cells.append(cell)
        chosen = r["chosen"]
        held = [c[3] for c in chosen]
        out.append(
            f"| {r['label']} | {r['num_leaves']} | {r['tree_queries']:,} | {_codes(r['codes_for_0.90_short'])}"
            + spread(r.get("codes_for_0.90_short_range"), "{:,}")
            + " | "
            + " | ".join(cells)
            + (f" | {_codes(r['codes_for_0.90_whole'])} | {_share(r['recall_whole_at_codes'][mid])}" if whole else "")
            + f" | {r['max_abs_gap_sample']:.3f} ({r['sample_estimate_queries']}) "
            f"| {', '.join(str(c[0]) for c in chosen)}; "
            + (f"{min(held):.3f}-{max(held):.3f} |" if min(held) != max(held) else f"{held[0]:.3f} |")
        )
    base = runs[0]
    reached = [r for r in runs if r["codes_for_0.90_short"] is not None]
    if reached and base["codes_for_0.90_short"] is not None:
        best = min(reached, key=lambda r: r["codes_for_0.90_short"])
        ratio = best["codes_for_0.90_short"] / base["codes_for_0.90_short"]
        out += [
            "",
            f"Fewest codes for {target:.2f} on held-out {what} queries"
            + (", on average over the builds: " if several else ": ")
            + f"{best['label']}, "
            f"{best['codes_for_0.90_short']:,} codes, {ratio:.2f} times the default's "
            f"{base['codes_for_0.90_short']:,}.",
        ]
    b0, b0_range = base["recall_short_at_codes"][mid], base["recall_short_range_at_codes"][mid]
    if b0 is not None and b0_range:
        above, below = [], []
        for r in runs[1:]:
            v, e, rng = (
                r["recall_short_at_codes"][mid],
                r["recall_short_stderr_at_codes"][mid],
                r["recall_short_range_at_codes"][mid],
            )
            if v is None or not rng:
                continue
            d = v - b0
            limit = 2 * (e**2 + base["recall_short_stderr_at_codes"][mid] ** 2) ** 0.5
            if d > limit and (rng[0] > b0_range[1] or not several):
                above.append(f"{r['label']} ({d:+.3f})")
            elif -d > limit and (rng[1] < b0_range[0] or not several):
                below.append(f"{r['label']} ({d:+.3f})")
        out += [
            "",
            f"A clear difference at {int(mid):,} codes (the mean beyond twice the combined standard error of the "
            + ("queries, and every build of the variant beyond every build of the default)" if several else "queries)")
            + ": above the default, "
            f"{'; '.join(above) or 'none'}; below it, {'; '.join(below) or 'none'}.",
        ]
    return "\n".join(out + [""])


def knob_device_markdown(d: dict | None) -> str:
    """docs/queries.md's table of what leaves per sqrt(N) costs on a device, from
    bench/results/raw/query_knob_device.json (``python -m bench.query_knob_device``)."""
    if not d:
        return ""
    base = next(r for r in d["runs"] if r["leaves_per_sqrt_n"] == 2.0)
    out = [
        f"**What leaves per sqrt(N) costs on a device, short typed queries** (`{d['command']}`, {d['date']}): the "
        f"{d['catalog']:,} sentences of the knob table above and its {d['sample']}-query sample, built at each "
        f"factor; the fewest ladder leaves at which the {d['held_out']} held-out short queries reach recall@10 "
        f"{d['target']:.2f} (by the sample estimate's definition, past the 64-leaf cap where needed), the index "
        "exported there and verified, and its p50: the Task Library's from export's own probe (400 searches, "
        "one index after the other), libscannlite's timed round robin over the three indexes on the held-out "
        "short queries (each query on every index in turn, so the ratios hold under load). The device scores "
        "every centroid as well as the codes of the leaves it searches.",
        "",
        f"| leaves per sqrt(N) | leaves | leaves searched for {d['target']:.2f} | held-out short there | codes "
        "scanned | Task Library p50 | libscannlite p50 | libscannlite p50 / default's | verified by |",
        "| --- " * 9 + "|",
    ]
    for r in sorted(d["runs"], key=lambda r: r["leaves_per_sqrt_n"]):
        tl = r.get("task_library_latency_ms") or {}
        out.append(
            f"| {r['leaves_per_sqrt_n']:g}{' (default)' if r is base else ''} | {r['num_leaves']:,} | "
            f"{r['leaves_for_target']} | {r['recall_short_there']:.3f} ± {r['recall_short_stderr']:.3f} | "
            f"{r['codes_scanned']:,} | {tl.get('p50', float('nan')):.2f} ms | {r['libscannlite_p50_ms']:.2f} ms | "
            f"{r['libscannlite_p50_ms'] / base['libscannlite_p50_ms']:.2f} | {', '.join(r['verified_by'])} |"
        )
    return "\n".join(out + [""])


BEGIN = "<!-- begin: written by python -m bench.query_recall --markdown --write; do not edit by hand -->"
END = "<!-- end: written by python -m bench.query_recall --markdown --write -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"


def written_doc(doc: str, tables: str) -> str:
    """``doc`` with the text between :data:`BEGIN` and :data:`END` replaced by ``tables``."""
    if doc.count(BEGIN) != 1 or doc.count(END) != 1 or doc.index(BEGIN) > doc.index(END):
        raise SystemExit(f"error: {DOC} needs one {BEGIN!r} line before one {END!r} line")
    head, rest = doc.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n\n{tables.strip()}\n\n{END}{tail}"


def all_markdown(folder: Path) -> str:
    """Every measured table of docs/queries.md from the results files in ``folder``."""
    names = (
        "query_recall.json",
        "query_recall_cross.json",
        "query_knobs.json",
        "query_knobs_full.json",
        "query_knobs_cross.json",
    )
    real, cross, knobs, knobs_full, knobs_cross = (
        json.loads(p.read_text()) if p.is_file() else None for p in (folder / n for n in names)
    )
    styles, knobs_styles, knob_device = (
        json.loads(p.read_text()) if p.is_file() else None
        for p in (
            folder / "query_recall_cross_styles.json",
            folder / "query_knobs_cross_styles.json",
            folder / "query_knob_device.json",
        )
    )
    parts = (
        markdown(real, cross),
        styles_markdown(styles),
        query_synthetic.markdown_in(folder),
        knobs_markdown(knobs),
        knobs_markdown(knobs_full),
        knob_device_markdown(knob_device),
        knobs_markdown(knobs_cross),
        knobs_markdown(knobs_styles),
    )
    return "\n".join(part for part in parts if part)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", choices=("stdlib", "full"), default="stdlib")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cross", type=Path, help="(b) only: the demo's outputs folder (emoji.catalog, towers/, captions)")
    ap.add_argument(
        "--images",
        choices=("openmoji", "all-styles"),
        default="openmoji",
        help="with --cross: the demo's OpenMoji catalog (b), or it with four other emoji styles from npm (c)",
    )
    ap.add_argument("--out", type=Path, default=results.RESULTS / "raw" / "query_recall.json")
    ap.add_argument("--markdown", action="store_true", help="print docs/queries.md's tables from the results files")
    ap.add_argument("--write", action="store_true", help="with --markdown: write them into docs/queries.md")
    args = ap.parse_args(argv)
    if args.markdown:
        tables = all_markdown(args.out.parent)
        if args.write:
            DOC.write_text(written_doc(DOC.read_text(), tables))
        else:
            print(tables)
        return 0
    console = Console(stderr=True, highlight=False)
    started = datetime.now(UTC)
    if args.cross:
        out = run_cross(args.cross, console, images=args.images)
        styles = args.images == "all-styles"
        args.out = args.out.with_name("query_recall_cross_styles.json" if styles else "query_recall_cross.json")
    else:
        out = run("quick" if args.quick else args.spec, console)
    results.stamped(
        out,
        started,
        "python -m bench.query_recall"
        + (f" --cross {args.cross}" if args.cross else " --quick" if args.quick else f" --spec {args.spec}")
        + (" --images all-styles" if args.cross and args.images == "all-styles" else ""),
    )
    print(json.dumps(out, indent=1))
    if not args.quick:
        results.write(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
