"""Benchmark for issue 10, part 2: ``scannlite embed`` on a local Ray against the local engine
and ``add --images``, on the OpenMoji images with the demo's image tower.

Each step is a fresh CLI process timed from outside, one after another:

1. ``scannlite add --images`` into a catalog that keeps vectors as embedded (``--no-normalize``):
   the reference vectors;
2. ``scannlite embed --engine local`` with 1 and with N workers (N = the machine's cores);
3. ``scannlite embed --engine ray`` with 1 and with N actors (a local Ray started by the call);
4. start-up: both engines on a folder of one image (the difference is Ray's fixed cost);
5. every vector of every shard directory compared with the reference, bit for bit.

``python -m bench.ray_embed`` writes ``bench/results/benchmarks/ray_embed.json`` and renders
docs/benchmarks.md again; ``--quick`` runs a 200-image subset and writes nothing unless
``--results`` says where. The demo's outputs are
reused from ``demo-output/`` (made there first when missing, as ``bench.warm_queries`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .report import Section, Table
from .warm_queries import BIN, demo_outputs, make_demo, run_updating_report

NAME = "Embedding on Ray (issue 10, part 2)"


def _cli(*args) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN / "scannlite"), *map(str, args)], capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"scannlite {args[0]} failed: {proc.stderr.strip()[-800:]}")
    return took


def _subset(images: Path, workdir: Path, count: int | None) -> Path:
    if count is None:
        return images
    folder = workdir / f"openmoji-{count}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for p in sorted(images.rglob("*.png"))[:count]:
            shutil.copy(p, folder / p.name)
    return folder


def _shard_vectors(folder: Path) -> dict[str, bytes]:
    t = pq.read_table(folder, columns=["id", "embedding"])
    emb = np.asarray(t.column("embedding").combine_chunks().flatten().to_numpy(), np.float32).reshape(t.num_rows, -1)
    return {ident: emb[i].tobytes() for i, ident in enumerate(t.column("id").to_pylist())}


def _catalog_vectors(path: Path) -> dict[str, bytes]:
    from scannlite.store.catalog.catalog import Catalog

    with Catalog.open(path) as cat:
        ids = cat.ids_at(cat.head_seq)
        vectors = cat.vectors_for(np.array([cat.get(i)["item"] for i in ids]))
    return {ident: vectors[i].astype(np.float32).tobytes() for i, ident in enumerate(ids)}


def run(data, workdir: Path, command: str, say=print) -> Section:
    quick = data.setup.name == "quick"
    workdir = Path(workdir)
    paths = demo_outputs() or make_demo(say)
    folder = _subset(paths["images"], workdir, 200 if quick else None)
    count = len(list(folder.rglob("*.png")))
    cores = os.cpu_count() or 1
    section = Section(NAME, command)
    tower = paths["image"]

    say(f"scannlite add --images ({count} images, {cores} workers): the reference vectors")
    ref = workdir / "ray-ref.catalog"
    shutil.rmtree(ref, ignore_errors=True)
    _cli("init", ref, "--dim", 128, "--no-normalize")
    add_s = _cli("add", ref, "--images", folder, "--embedder", tower, "--workers", cores)
    runs = []
    for engine in ("local", "ray"):
        for workers in sorted({1, cores}):
            out = workdir / f"shards-{engine}-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            say(f"scannlite embed --engine {engine} --workers {workers} ({count} images)")
            runs.append(
                (
                    engine,
                    workers,
                    out,
                    _cli("embed", folder, "--embedder", tower, "--out", out, "--engine", engine, "--workers", workers),
                )
            )
    one = _subset(folder, workdir, 1)
    start = {}
    for engine in ("local", "ray"):
        out = workdir / f"shards-one-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        say(f"start-up: scannlite embed --engine {engine} on one image")
        start[engine] = _cli("embed", one, "--embedder", tower, "--out", out, "--engine", engine, "--workers", 1)

    reference = _catalog_vectors(ref)
    t = Table(
        f"`scannlite embed`: {count:,} OpenMoji images (96 px PNG), the demo's image tower, {cores} cores",
        ["engine", "workers", "wall time", "images/s", "x 1 worker", "vectors equal to add --images (bit for bit)"],
    )
    base = {}
    all_equal = True
    for engine, workers, out, took in runs:
        got = _shard_vectors(out)
        same = sum(1 for ident, v in got.items() if reference.get(ident) == v)
        all_equal &= same == len(reference) == len(got)
        base.setdefault(engine, took)
        t.add(
            engine,
            workers,
            f"{took:.1f} s",
            f"{count / took:.1f}",
            f"{base[engine] / took:.2f}",
            f"{same:,} of {len(reference):,}",
        )
    t.add("add --images (for comparison)", cores, f"{add_s:.1f} s", f"{count / add_s:.1f}", "", "the reference")
    t.how = [
        "Each row a fresh CLI process timed from outside: `scannlite embed FOLDER --embedder "
        "demo-output/towers/image_embedder.tflite --out DIR --engine E --workers W` (the Ray rows start and stop "
        "a local Ray inside the call); the last row `scannlite add CAT --images FOLDER --embedder ... --workers N` "
        "into a `--no-normalize` catalog, whose vectors are the reference.",
        "Equal: each shard's embedding, as float32 bytes, against the catalog's vector for the same id.",
        f"Start-up, one image: local engine {start['local']:.1f} s, Ray {start['ray']:.1f} s; Ray's fixed cost "
        f"is about {start['ray'] - start['local']:.0f} s per call (starting Ray, its actors, each loading "
        "tflite-support with the pure-Python protobuf, and the Ray Data execution).",
    ]
    section.tables.append(t)
    ray_rate = {w: count / took for e, w, _, took in runs if e == "ray"}
    section.targets.append(
        (
            "Ray: OpenMoji through a local Ray equals add --images, bit for bit",
            f"{'all' if all_equal else 'not all'} {len(reference):,} vectors, every run",
            bool(all_equal),
        )
    )
    section.figures = {"ray_images_per_s": ray_rate, "startup_s": start, "equal": all_equal}
    ray_fixed = start["ray"] - start["local"]
    section.notes.append(
        "Ray adds a fixed start-up cost and, on one 2-core machine, no speed: it is for when "
        "one machine is not enough (`--address` runs the same call on a cluster). The local "
        "engine is the default."
    )
    local_rate = {w: count / took for e, w, _, took in runs if e == "local"}
    rest = count / ray_rate[cores] - ray_fixed
    if rest > 0:
        section.notes.append(
            f"Without its fixed cost, Ray with {cores} actors embedded {count / rest:.0f} images/s, "
            f"{count / rest / local_rate[cores]:.2f}x the local engine with {cores} workers."
        )
    return section


def main(argv: list[str] | None = None) -> int:
    return run_updating_report(
        argv,
        __doc__.splitlines()[0],
        run,
        study="ray_embed",
        quick_help="a 200-image subset: a smoke run",
        workdir_help="where catalogs and shards go (kept)",
    )


if __name__ == "__main__":
    sys.exit(main())
