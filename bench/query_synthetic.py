"""Issue 27's synthetic case, re-measured: the recall target on clustered synthetic vectors, without and with a
query sample.

The issue reported that on synthetic clustered data the build stated 0.90 at 64 leaves (the cap) where held-out
queries needed 11. Each run is one catalog: the benchmarks' generator (``clustered`` and ``split`` as
:mod:`bench.data` draws them for :data:`bench.setup.FULL` with that ``n``; the clusters' ``spread`` may differ from
the generator's default), its first ``n`` rows the catalog, :data:`SAMPLE` rows of the held-out additions (never in
the catalog, drawn like it) added as the query sample (``query_sample.add``), and the :data:`HELD_OUT` held-out
queries of ``split`` only measured. Two builds with default settings: without the sample (the leave-one-out estimate
and the target met on it), then with it (no item changed, so the same partitions; the target met on the sample). At
every ladder step: both estimates, and recall@10 of the held-out queries by the device-equivalent search against
exact search (:func:`bench.query_recall.measured`); the leaves each build chose and the held-out recall there; the
fewest leaves the held-out queries needed for the target; the sample estimate's cost as a share of the full build.

``python -m bench.query_synthetic [--run N[:SPREAD[:SEED]] ...] [--quick]`` (default :data:`RUNS`) writes
``bench/results/raw/query_recall_synthetic.json`` (not with ``--quick``: one 5,000-item catalog, a smoke run);
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
SPREAD = 0.45  # clustered()'s default
#: The benchmarks' sizes at the generator's default spread, then a spread whose recall levels off at the 0.90
#: target (tighter clusters: the codes, not the leaves, bound recall lower), with three data seeds.
RUNS = ("5000", "20000", "50000", "123287", "20000:0.38:0", "20000:0.38:1", "20000:0.38:2")
OUT = results.RESULTS / "raw" / "query_recall_synthetic.json"


def parse_run(text: str) -> tuple[int, float, int]:
    """``N[:SPREAD[:SEED]]`` as (items, spread, data seed); spread defaults to :data:`SPREAD`, seed to 0."""
    parts = text.split(":")
    try:
        if not 1 <= len(parts) <= 3:
            raise ValueError
        n = int(parts[0])
        spread = float(parts[1]) if len(parts) > 1 else SPREAD
        seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise SystemExit(f"error: a run is N[:SPREAD[:SEED]] (e.g. 20000:0.38:1), got {text!r}") from None
    if n < 5_000 or not 0 < spread <= 4 or seed < 0:
        raise SystemExit(f"error: a run needs at least 5,000 items, a spread in (0, 4] and a seed >= 0, got {text!r}")
    return n, spread, seed


def needed_leaves(ladder: list[int], recall: list[float], target: float) -> int | None:
    """The fewest ladder leaves whose recall reaches ``target`` (None when none does): what the target would choose
    had it known the held-out queries' recall."""
    return next((leaves for leaves, r in zip(ladder, recall) if r >= target), None)


def loo_from_unseen(n: int, config) -> bool:
    """Whether the leave-one-out estimate drew its queries from items the partitions were not trained on: it does
    when at least ``recall_sample`` items were left out of the training sample (recall_estimate.estimate)."""
    return n - min(n, config.training_sample_size) >= min(config.recall_sample, n)


def data(n: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(catalog, sample, held-out queries, the generator's description): bench.data's arrays for
    :data:`bench.setup.FULL` with ``n`` items and data seed ``seed`` (the same ones at the default spread), the
    sample the first :data:`SAMPLE` additions."""
    from scannlite.store.catalog.synthetic import clustered, split

    from .setup import FULL

    s = replace(FULL, n=n, queries=HELD_OUT, data_seed=seed)
    x = clustered(s.total, s.dim, seed=s.data_seed, spread=spread)
    rest, held = split(x, s.queries, seed=s.split_seed)
    text = (
        f"clustered({s.total:,}, {s.dim}, seed={s.data_seed}, spread={spread}) (clusters = {s.total // 60:,}), "
        f"split(x, {s.queries}, seed={s.split_seed}); catalog = first {n:,} rows, sample = next {SAMPLE}"
    )
    return rest[:n], rest[n : n + SAMPLE], held, text


def run(n: int, spread: float, seed: int, console) -> dict:
    """One catalog of ``n`` synthetic items: both builds and the held-out measurements."""
    from scannlite.store.catalog import query_sample
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig

    from .query_recall import measured, recall_on

    base, sample, held, generator = data(n, spread, seed)
    dim = base.shape[1]
    config = IndexConfig()
    console.print(f"synthetic {n:,} x {dim}, spread {spread}, seed {seed}: full build without a sample")
    with tempfile.TemporaryDirectory(prefix="scannlite-query-synthetic-") as tmp:
        cat = Catalog.create(Path(tmp) / "c", dim)
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
        "spread": spread,
        "seed": seed,
        "dim": dim,
        "generator": generator,
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
            "recall_on": recall_on(with_sample),
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


def ladder_runs(runs: list[dict]) -> list[list[dict]]:
    """The runs whose every ladder step docs/queries.md shows, one table per spread (the default's first): that
    spread's largest catalog, each of its seeds (by seed)."""
    spreads = sorted({r["spread"] for r in runs}, key=lambda x: (x != SPREAD, x))
    out = []
    for spread in spreads:
        these = [r for r in runs if r["spread"] == spread]
        largest = max(r["n"] for r in these)
        out.append(sorted((r for r in these if r["n"] == largest), key=lambda r: r["seed"]))
    return out


def markdown(study: dict | None) -> str:
    """docs/queries.md's tables for the synthetic case, from bench/results/raw/query_recall_synthetic.json: one line
    per catalog, then every ladder step of the runs :func:`ladder_runs` picks."""
    if not study:
        return ""
    runs = study["runs"]
    first = runs[0]
    out = [
        f"**(d) Synthetic clustered vectors, the case issue 27 reported** (`{study['command']}`, {study['date']}): "
        f"the benchmarks' generator (bench/data.py: `clustered(total, {first['dim']}, seed, spread)` with "
        f"clusters = total // 60, then `split`), {first['dim']}-d, default settings, one catalog per line; the "
        f"sample: {first['sample']} held-out additions (never in the catalog); measured on {first['held_out']} "
        'other held-out queries. "stated": the estimate the build met the target on (leave-one-out without the '
        'sample, the sample\'s with it); "held-out needs": the fewest ladder leaves at which the held-out queries '
        f"reach {first['target']:.2f}. Leave-one-out queries are items the partitions were not trained on only where "
        'the catalog exceeds the 100,000-point training sample by 500 ("loo from"); otherwise items they were '
        "trained on.",
        "",
        "| items | spread | seed | leaves | loo from | without sample: leaves; stated; held-out there | with sample: "
        "leaves; stated; held-out there | held-out needs | held-out at the cap | largest gap, leave-one-out | "
        "largest gap, sample | sample estimate, share of the build |",
        "| --- " * 12 + "|",
    ]
    for r in runs:
        w, s = r["without_sample"], r["with_sample"]
        out.append(
            f"| {r['n']:,} | {r['spread']} | {r['seed']} | {r['num_leaves']} "
            f"| {'unseen' if r['loo_from_unseen'] else 'trained on'} "
            f"| {w['leaves_to_search']}; {w['stated']:.3f}; {w['measured']:.3f} "
            f"| {s['leaves_to_search']}; {s['stated']:.3f}; {s['measured']:.3f} "
            f"| {_leaves(r['held_out_needs'])} | {r['measured_at_cap']:.3f} ({r['cap']}) "
            f"| {r['max_abs_gap_loo']:.3f} | {r['max_abs_gap_sample']:.3f} "
            f"| {100 * r['sample_estimate_share_of_build']:.1f}% of {r['full_build_seconds']:.0f} s |"
        )
    for table in ladder_runs(runs):
        r = table[0]
        seeds = ", ".join(str(x["seed"]) for x in table)
        out += [
            "",
            f"Every ladder step of {r['n']:,} items, spread {r['spread']}, seed{'s' if len(table) > 1 else ''} "
            f"{seeds} ({r['num_leaves']} leaves; {r['generator']}{', the other seeds alike' if len(table) > 1 else ''})"
            + (
                ": leave-one-out estimate; sample estimate; measured on held-out queries, per seed"
                if len(table) > 1
                else ""
            )
            + ":",
            "",
        ]
        if len(table) == 1:
            out += [
                "| leaves | leave-one-out estimate | sample estimate (± s.e.) | measured, held-out "
                "| leave-one-out - measured | sample - measured |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            out += [
                f"| {x['leaves']} | {x['loo_estimate']:.3f} | {x['sample_estimate']:.3f} ± {x['sample_stderr']:.3f} "
                f"| {x['measured']:.3f} | {x['gap_loo']:+.3f} | {x['gap_sample']:+.3f} |"
                for x in r["rows"]
            ]
            continue
        out += [
            "| leaves | " + " | ".join(f"seed {x['seed']}" for x in table) + " |",
            "| --- " * (1 + len(table)) + "|",
        ]
        for i, step in enumerate(r["rows"]):
            cells = [x["rows"][i] for x in table]
            out.append(
                f"| {step['leaves']} | "
                + " | ".join(f"{c['loo_estimate']:.3f}; {c['sample_estimate']:.3f}; {c['measured']:.3f}" for c in cells)
                + " |"
            )
    return "\n".join(out + [""])


def markdown_in(folder: Path) -> str:
    """:func:`markdown` of ``folder``'s query_recall_synthetic.json ("" when there is none)."""
    path = folder / OUT.name
    return markdown(json.loads(path.read_text()) if path.is_file() else None)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--run", action="append", metavar="N[:SPREAD[:SEED]]", help=f"a catalog to measure (repeat; default {RUNS})"
    )
    ap.add_argument("--quick", action="store_true", help="one 5,000-item catalog, nothing written")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    specs = ["5000"] if args.quick else args.run or list(RUNS)
    plan = [parse_run(text) for text in specs]
    console = Console(stderr=True, highlight=False)
    started = datetime.now(UTC)
    runs = [run(n, spread, seed, console) for n, spread, seed in plan]
    out = results.stamped(
        {"runs": runs},
        started,
        "python -m bench.query_synthetic"
        + (" --quick" if args.quick else "" if args.run is None else "".join(f" --run {t}" for t in specs)),
    )
    print(json.dumps(out, indent=1))
    if not args.quick:
        results.write(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
