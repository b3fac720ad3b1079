"""Issue 27's synthetic case, re-measured: the recall target on clustered synthetic vectors, without and with a
query sample.

The issue reported that on synthetic clustered data the build stated 0.90 at 64 leaves (the cap) where held-out
queries needed 11. For each catalog size (and data seed) asked for: the benchmarks' data (:mod:`bench.data`,
``clustered`` at its defaults and ``split``, :data:`bench.setup.FULL` with that ``n``), the catalog's first ``n``
rows, :data:`SAMPLE` rows of the held-out additions (never in the catalog, drawn like it) added as the query sample
(``query_sample.add``), and the :data:`HELD_OUT` held-out queries of ``split`` only measured. Two builds of one
catalog with default settings: without the sample (the leave-one-out estimate and the target met on it), then with
it (no item changed, so the same partitions; the target met on the sample). At every ladder step: both estimates,
and recall@10 of the held-out queries by the device-equivalent search against exact search
(:func:`bench.query_recall.measured`); the leaves each build chose and the held-out recall there; the fewest leaves
the held-out queries needed for the target; the sample estimate's cost as a share of the full build.

``python -m bench.query_synthetic [--sizes 20000,123287] [--seeds 0] [--quick]`` writes
``bench/results/raw/query_recall_synthetic.json`` (not with ``--quick``: 5,000 items, a smoke run);
``python -m bench.query_recall --markdown --write`` renders it into docs/queries.md (docs/queries.md, "Measured").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import block_tensorflow, results

block_tensorflow()

SAMPLE = 500
HELD_OUT = 500
SIZES = (20_000, 123_287)
OUT = results.RESULTS / "raw" / "query_recall_synthetic.json"


def needed_leaves(ladder: list[int], recall: list[float], target: float) -> int | None:
    """The fewest ladder leaves whose recall reaches ``target`` (None when none does): what the target would choose
    had it known the held-out queries' recall."""
    return next((leaves for leaves, r in zip(ladder, recall) if r >= target), None)


def loo_from_unseen(n: int, config) -> bool:
    """Whether the leave-one-out estimate drew its queries from items the partitions were not trained on: it does
    when at least ``recall_sample`` items were left out of the training sample (recall_estimate.estimate)."""
    return n - min(n, config.training_sample_size) >= min(config.recall_sample, n)


def run(n: int, seed: int, workdir: Path, console) -> dict:
    """One catalog of ``n`` synthetic items (data seed ``seed``): both builds and the held-out measurements."""
    from scannlite.store.catalog import query_sample
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig

    from .data import prepare
    from .query_recall import measured
    from .setup import FULL

    setup = replace(FULL, name=f"synthetic-{n}-{seed}", n=n, queries=HELD_OUT, data_seed=seed)
    if setup.extra < SAMPLE:
        raise SystemExit(f"error: {n} items hold out {setup.extra} additions, fewer than the {SAMPLE}-query sample")
    data = prepare(setup, workdir)
    base = np.asarray(data.base(), dtype=np.float32)
    held = np.asarray(data.queries(), dtype=np.float32)
    sample = np.asarray(data.extra()[:SAMPLE], dtype=np.float32)
    config = IndexConfig()
    console.print(f"synthetic {n:,} x {setup.dim}, seed {seed}: full build without a sample")
    with tempfile.TemporaryDirectory(prefix="scannlite-query-synthetic-") as tmp:
        cat = Catalog.create(Path(tmp) / "c", setup.dim)
        cat.add([f"v{i}" for i in range(len(base))], base)
        t0 = time.perf_counter()
        plain = build(cat)
        build_s = time.perf_counter() - t0
        ladder = plain.recall.ladder
        console.print(f"  built in {build_s:.0f} s ({plain.num_leaves} leaves); measuring held-out queries")
        held_m = measured(cat, held, ladder)
        query_sample.add(cat, sample)
        with_sample = build(cat)
        q = with_sample.query_recall
        chosen = with_sample.leaves_to_search
        again = measured(cat, held, [chosen])[0]  # the same partitions, so the same figure: checked
        cat.close()
    if with_sample.num_leaves != plain.num_leaves or abs(again - held_m[ladder.index(chosen)]) > 1e-9:
        raise SystemExit("error: the build with the sample changed the partitions; the figures would not compare")
    rows = [
        {
            "leaves": leaves,
            "loo_estimate": round(plain.recall.recall[i], 4),
            "sample_estimate": round(q.recall[i], 4),
            "sample_stderr": q.stderr[i],
            "measured": round(held_m[i], 4),
            "gap_loo": round(plain.recall.recall[i] - held_m[i], 4),
            "gap_sample": round(q.recall[i] - held_m[i], 4),
        }
        for i, leaves in enumerate(ladder)
    ]
    target, cap = config.recall_target, min(config.max_leaves_to_search, plain.num_leaves)
    need = needed_leaves(ladder, held_m, target)
    at_cap = max(step for step in ladder if step <= cap)
    return {
        "n": n,
        "seed": seed,
        "dim": setup.dim,
        "generator": data.generator(),
        "num_leaves": plain.num_leaves,
        "sample": int(q.sample),
        "held_out": len(held),
        "target": target,
        "cap": cap,
        "loo_from_unseen": loo_from_unseen(n, config),
        "rows": rows,
        "without_sample": {
            "leaves_to_search": plain.leaves_to_search,
            "stated": round(plain.recall.at(plain.leaves_to_search), 4),
            "measured": round(held_m[ladder.index(plain.leaves_to_search)], 4),
        },
        "with_sample": {
            "leaves_to_search": chosen,
            "stated": round(q.at(chosen), 4),
            "measured": round(again, 4),
            "recall_on": "queries" if q.sample >= 200 else "leave-one-out",
        },
        "held_out_needs": need,
        "measured_at_need": None if need is None else round(held_m[ladder.index(need)], 4),
        "measured_at_cap": round(held_m[ladder.index(at_cap)], 4),
        "max_abs_gap_loo": round(max(abs(r["gap_loo"]) for r in rows), 4),
        "max_abs_gap_sample": round(max(abs(r["gap_sample"]) for r in rows), 4),
        "full_build_seconds": round(build_s, 2),
        "loo_estimate_seconds": round(plain.recall.seconds, 2),
        "sample_estimate_seconds": round(q.seconds, 2),
        "sample_estimate_share_of_build": round(q.seconds / build_s, 3),
    }


def _leaves(x) -> str:
    return "not reached" if x is None else str(x)


def markdown(study: dict | None) -> str:
    """docs/queries.md's table for the synthetic case, from bench/results/raw/query_recall_synthetic.json: one line
    per catalog, then every ladder step of the largest."""
    if not study:
        return ""
    runs = study["runs"]
    main = max(runs, key=lambda r: r["n"])
    out = [
        f"**(c) Synthetic clustered vectors, the case issue 27 reported** (`{study['command']}`, {study['date']}): "
        f"the benchmarks' generator (bench/data.py: {main['generator']}, each catalog with its own total and "
        f"seed), {main['dim']}-d, default settings; the sample: {main['sample']} of the held-out additions "
        f'(never in the catalog); measured on the {main["held_out"]} held-out queries of `split`. "held-out '
        f'needs": the fewest ladder leaves at which the held-out queries reach {main["target"]:.2f}. Leave-one-out '
        "queries are items the partitions were not trained on only where the catalog exceeds the 100,000-point "
        'training sample by the 500 queries ("loo from").',
        "",
        "| items | seed | leaves | loo from | without sample: leaves; stated; held-out there | with sample: leaves; "
        "stated; held-out there | held-out needs | held-out at the cap | largest gap, leave-one-out | largest "
        "gap, sample | sample estimate, share of the build |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        w, s = r["without_sample"], r["with_sample"]
        out.append(
            f"| {r['n']:,} | {r['seed']} | {r['num_leaves']} | {'unseen' if r['loo_from_unseen'] else 'trained on'} "
            f"| {w['leaves_to_search']}; {w['stated']:.3f}; {w['measured']:.3f} "
            f"| {s['leaves_to_search']}; {s['stated']:.3f}; {s['measured']:.3f} "
            f"| {_leaves(r['held_out_needs'])} | {r['measured_at_cap']:.3f} ({r['cap']}) "
            f"| {r['max_abs_gap_loo']:.3f} | {r['max_abs_gap_sample']:.3f} "
            f"| {100 * r['sample_estimate_share_of_build']:.1f}% of {r['full_build_seconds']:.0f} s |"
        )
    out += [
        "",
        f"Every ladder step of the {main['n']:,}-item catalog (seed {main['seed']}, {main['num_leaves']} leaves):",
        "",
        "| leaves | leave-one-out estimate | sample estimate (± s.e.) | measured, held-out | leave-one-out - measured "
        "| sample - measured |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {r['leaves']} | {r['loo_estimate']:.3f} | {r['sample_estimate']:.3f} ± {r['sample_stderr']:.3f} "
        f"| {r['measured']:.3f} | {r['gap_loo']:+.3f} | {r['gap_sample']:+.3f} |"
        for r in main["rows"]
    ]
    return "\n".join(out + [""])


def markdown_in(folder: Path) -> str:
    """:func:`markdown` of ``folder``'s query_recall_synthetic.json ("" when there is none)."""
    path = folder / OUT.name
    return markdown(json.loads(path.read_text()) if path.is_file() else None)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(str(n) for n in SIZES), help="catalog sizes, comma-separated")
    ap.add_argument("--seeds", default="0", help="data seeds, comma-separated (each size with each seed)")
    ap.add_argument("--quick", action="store_true", help="one 5,000-item catalog, nothing written")
    ap.add_argument("--workdir", type=Path, help="where the data arrays go (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    try:
        sizes = [5_000] if args.quick else [int(x) for x in args.sizes.split(",")]
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(
            f"error: --sizes and --seeds take comma-separated integers, got {args.sizes!r}, {args.seeds!r}"
        )
    if any(n < 5_000 for n in sizes):
        raise SystemExit("error: every size must be at least 5,000 (smaller catalogs hold out too few additions)")
    console = Console(stderr=True, highlight=False)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="scannlite-query-synthetic-data-") as tmp:
        workdir = args.workdir or Path(tmp)
        runs = [run(n, seed, workdir, console) for n in sizes for seed in seeds]
    machine, versions = results.machine_facts()
    out = {
        "runs": runs,
        "command": "python -m bench.query_synthetic"
        + (" --quick" if args.quick else f" --sizes {','.join(map(str, sizes))} --seeds {','.join(map(str, seeds))}"),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "versions": versions,
    }
    print(json.dumps(out, indent=1))
    if not args.quick:
        results.write(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
