"""Command line shared by ``bench.run_all`` and the single-benchmark modules.

Options: ``--quick`` (5,000 vectors: a smoke run of every step, numbers meaningless),
``--workdir`` (keep data, catalogs and bundles there; default a temporary directory removed
afterwards), ``--output`` (Markdown report), ``--png`` (recall curve), ``--json`` (headline
figures). ``run_all`` without options writes docs/benchmarks.md and docs/recall.png.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
import time
from pathlib import Path

from . import ROOT, block_tensorflow

from .data import prepare
from .report import command_line, console, now, targets_table, write_markdown
from .setup import pick

# Every benchmark entry point comes through here before anything imports scann (which tries
# TensorFlow) or the benchmark modules' lazy imports run.
block_tensorflow()


def parse(argv, defaults_to_docs: bool) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data (5,000 vectors): a fast smoke run")
    ap.add_argument("--workdir", type=Path, help="where data, catalogs and bundles go (kept)")
    ap.add_argument("--output", type=Path, help="write the Markdown report here")
    ap.add_argument("--png", type=Path, help="write the recall curve here")
    ap.add_argument("--json", type=Path, help="write the headline figures here")
    args = ap.parse_args(argv)
    if defaults_to_docs and not args.quick:
        args.output = args.output or ROOT / "docs" / "benchmarks.md"
        args.png = args.png or ROOT / "docs" / "recall.png"
    return args


def run_sections(argv, names: list[str], *, defaults_to_docs: bool = False) -> int:
    args = parse(argv, defaults_to_docs)
    setup = pick(args.quick)
    con = console()
    say = lambda msg: con.print(f"[dim]- {msg}[/dim]")  # noqa: E731
    started, t_start = now(), time.perf_counter()
    load_before = os.getloadavg()
    command = command_line()
    with tempfile.TemporaryDirectory(prefix="scannlite-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        data = prepare(setup, workdir)
        con.print(f"[bold]scannlite benchmarks[/bold] ({setup.name}: {setup.n:,} x {setup.dim}); work in {workdir}")
        sections = []
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            t0 = time.perf_counter()
            section = module.run(data, workdir, command, say=say)
            section.seconds = time.perf_counter() - t0
            for table in section.tables:
                table.print(con)
            sections.append(section)
        generator = data.generator()
        profile = data.profile_text()
    curves = {k: v for s in sections for k, v in s.curves.items()}
    png_rel = None
    if args.png and curves:
        from .plot import recall_png

        recall_png(curves, args.png, title=f"recall@{setup.k}, {setup.n:,} x {setup.dim}, {setup.leaves} leaves "
                                            f"({setup.name} run)", target_leaves=setup.searched)
        png_rel = os.path.relpath(args.png, args.output.parent) if args.output else str(args.png)
        con.print(f"recall curve: {args.png}")
    for s in sections:
        if args.png and s.plot:
            from .plot import codes_png

            path = codes_png(s.plot, args.png.with_name(s.plot["file"]))
            s.image = os.path.relpath(path, args.output.parent) if args.output else str(path)
            con.print(f"{s.plot['caption']}: {path}")
    targets_table(sections).print(con)
    seconds = time.perf_counter() - t_start
    if args.output:
        write_markdown(args.output, sections, setup=setup, generator=generator, started=started, seconds=seconds,
                       png=png_rel, profile=profile, load_before=load_before, load_after=os.getloadavg())
        con.print(f"report: {args.output}")
    if args.json:
        args.json.write_text(json.dumps({
            "setup": setup.as_dict(), "seconds": seconds,
            "sections": {s.name: {"figures": s.figures, "targets": [(t, m, bool(ok)) for t, m, ok in s.targets]}
                         for s in sections}},
            indent=2, default=float))
    con.print(f"total {seconds / 60:.1f} min")
    return 0
