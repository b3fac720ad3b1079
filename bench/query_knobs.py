"""The partitions' knobs for short typed queries (issue 27), judged by recall per code scanned.

The real text set of :mod:`bench.query_recall` (``--spec stdlib``; its vectors and short queries from the cache that
study made): 12,000 sentences in the catalog, 500 held-out sentences cut to their first four words as the catalog's
query sample, 500 other held-out sentences (whole, and cut the same way) only measured. For each variant of
:data:`VARIANTS` (leaves per sqrt(N), training the tree on a share of the query sample, spherical k-means or not,
and a combination), full builds of the catalog with its sample and otherwise default settings, then:

* recall@10 of the held-out short (and whole) queries at every ladder step, by
  :func:`scannlite.store.index.recall_estimate.estimate_for_queries` (the definition the sample estimate uses;
  bench.query_recall compares it with the device-equivalent search), beside the mean number of codes those leaves
  hold for those queries (what a phone scans; short and whole queries each by their own leaves);
* the build's own sample estimate at every step, and its error against the held-out short queries (with
  ``train_on_queries`` it is measured on the half of the sample the tree did not train on);
* the leaves the build chose for the 0.90 target on the sample, and the held-out short recall there.

Each variant is built :data:`ORDERS` times, the items added in another order each time (another draw of ScaNN's
k-means++), and reported as the mean and range over those builds.

``--cross DEMO`` measures the cross-modal set of bench.query_recall instead (the demo's captions against its 4,024
emoji images, 64 leaves forced; :data:`CROSS_VARIANTS`), with no whole-sentence figures; ``--cross DEMO --images
all-styles`` the same captions against the five-style set of :mod:`bench.emoji_images` with default settings
(:data:`SCALE_VARIANTS`; ``--orders N`` builds each variant N times instead of :data:`ORDERS`).

``python -m bench.query_knobs [--cross DEMO [--images all-styles]]`` writes ``bench/results/raw/query_knobs.json``
(or ``query_knobs_cross.json``, ``query_knobs_cross_styles.json``); ``python -m bench.query_recall --markdown --write`` renders them into docs/queries.md
with that study's tables.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import block_tensorflow, results

block_tensorflow()

#: (label, IndexConfig changes). The first is the default recipe.
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("default (2 per sqrt(N), spherical, items only)", {}),
    ("1 leaf per sqrt(N)", {"leaves_per_sqrt_n": 1.0}),
    ("4 leaves per sqrt(N)", {"leaves_per_sqrt_n": 4.0}),
    ("plain k-means", {"spherical": False}),
    ("train on queries 0.1", {"train_on_queries": 0.1}),
    ("train on queries 0.25", {"train_on_queries": 0.25}),
    ("train on queries 0.5", {"train_on_queries": 0.5}),
    ("1 per sqrt(N), train on queries 0.25", {"leaves_per_sqrt_n": 1.0, "train_on_queries": 0.25}),
)
TARGET = 0.90
#: The variants run on the larger sets (120,000 sentences; the five-style images): all but train_on_queries 0.5 and
#: its combination with 1 leaf per sqrt(N), which lost on both smaller sets.
SCALE_VARIANTS: tuple[tuple[str, dict], ...] = tuple(
    v for v in VARIANTS if v[0] not in ("train on queries 0.5", "1 per sqrt(N), train on queries 0.25")
)
#: Each variant is trained this many times, on the items added in their own order and then in seeded shuffles:
#: ScaNN's k-means++ starts from the training points in catalog order, so each order is another draw of the
#: partitions, and a knob must beat that spread, not only the queries' standard error, to count.
ORDERS = 3
#: Codes scanned at which recall is compared across variants (interpolated between ladder steps): on the
#: 12,000-sentence set, and on the 4,024-image cross-modal set.
BUDGETS = (1000, 2500, 4000)
CROSS_BUDGETS = (250, 500, 1000)
#: ... and on the 19,024-image five-style set (``--images all-styles``).
STYLES_BUDGETS = (1000, 2500, 4000)


def interpolate(xs: list[float], ys: list[float], x: float) -> float | None:
    """y at x by linear interpolation on increasing xs; None outside them."""
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def codes_for(recall: list[float], codes: list[float], target: float) -> float | None:
    """Codes scanned where recall first reaches ``target``, interpolated linearly between the ladder steps."""
    for i, r in enumerate(recall):
        if r >= target:
            if i == 0:
                return codes[0]
            r0, c0 = recall[i - 1], codes[i - 1]
            return c0 + (target - r0) / (r - r0) * (codes[i] - c0)
    return None


def scanned_codes(index, queries: np.ndarray, ladder: list[int]) -> list[float]:
    """Mean codes the leaves searched at each ladder step hold, for these queries (their own leaf order)."""
    from scannlite.store.index import device_search

    order = device_search.leaf_order(index, queries.astype(np.float32))
    scanned = np.cumsum(np.diff(index.offsets)[order], axis=1)
    return [float(np.mean(scanned[:, n - 1])) for n in ladder]


def held_out_recall(snap, queries: np.ndarray):
    """(recall estimate, mean codes scanned at each of its ladder steps) of outside ``queries`` on a loaded snapshot
    (``load_snapshot(..., with_vectors=True)``): the sample estimate's definition, every query measured."""
    from scannlite.store.index.recall_estimate import Snapshot, estimate_for_queries

    index = snap.device_index()
    mem = Snapshot.in_memory(index, snap.vectors, lambda rows: snap.model.decode(snap.codes[rows]))
    est = estimate_for_queries(mem, queries, sample=len(queries))
    return est, scanned_codes(index, queries, est.ladder)


def measure(
    cat,
    built,
    seconds: float,
    label: str,
    changes: dict,
    held: np.ndarray,
    whole: np.ndarray | None,
    budgets: tuple[int, ...] = BUDGETS,
) -> dict:
    """One variant's figures from its built catalog: ``held`` are the held-out queries of the sample's kind
    (short texts, or captions), ``whole`` the held-out whole sentences (None for the cross-modal set)."""
    from scannlite.store.index import snapshot
    from scannlite.store.index.stored import load_model

    from .query_recall import recall_on

    snap = snapshot.load_snapshot(cat, with_vectors=True)
    training = load_model(cat, snap.info.model_id)[1]
    est, codes = held_out_recall(snap, held)
    ladder = est.ladder
    est_whole, codes_whole = held_out_recall(snap, whole) if whole is not None else (None, None)
    q, chosen = built.query_recall, built.leaves_to_search
    rows = []
    for i, n in enumerate(ladder):
        row = {
            "leaves": n,
            "codes_scanned": round(codes[i]),
            "recall_short": round(est.recall[i], 4),
            "recall_short_stderr": est.stderr[i],
            "sample_estimate": round(q.recall[i], 4),
            "sample_stderr": q.stderr[i],
        }
        if est_whole is not None and codes_whole is not None:
            row.update({"recall_whole": round(est_whole.recall[i], 4), "codes_scanned_whole": round(codes_whole[i])})
        rows.append(row)

    def at_codes(xs, ys):
        return {str(b): None if (v := interpolate(xs, ys, b)) is None else round(v, 4) for b in budgets}

    c90 = codes_for(est.recall, codes, TARGET)
    c90_whole = codes_for(est_whole.recall, codes_whole, TARGET) if est_whole is not None and codes_whole else None
    return {
        "label": label,
        "changes": changes,
        "num_leaves": built.num_leaves,
        "build_seconds": round(seconds, 1),
        "tree_queries": int(training.get("tree_queries", 0)),
        "sample_estimate_queries": int(q.sample),
        "rows": rows,
        "codes_for_0.90_short": None if c90 is None else round(c90),
        "codes_for_0.90_whole": None if c90_whole is None else round(c90_whole),
        "recall_short_at_codes": at_codes(codes, est.recall),
        "recall_short_stderr_at_codes": at_codes(codes, est.stderr),
        "recall_whole_at_codes": (
            at_codes(codes_whole, est_whole.recall)
            if est_whole is not None and codes_whole
            else dict.fromkeys(map(str, budgets))
        ),
        "max_abs_gap_sample": round(max(abs(r["sample_estimate"] - r["recall_short"]) for r in rows), 4),
        "chosen_leaves": chosen,
        "chosen_codes": round(codes[ladder.index(chosen)]),
        "chosen_stated": round(q.at(chosen), 4),
        "chosen_recall_short": round(est.recall[ladder.index(chosen)], 4),
        "recall_on": recall_on(built),
    }


def run_variants(
    console,
    ids: list[str],
    vectors: np.ndarray,
    distance: str,
    sample: np.ndarray,
    held: np.ndarray,
    whole: np.ndarray | None,
    variants,
    budgets: tuple[int, ...],
    base: dict,
    orders: int = ORDERS,
) -> list[dict]:
    """Each variant built ``orders`` times (items in their order, then seeded shuffles), measured, summarised."""
    from scannlite.store.catalog import query_sample
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig

    runs = []
    for label, changes in variants:
        repeats = []
        for order_seed in range(orders):
            order = np.arange(len(ids)) if order_seed == 0 else np.random.default_rng(order_seed).permutation(len(ids))
            with tempfile.TemporaryDirectory(prefix="scannlite-query-knobs-") as tmp:
                config = IndexConfig().replace(**{**base, **changes})
                cat = Catalog.create(Path(tmp) / "c", vectors.shape[1], distance, index=config)
                cat.add([ids[i] for i in order], vectors[order])
                query_sample.add(cat, sample)
                t0 = time.perf_counter()
                built = build(cat)
                repeats.append(measure(cat, built, time.perf_counter() - t0, label, changes, held, whole, budgets))
                cat.close()
        runs.append(summarise(label, changes, repeats, budgets))
        console.print(f"{label}: {json.dumps({k: v for k, v in runs[-1].items() if k != 'repeats'})}")
    return runs


def summarise(label: str, changes: dict, repeats: list[dict], budgets: tuple[int, ...]) -> dict:
    """A variant's figures over its repeats: means, and the range across the partitions' draws."""

    def mean(values):
        return None if any(v is None for v in values) else float(np.mean(values))

    def spread(values):
        return None if any(v is None for v in values) else [min(values), max(values)]

    def per_budget(key, how, digits=4):
        out = {}
        for b in map(str, budgets):
            v = how([r[key][b] for r in repeats])
            out[b] = None if v is None else [round(x, digits) for x in v] if isinstance(v, list) else round(v, digits)
        return out

    c90 = [r["codes_for_0.90_short"] for r in repeats]
    c90w = [r["codes_for_0.90_whole"] for r in repeats]
    return {
        "label": label,
        "changes": changes,
        "num_leaves": repeats[0]["num_leaves"],
        "tree_queries": repeats[0]["tree_queries"],
        "sample_estimate_queries": repeats[0]["sample_estimate_queries"],
        "codes_for_0.90_short": None if mean(c90) is None else round(mean(c90)),
        "codes_for_0.90_short_range": spread(c90),
        "codes_for_0.90_whole": None if mean(c90w) is None else round(mean(c90w)),
        "recall_short_at_codes": per_budget("recall_short_at_codes", mean),
        "recall_short_range_at_codes": per_budget("recall_short_at_codes", spread),
        "recall_short_stderr_at_codes": per_budget("recall_short_stderr_at_codes", mean),
        "recall_whole_at_codes": per_budget("recall_whole_at_codes", mean),
        "max_abs_gap_sample": max(r["max_abs_gap_sample"] for r in repeats),
        "chosen": [
            [r["chosen_leaves"], r["chosen_codes"], r["chosen_stated"], r["chosen_recall_short"]] for r in repeats
        ],
        "repeats": repeats,
    }


#: Codes at which the 120,000-sentence set (``--spec full``, :data:`SCALE_VARIANTS` once each) is compared: larger,
#: since the default's leaves hold about 173 codes each there, against 55.
FULL_BUDGETS = (4000, 8000, 12000)


def text_set(spec_name: str, console):
    """bench.query_recall's real text set ``spec_name``, its held-out sentences split in two: the first half cut
    to their first words (the query sample), the second half only measured, cut the same way and whole.
    Returns (the set, sample, held-out short, held-out whole)."""
    from .query_recall import SPECS, embed, short
    from .real_text import Spec, load

    real = load(Spec(**SPECS[spec_name]), console=console)
    half = len(real.query_texts) // 2
    short_vectors = embed([short(t) for t in real.query_texts], console)
    return real, short_vectors[:half], short_vectors[half:], real.query_vectors[half:]


def run_text(console, spec_name: str = "stdlib", orders: int = ORDERS) -> dict:
    """The real text set of bench.query_recall's ``spec_name``: short typed queries, whole sentences beside them."""
    real, sample, held_short, held_whole = text_set(spec_name, console)
    full = spec_name == "full"
    variants, budgets = (SCALE_VARIANTS, FULL_BUDGETS) if full else (VARIANTS, BUDGETS)
    runs = run_variants(
        console, list(real.ids), real.vectors, "dot", sample, held_short, held_whole, variants, budgets, {}, orders
    )
    return {
        "command": "python -m bench.query_knobs"
        + (f" --spec {spec_name}" if spec_name != "stdlib" else "")
        + (f" --orders {orders}" if orders != (1 if full else ORDERS) else ""),
        "spec": spec_name,
        "set": "short typed queries against whole sentences",
        "budgets": list(budgets),
        "orders": orders,
        "catalog": len(real.ids),
        "dim": int(real.vectors.shape[1]),
        "sample": len(sample),
        "held_out": len(held_short),
        "runs": runs,
    }


#: Variants for the cross-modal set, whose 4,024 images get 64 leaves forced (as the demo does): leaves per
#: sqrt(N) does not apply; the number of leaves is varied instead.
CROSS_VARIANTS: tuple[tuple[str, dict], ...] = (
    ("default (64 leaves, spherical, items only)", {}),
    ("32 leaves", {"num_leaves": 32}),
    ("128 leaves", {"num_leaves": 128}),
    ("plain k-means", {"spherical": False}),
    ("train on queries 0.1", {"train_on_queries": 0.1}),
    ("train on queries 0.25", {"train_on_queries": 0.25}),
    ("train on queries 0.5", {"train_on_queries": 0.5}),
)


def run_cross(
    demo: Path, console, sample_size: int = 500, held_out: int = 400, images: str = "openmoji", orders: int = ORDERS
) -> dict:
    """The demo's captions (text tower) against its 4,024 emoji images (image tower), as bench.query_recall's
    cross-modal study draws them: shuffled with seed 0, the first ``sample_size`` the sample, the next
    ``held_out`` only measured. Each variant's catalog holds the demo catalog's stored image vectors, in id order
    (then the shuffles of ``orders``). ``images="all-styles"``: the five-style catalog of :mod:`bench.emoji_images`
    instead, with default settings and :data:`SCALE_VARIANTS`."""
    import shutil

    from scannlite.plugin.facade.database import Database
    from scannlite.plugin.facade.search import embed_queries
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index import snapshot

    captions = [json.loads(line)["metadata"] for line in (demo / "openmoji-captions.jsonl").open() if line.strip()]
    order = np.random.default_rng(0).permutation(len(captions))
    texts = [captions[i] for i in order[: sample_size + held_out]]
    with tempfile.TemporaryDirectory(prefix="scannlite-query-knobs-x-") as tmp:
        source = Path(tmp) / "source.catalog"
        styles = None
        if images == "all-styles":
            from . import emoji_images

            made, styles = emoji_images.catalog(demo, console)
        shutil.copytree(made if styles is not None else demo / "emoji.catalog", source)
        (source / ".lock").unlink(missing_ok=True)
        with Catalog.open(source) as cat:
            Database(cat).configure(text_embedder=demo / "towers" / "text_embedder.tflite")
        with Catalog.open(source) as cat:  # opened again: an open catalog reads its settings once
            queries = embed_queries(cat, "text", texts)
            snap = snapshot.load_snapshot(cat, with_vectors=True)
            by_id = np.argsort(np.asarray(snap.ids, dtype=object), kind="stable")
            ids, vectors, distance = [snap.ids[i] for i in by_id], snap.vectors[by_id], cat.distance
    sample, held = queries[:sample_size], queries[sample_size:]
    if styles is not None:
        variants, budgets, base = SCALE_VARIANTS, STYLES_BUDGETS, {"recall_target": 0.9}
    else:
        variants, budgets, base = CROSS_VARIANTS, CROSS_BUDGETS, {"num_leaves": 64, "recall_target": 0.9}
    runs = run_variants(console, ids, vectors, distance, sample, held, None, variants, budgets, base, orders)
    out = {
        "command": f"python -m bench.query_knobs --cross {demo}"
        + (" --images all-styles" if styles is not None else "")
        + (f" --orders {orders}" if orders != ORDERS else ""),
        "set": "captions against images",
        "budgets": list(budgets),
        "orders": orders,
        "catalog": len(ids),
        "sample": len(sample),
        "held_out": len(held),
        "note": "OpenMoji 17.0 (make demo): 4,024 emoji images, 128-d towers; small: 64 leaves of about 63 each",
        "runs": runs,
    }
    if styles is not None:
        out["images"] = "all-styles"
        out["note"] = emoji_images.describe(styles, len(ids), runs[0]["num_leaves"])["catalog"]
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cross", type=Path, help="the demo's outputs folder (emoji.catalog, towers/, captions)")
    ap.add_argument("--spec", choices=("stdlib", "full"), default="stdlib", help="the real text set (not with --cross)")
    ap.add_argument("--images", choices=("openmoji", "all-styles"), default="openmoji", help="with --cross: which set")
    ap.add_argument(
        "--orders", type=int, help=f"builds per variant (default {ORDERS}; 1 with --spec full; only those two sets)"
    )
    args = ap.parse_args(argv)
    orders = args.orders or (1 if args.spec == "full" and not args.cross else ORDERS)
    if orders < 1 or (
        orders != ORDERS and not (args.images == "all-styles" or (args.spec == "full" and not args.cross))
    ):
        ap.error(
            f"--orders is a positive number, and only with --images all-styles or --spec full (the others use {ORDERS})"
        )
    console = Console(stderr=True, highlight=False)
    started = datetime.now(UTC)
    out = (
        run_cross(args.cross, console, images=args.images, orders=orders)
        if args.cross
        else run_text(console, args.spec, orders)
    )
    out["target"] = TARGET
    results.stamped(out, started)
    name = "query_knobs_full.json" if args.spec == "full" else "query_knobs.json"
    if args.cross:
        name = "query_knobs_cross_styles.json" if args.images == "all-styles" else "query_knobs_cross.json"
    results.write(results.RESULTS / "raw" / name, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
