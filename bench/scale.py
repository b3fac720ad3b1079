"""Benchmark for issue 10, part 1: a full build at a million vectors in bounded memory.

``python -m bench.scale [--n 1000000]`` (about 15 minutes at 1M here) writes
``bench/results/scale/<n>.json`` and renders docs/scale.md from every size's results
(``bench.render``; ``--results``/``--output`` put them elsewhere).
Every step runs in a fresh process (:mod:`bench.stage`: wall time and peak RSS of that step
alone), side by side in one run:

1. the vectors: clustered unit vectors (the synthetic benchmark's generator) written chunk by
   chunk into one ``.npy`` file, never all in memory, plus 1% more and 1,000 held-out queries;
2. ``Catalog.create`` + ``add_file`` of the ``.npy`` with a JSONL of ids (what ``scannlite add`` runs):
   streamed in chunks, one commit;
3. ``build(cat)``: the first build, so a full training (default settings but the benchmark's
   leaves: the same count as Model Maker's, for a like-for-like comparison);
4. ``add`` of 1% more and an incremental ``build``;
5. ScaNN run directly with Model Maker's recipe on the same array (``bench.peers``), up to
   2M vectors (``--peer``/``--no-peer``; it held 10 GiB at 1M, so 5M does not fit here);
6. an index-only ``.ldb`` export of the snapshot, verified by the Task Library;
7. a full bundle: the index packed into a small text tower, verified through the bundle's own
   TextEmbedder and TextSearcher as an app opens it;
8. device-equivalent recall@10 against exact search (streamed from the segments), on the
   held-out queries.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from . import ROOT, block_tensorflow, results, stage
from .render import write_doc
from .report import Section, Table, command_line, console, mib, now

CHUNK = 100_000
QUERIES = 1_000
K = 10
GROWTH = 0.01


def write_vectors(path: str, n: int, dim: int, seed: int, clusters: int) -> dict:
    """``n`` clustered unit vectors into ``path`` (.npy), CHUNK rows at a time: the same
    ``clusters`` centres for every file (the catalog, its growth and the queries come from
    one distribution), each chunk's points from its own generator seeded by ``seed``."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.5
    weights /= weights.sum()
    widths = (0.45 * rng.uniform(0.6, 1.4, size=clusters)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for i, start in enumerate(range(0, n, CHUNK)):
        r = np.random.default_rng([seed, i])
        m = min(CHUNK, n - start)
        labels = r.choice(clusters, size=m, p=weights)
        x = centres[labels] + widths[labels, None] * (r.standard_normal((m, dim), dtype=np.float32) / math.sqrt(dim))
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    return {"rows": n}


def add_file(path: str, npy: str, prefix: str, create_dim: int | None = None, leaves: int | None = None) -> dict:
    """``scannlite add CATALOG npy --ids ids.jsonl``: the whole file streamed in chunks, one
    commit (ids ``{prefix}{row}`` written beside it first, outside the measured call's memory
    but inside its time)."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.config import IndexConfig

    if create_dim:
        Catalog.create(Path(path), create_dim, "dot", index=IndexConfig(num_leaves=leaves)).close()
    rows = np.load(npy, mmap_mode="r").shape[0]
    ids = Path(npy).with_suffix(".ids.jsonl")
    with open(ids, "w") as f:
        for start in range(0, rows, CHUNK):
            f.write("".join(f'{{"id": "{prefix}{i}"}}\n' for i in range(start, min(rows, start + CHUNK))))
    with Catalog.open(Path(path)) as cat:
        r = cat.add_file(Path(npy), ids_path=ids)
        return {"count": cat.count(), "added": r.added}


def warm_checks():
    """The export's device side, verifying in a warm device worker instead of a fresh one, so
    that the worker is still alive when its peak (VmHWM) is read. The kernel's peak over exited
    children (``ru_maxrss``) would not do: a child started by vfork carries its parent's
    high-water mark from before its exec, so it reads as the driver's peak."""
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.workers.boundary import run_in

    class WarmChecks(DeviceProcesses):
        def check_bundle(self, **kwargs):
            return run_in("device", "scannlite.plugin.device.exporter:check_bundle", **kwargs)

    return WarmChecks()


def export_index(path: str, out: str) -> dict:
    """``scannlite export CATALOG --index-only --out OUT.ldb``: the newest snapshot, verified."""
    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog

    with Catalog.open(Path(path)) as cat:
        r = export(cat, device=warm_checks(), out=Path(out), embedder=None, index_only=True)
    return {"bytes": Path(out).stat().st_size, "verified": r.verified, "worker_peak_rss": children_peak_rss()}


def export_bundle(path: str, out: str, dim: int) -> dict:
    """``scannlite export CATALOG --embedder TOWER --probe PROBE --out OUT.tflite``: the newest
    snapshot packed into a small text tower (the probe embedder over 1,000 random vectors: text
    ``qI`` embeds to row I, made first in a device process), verified through the bundle's own
    TextEmbedder and TextSearcher on the probe texts."""
    from scannlite.plugin.device.probe_model import probe_token
    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.workers.boundary import run_in

    out = Path(out)
    tower, probe = out.with_name("tower.tflite"), out.with_name("probe.txt")
    vectors = np.random.default_rng(4).standard_normal((QUERIES, dim)).astype(np.float32)
    tower.write_bytes(run_in("device", "scannlite.plugin.device.runtime:make_probe_model", vectors))
    probe.write_text("".join(f"{probe_token(i)}\n" for i in range(0, QUERIES, 10)))
    with Catalog.open(Path(path)) as cat:
        r = export(cat, device=warm_checks(), out=out, embedder=tower, probe=probe)
    return {"bytes": out.stat().st_size, "verified": r.verified, "worker_peak_rss": children_peak_rss()}


def bundle_command(bundle: str, command: str) -> dict:
    """``scannlite bundle info|query|verify BUNDLE`` as the CLI runs them (``store.bundles``), on the
    exported bundle: ``query`` asks 10 probe texts, ``verify`` checks the file against itself (no
    catalog), both in a warm device worker whose peak is read before it exits."""
    from scannlite.plugin.device.probe_model import probe_token
    from scannlite.store.bundle import inspection as bundles

    if command == "info":
        out = bundles.info(bundle)
        note = f"{out['index']['items']:,} items, {len(out['index']['problems'])} problems"
    elif command == "query":
        hits = bundles.query(bundle, device=warm_checks(), texts=[probe_token(i) for i in range(10)], k=10)
        note = f"{sum(len(h) for h in hits)} results for 10 texts"
    elif command == "verify":
        problems, rep = bundles.verify(bundle, device=warm_checks())
        if problems:
            raise RuntimeError(f"bundle verify found problems: {problems[:3]}")
        note = f"{rep.queries} queries matched"
    else:
        raise ValueError(f"unknown bundle command {command!r}")
    return {"note": note, "worker_peak_rss": children_peak_rss()}


def children_peak_rss() -> int:
    """The largest peak RSS (VmHWM, bytes) among this process's children still running: the
    warm device worker that verified the index, before it exits."""
    peaks = [0]
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            peaks += [int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks)


def recall(path: str, queries: str, mm_assets: str | None, base: str, mm_searched: int) -> dict:
    """recall@K against exact search: the catalog's snapshot at its own leaves, and Model
    Maker's assets at ``mm_searched`` leaves, on the same queries."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.catalog.synthetic import recall_at_k
    from scannlite.store.index import device_search, snapshot

    from .recall import ids_of, model_maker_index

    q = np.load(queries)
    with Catalog.open(Path(path)) as cat:
        snap = snapshot.load_snapshot(cat, None)
        exact = ids_of(snapshot.search(cat, q, k=K, exact=True, snapshot=snap))
        ours = recall_at_k(ids_of(snapshot.search(cat, q, k=K, snapshot=snap)), exact, K)
        leaves = snap.info.leaves_to_search
    if mm_assets is None:
        return {"scannlite": ours, "scannlite_leaves": leaves, "model_maker": None}
    x = np.load(base, mmap_mode="r")
    index, order = model_maker_index(Path(mm_assets), x, 1)
    index = dataclasses.replace(index, lookup_type="FLOAT")
    pos, _ = device_search.search(index, device_search.l2_normalize(q), K, mm_searched)
    theirs = recall_at_k([[f"v{order[j]}" for j in row if j >= 0] for row in pos], exact, K)
    return {"scannlite": ours, "scannlite_leaves": leaves, "model_maker": theirs}


def main(argv: list[str] | None = None) -> int:
    block_tensorflow()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scannlite-scale"))
    ap.add_argument("--results", type=Path, help="folder for the JSON results (default bench/results/scale)")
    ap.add_argument(
        "--output", type=Path, help="render the Markdown of the results folder here (default docs/scale.md)"
    )
    ap.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run ScaNN directly with Model Maker's recipe (default: up to 2M vectors)",
    )
    args = ap.parse_args(argv)
    con = console()
    say = lambda msg: con.print(f"[dim]- {msg}[/dim]")  # noqa: E731
    started, t0 = now(), time.perf_counter()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    n, dim = args.n, args.dim
    extra_n = math.ceil(n * GROWTH)
    leaves = round(math.sqrt(n))  # Model Maker's rule, given to both for a like-for-like comparison
    searched = max(4, math.ceil(leaves * 4 / 351))
    base, extra, queries = (str(work / f) for f in ("base.npy", "extra.npy", "queries.npy"))
    say(f"writing {n:,} x {dim} vectors in chunks")
    for path, rows, seed in ((base, n, 1), (extra, extra_n, 2), (queries, QUERIES, 3)):
        stage.run("bench.scale:write_vectors", path=path, n=rows, dim=dim, seed=seed, clusters=max(1, n // 60))
    cat = str(work / "catalog")
    say("add (the .npy streamed in chunks, one commit)")
    add = stage.run("bench.scale:add_file", path=cat, npy=base, prefix="v", create_dim=dim, leaves=leaves)
    say("full build")
    full = stage.run("bench.catalog_steps:build", path=cat, full=False)
    say(f"add {extra_n:,} more, incremental build")
    add2 = stage.run("bench.scale:add_file", path=cat, npy=extra, prefix="x")
    inc = stage.run("bench.catalog_steps:build", path=cat, full=False)
    say("export an index-only .ldb")
    exp = stage.run("bench.scale:export_index", path=cat, out=str(work / "index.ldb"))
    say("export a bundle: the index packed into a small text tower")
    bun = stage.run("bench.scale:export_bundle", path=cat, out=str(work / "bundle.tflite"), dim=dim)
    commands = {}
    for command in ("info", "query", "verify"):
        say(f"scannlite bundle {command} on the bundle")
        commands[command] = stage.run("bench.scale:bundle_command", bundle=str(work / "bundle.tflite"), command=command)
    mm = mm_dir = None
    if args.peer if args.peer is not None else n <= 2_000_000:
        say("ScaNN directly, Model Maker's recipe")
        mm_dir = work / "model-maker"
        mm_dir.mkdir()
        mm = stage.run(
            "bench.peers:model_maker_recipe", base=base, leaves=leaves, searched=searched, out_dir=str(mm_dir)
        )
    say("recall against exact search")
    rec = stage.run(
        "bench.scale:recall",
        path=cat,
        queries=queries,
        mm_assets=mm_dir and str(mm_dir),
        base=base,
        mm_searched=searched,
    )

    parts = full.value["parts"]
    t = Table(f"Scale: {n:,} x {dim}, {leaves} leaves (both), one run", ["step", "wall", "peak RSS", "notes"])
    t.add("add (.npy streamed, one commit)", f"{add.seconds:.1f} s", mib(add.peak_rss), f"{add.value['count']:,} items")
    t.add(
        "scannlite full build",
        f"{full.seconds:.1f} s",
        mib(full.peak_rss),
        f"ScaNN on the {full.value['recipe'].rsplit('trained on ', 1)[-1]}: "
        f"{parts.get('ScaNN training (tree + AH)', 0):.0f} s; placing every vector "
        f"{parts.get('place every vector (assign + encode, threads)', 0):.0f} s; "
        f"{full.value['leaves_to_search']} leaves searched (recall target)",
    )
    t.add(f"add {extra_n:,} (+{GROWTH:.0%})", f"{add2.seconds:.1f} s", mib(add2.peak_rss), "")
    t.add(
        "scannlite incremental build",
        f"{inc.seconds:.1f} s",
        mib(inc.peak_rss),
        f"{inc.value['encoded']:,} encoded; {100 * inc.seconds / full.seconds:.1f}% of the full build",
    )
    t.add(
        "export --index-only (.ldb, verified)",
        f"{exp.seconds:.1f} s",
        mib(exp.peak_rss),
        f"{exp.value['bytes']:,} bytes, written by the store process; the device worker that verifies it "
        f"(the Task Library opens it by path) peaked at {mib(exp.value['worker_peak_rss'])}",
    )
    t.add(
        "export with an embedder (bundle, verified)",
        f"{bun.seconds:.1f} s",
        mib(bun.peak_rss),
        f"{bun.value['bytes']:,} bytes (a {dim}-d probe tower with the index packed); the device worker "
        f"that verifies it (the Task Library maps the bundle by path) peaked at "
        f"{mib(bun.value['worker_peak_rss'])}",
    )
    for command, m in commands.items():
        worker = f"; device worker {mib(m.value['worker_peak_rss'])}" if command != "info" else ""
        t.add(
            f"scannlite bundle {command} (the bundle above)",
            f"{m.seconds:.1f} s",
            mib(m.peak_rss),
            m.value["note"] + worker,
        )
    if mm is not None:
        t.add(
            "ScaNN directly, Model Maker's recipe",
            f"{mm.seconds:.1f} s",
            mib(mm.peak_rss),
            f"scannlite's full build is {full.seconds / mm.seconds:.2f}x its time, "
            f"{full.peak_rss / mm.peak_rss:.2f}x its memory",
        )
    t.add(
        f"recall@{K}, device-equivalent",
        "",
        "",
        f"scannlite {rec.value['scannlite']:.3f} at {rec.value['scannlite_leaves']} leaves"
        + (f"; Model Maker's {rec.value['model_maker']:.3f} at {searched} (FLOAT lookup)" if mm is not None else "")
        + f"; the build's own estimate {full.value['recall_at_chosen']:.3f}",
    )
    t.how = ["Each row is one fresh process (bench/stage.py: wall time of the call, peak RSS as VmHWM)."]
    t.print(con)
    targets = [
        ("full build peak RSS at most 2.5 GiB", f"{full.peak_rss / 2**30:.2f} GiB", full.peak_rss <= 2.5 * 2**30),
        (
            "incremental +1% at most 4% of the full build",
            f"{100 * inc.seconds / full.seconds:.1f}%",
            inc.seconds <= 0.04 * full.seconds,
        ),
    ]
    if mm is not None:
        targets.insert(
            1,
            (
                "full build wall time at most 0.8x ScaNN with Model Maker's recipe",
                f"{full.seconds / mm.seconds:.2f}x",
                full.seconds <= 0.8 * mm.seconds,
            ),
        )
    peaks = {
        "add": add.peak_rss,
        "incremental build": inc.peak_rss,
        "export --index-only": exp.peak_rss,
        "export's device worker": exp.value["worker_peak_rss"],
        "export with an embedder": bun.peak_rss,
        "the bundle's device worker": bun.value["worker_peak_rss"],
        **{f"bundle {c}": m.peak_rss for c, m in commands.items()},
        **{f"bundle {c}'s device worker": m.value["worker_peak_rss"] for c, m in commands.items() if c != "info"},
    }
    worst = max(peaks, key=peaks.get)
    targets.append(
        (
            f"every other step within the same bound (largest: {worst})",
            f"{peaks[worst] / 2**30:.2f} GiB",
            peaks[worst] <= 2.5 * 2**30,
        )
    )
    for name, measured, ok in targets:
        con.print(f"{name}: {measured} ({'met' if ok else 'NOT MET'})")
    section = Section(
        f"{n:,} vectors",
        command_line(),
        tables=[t],
        targets=targets,
        seconds=time.perf_counter() - t0,
        figures={"n": n, "load_at_end": [round(x, 2) for x in os.getloadavg()]},
    )
    run = results.section_json(section, "scale", started=started, load=None)
    folder = args.results or results.RESULTS / "scale"
    con.print(f"results: {results.write(folder / f'{n}.json', run)}")
    con.print(f"report: {write_doc('scale', args.output or ROOT / 'docs' / 'scale.md', folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
