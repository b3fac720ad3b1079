"""Command line shared by ``bench.run_all`` and the single-benchmark modules.

Options: ``--quick`` (5,000 vectors: a smoke run of every step, numbers meaningless),
``--workdir`` (keep data, catalogs and bundles there; default a temporary directory removed
afterwards), ``--results`` (the folder each study's JSON goes to), ``--output`` (the Markdown
rendered from that folder), ``--png`` (recall curve), ``--json`` (headline figures). Without
options a study writes ``bench/results/benchmarks/<study>.json`` and re-renders docs/benchmarks.md
from all the studies' files (``bench.render``); with ``--quick`` nothing under bench/ or docs/.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from . import ROOT, block_tensorflow, results
from .data import prepare
from .render import write_doc
from .report import command_line, console, now, targets_table
from .setup import pick

# Every benchmark entry point comes through here before anything imports scann (which tries
# TensorFlow) or the benchmark modules' lazy imports run.
block_tensorflow()


def parse(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data (5,000 vectors): a fast smoke run")
    ap.add_argument("--workdir", type=Path, help="where data, catalogs and bundles go (kept)")
    ap.add_argument(
        "--results",
        type=Path,
        help="write each study's JSON results here (default: "
        "bench/results/benchmarks; with --quick, WORKDIR/results when --output is given)",
    )
    ap.add_argument(
        "--output",
        type=Path,
        help="render the Markdown report of the results folder here (default docs/benchmarks.md, not with --quick)",
    )
    ap.add_argument("--png", type=Path, help="write the recall curve here")
    ap.add_argument("--json", type=Path, help="write the headline figures here")
    args = ap.parse_args(argv)
    if not args.quick:
        args.results = args.results or results.RESULTS / "benchmarks"
        args.output = args.output or ROOT / "docs" / "benchmarks.md"
        args.png = args.png or ROOT / "docs" / "recall.png"
    return args


# Studies measured on the synthetic set: its description goes to their results' "Data and settings".
SYNTHETIC = ("build_recall", "export_latency", "delta_bundles")


def synthetic_data(setup, data) -> list[str]:
    """The synthetic set's "Data and settings" bullets (``data``: :func:`bench.data.prepare`'s)."""
    return [
        f"Synthetic run `{setup.name}`: {setup.n:,} x {setup.dim} catalog, {setup.queries} held-out queries, "
        f"{setup.leaves} leaves, {setup.searched} searched by default, AH dims_per_block {setup.dims_per_block}, "
        f"recall@{setup.k} against exact search.",
        f"Its generator (library defaults, not tuned): `{data.generator()}`.",
        f"How hard the synthetic data is (no index involved): {data.profile_text()}.",
        "Exact truth: `snapshot.search(cat, queries, k=10, exact=True)`: brute force over the snapshot's "
        "stored float vectors; every method below is scored against this one truth.",
    ]


def save_results(folder: Path | None, output: Path | None, runs: list[dict], con) -> None:
    """Write each study's JSON into ``folder``, then render ``output`` from everything there."""
    if folder is None:
        return
    for run in runs:
        con.print(f"results: {results.write(folder / (run['study'] + '.json'), run)}")
    if output:
        con.print(f"report: {write_doc('benchmarks', output, folder)}")


def run_sections(argv, names: list[str]) -> int:
    args = parse(argv)
    from scannlite.store.bundle.ondevice.tflite_modules import task_library_installed

    if not task_library_installed():
        # The studies time and check the Task Library as the reference device (docs/benchmarks.md).
        print(
            "error: the benchmarks measure the Task Library beside libscannlite, and tflite-support is not "
            "installed on this Python (wheels for 3.11 only): run them in the 3.11 environment (make bench)",
            file=sys.stderr,
        )
        return 2
    if args.quick and args.output and not args.results:
        args.results = (args.workdir or args.output.parent) / "results"
    setup = pick(args.quick)
    con = console()
    say = lambda msg: con.print(f"[dim]- {msg}[/dim]")  # noqa: E731
    t_start = time.perf_counter()
    command = command_line()
    with tempfile.TemporaryDirectory(prefix="scannlite-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        data = prepare(setup, workdir)
        con.print(f"[bold]scannlite benchmarks[/bold] ({setup.name}: {setup.n:,} x {setup.dim}); work in {workdir}")
        sections, runs = [], []
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            t0, study_started, study_load = time.perf_counter(), now(), os.getloadavg()
            section = module.run(data, workdir, command, say=say)
            section.seconds = time.perf_counter() - t0
            for table in section.tables:
                table.print(con)
            sections.append(section)
            runs.append((name, section, study_started, (study_load[0], os.getloadavg()[0])))
        described = synthetic_data(setup, data)
    curves = {k: v for s in sections for k, v in s.curves.items()}
    png_rel = None
    if args.png and curves:
        from .plot import recall_png

        recall_png(
            curves,
            args.png,
            title=f"recall@{setup.k}, {setup.n:,} x {setup.dim}, {setup.leaves} leaves ({setup.name} run)",
            target_leaves=setup.searched,
        )
        png_rel = os.path.relpath(args.png, args.output.parent) if args.output else str(args.png)
        con.print(f"recall curve: {args.png}")
    images = {}
    for s in sections:
        if args.png and s.plot:
            from .plot import codes_png

            path = codes_png(s.plot, args.png.with_name(s.plot["file"]))
            s.image = os.path.relpath(path, args.output.parent) if args.output else str(path)
            cap = s.plot["caption"]
            images[s.name] = [{"file": s.image, "alt": cap, "caption": f"[{cap[0].upper()}{cap[1:]}]({s.image})."}]
            con.print(f"{cap}: {path}")
        if png_rel and s.curves:
            images.setdefault(s.name, []).append(
                {
                    "file": png_rel,
                    "alt": "recall@10 against leaves searched",
                    "caption": f"[Synthetic set: recall curve]({png_rel}): recall@10 against leaves searched (probes for "
                    "FAISS), same queries and truth for all four.",
                }
            )
    targets_table(sections).print(con)
    seconds = time.perf_counter() - t_start
    save_results(
        args.results,
        args.output,
        [
            results.section_json(
                s,
                name,
                started=at,
                load=load,
                images=images.get(s.name, ()),
                data=described if name in SYNTHETIC else (),
            )
            for name, s, at, load in runs
        ],
        con,
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "setup": setup.as_dict(),
                    "seconds": seconds,
                    "sections": {
                        s.name: {"figures": s.figures, "targets": [(t, m, bool(ok)) for t, m, ok in s.targets]}
                        for s in sections
                    },
                },
                indent=2,
                default=float,
            )
        )
    con.print(f"total {seconds / 60:.1f} min")
    return 0
