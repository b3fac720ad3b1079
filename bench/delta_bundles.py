"""Benchmark for issue 12: what a phone downloads to go from one snapshot's bundle to the next.

The catalog is the shared benchmark catalog (:mod:`bench.catalogs`: 123,287 x 128, one full
build, snapshot 1). Each scenario starts from a copy of it: +1% and +10% new items with an
incremental build, 1% deleted, and +1% with a forced retrain. Snapshot 1 and the scenario's
snapshot 2 are exported (verified by the Task Library) with ``export(..., delta_from=)``, and
the patch is measured against the new items' own bytes (one code byte per subspace plus the
id each result carries) and against the full bundle. For +1%, every layout of
:data:`scannlite.store.bundle.ondevice.layout.LAYOUTS` is exported too, to show what each choice buys.
``python -m bench.delta_bundles [--quick] [--workdir DIR]`` runs it alone, writes
``bench/results/benchmarks/delta_bundles.json`` and renders docs/benchmarks.md again.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from . import catalogs
from .report import Section, Table

RUNTIME = "scannlite.plugin.device.runtime:"
APPLY_REPEATS = 5
BASE_HASH = "BLAKE3 of the base (one thread)"
DICTIONARY = "the base as zstd's raw-content dictionary"
DECODE = "zstd decoding (dictionary loaded)"
RESULT_HASH = "BLAKE3 of the result (one thread)"


def _apply_parts(base: bytes, patch: bytes) -> dict[str, float]:
    """Medians of the steps ``delta.apply_patch`` takes, each timed alone on one core (the
    BLAKE3 of the base runs on a second thread beside the decode; the result's uses every core)."""
    import blake3
    import zstandard

    from scannlite.store.bundle import delta

    manifest, start = delta.read_header(patch)
    size = manifest["result"]["bytes"]
    ddict = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    decoder = zstandard.ZstdDecompressor(dict_data=ddict, max_window_size=1 << 31)
    decoder.decompress(memoryview(patch)[start:], max_output_size=size)  # the dictionary, loaded once
    result = decoder.decompress(memoryview(patch)[start:], max_output_size=size)
    return {
        BASE_HASH: _median_seconds(lambda: blake3.blake3(base).hexdigest()),
        DICTIONARY: _median_seconds(
            lambda: zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        ),
        DECODE: _median_seconds(lambda: decoder.decompress(memoryview(patch)[start:], max_output_size=size)),
        RESULT_HASH: _median_seconds(lambda: blake3.blake3(result).hexdigest()),
    }


def _tower(data, workdir: Path) -> Path:
    """The export benchmark's "small tower" text embedder (1,000 random 128-d token rows)."""
    from scannlite.store.workers.boundary import run_in

    s = data.setup
    tower = workdir / f"small-tower-{s.name}.tflite"
    if not tower.is_file():
        rng = np.random.default_rng(3)
        tower.write_bytes(
            run_in(
                "device",
                RUNTIME + "make_probe_model",
                rng.standard_normal((s.embedder_vocab, s.dim)).astype(np.float32),
            )
        )
    return tower


def _base_catalog(data, workdir: Path) -> Path:
    """The benchmark catalog (bench.catalog_steps' settings: dot, the setup's leaves, searched and
    dims per block; ids v0..), with one full build, made in this process and kept in ``workdir``.
    Not bench.catalogs.ensure: its timed build step wraps private functions of store/index/training.py
    that are being reworked, and this benchmark times no build."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig

    s = data.setup
    path = workdir / f"delta-base-{s.name}"
    done = path / "built"
    if done.is_file():
        return path
    if path.exists():
        shutil.rmtree(path)
    config = IndexConfig(num_leaves=s.leaves, leaves_to_search=s.searched, dims_per_block=s.dims_per_block)
    with Catalog.create(path, s.dim, "dot", index=config) as cat:
        cat.add([f"v{i}" for i in range(s.n)], np.ascontiguousarray(data.base()))
        build(cat, full=True)
    done.write_text("1\n")
    return path


def _median_seconds(fn, repeats: int = APPLY_REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _scenario(name: str, base_catalog: Path, data, workdir: Path, tower: Path, say, layouts: list[str]) -> dict:
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.bundle import delta
    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build

    s = data.setup
    path = catalogs.copy_of(base_catalog, f"delta-{name}-{s.name}")
    device = DeviceProcesses()
    one = max(1, round(s.n * 0.01))
    with Catalog.open(path) as cat:
        if name in ("+1%", "+10%", "retrain"):
            count = one if name != "+10%" else min(len(data.extra()), round(s.n * 0.10))
            ids = [f"x{i}" for i in range(count)]
            cat.add(ids, np.ascontiguousarray(data.extra()[:count]), None)
            added = ids
        else:  # deletes only: 1% of the items, spread over every leaf
            rng = np.random.default_rng(12)
            cat.delete([f"v{i}" for i in sorted(rng.choice(s.n, size=one, replace=False))])
            added = []
        say(f"{name}: build")
        result = build(cat, full=(name == "retrain"))
        out: dict = {
            "name": name,
            "added": len(added),
            "retrained": result.retrained,
            "removed": 0 if added else one,
            "layouts": {},
        }
        for layout in layouts:
            tag = layout.replace("+", "-")
            old, new = workdir / f"d-{tag}-{name}-1.tflite", workdir / f"d-{tag}-{name}-2.tflite"
            say(f"{name}: export snapshot 1 and 2 ({layout} layout)")
            export(cat, device=device, out=old, embedder=tower, version=1, layout=layout)
            t0 = time.perf_counter()
            r = export(cat, device=device, out=new, embedder=tower, layout=layout, delta_from=old)
            export_s = time.perf_counter() - t0
            entry = r.manifest["patches"][0]
            row = {
                "bundle": r.manifest["sizes"]["file"],
                "base": old.stat().st_size,
                "patch": entry["bytes"],
                "export_s": export_s,
                "warning": entry.get("warning"),
                "code_bytes": r.manifest["sizes"]["floor_codes"] // r.manifest["items"],
            }
            if layout == layouts[0]:
                base_bytes, patch_bytes = old.read_bytes(), r.patch_path.read_bytes()
                row["apply_s"] = _median_seconds(lambda b=base_bytes, q=patch_bytes: delta.apply_patch(b, q))
                scratch = workdir / f"applied-{tag}-{name}.tflite"
                row["apply_file_s"] = _median_seconds(
                    lambda o=old, q=r.patch_path, out=scratch: delta.apply_file(o, q, out)
                )
                assert scratch.read_bytes() == new.read_bytes()
                row["read_twice_s"] = _median_seconds(lambda f=new: (f.read_bytes(), f.read_bytes()))
                row["apply_parts_s"] = _apply_parts(base_bytes, patch_bytes)
                t0 = time.perf_counter()
                delta.make_patch(base_bytes, new.read_bytes(), {})
                row["make_s"] = time.perf_counter() - t0
            out["layouts"][layout] = row
            for p in (old, new, r.patch_path):
                if layout != layouts[0]:
                    p.unlink(missing_ok=True)
    # One code byte per subspace, as the manifest's floor counts them, plus each new id's bytes.
    code_bytes = out["layouts"][layouts[0]]["code_bytes"]
    out["raw_new"] = len(added) * code_bytes + sum(len(x.encode()) for x in added)
    return out


def run(data, workdir: Path, command: str, say=print) -> Section:
    from scannlite.store.bundle.ondevice.layout import DEFAULT_LAYOUT, LAYOUTS

    s = data.setup
    workdir = Path(workdir)
    section = Section("Delta bundles (issue 12)", command)
    base = _base_catalog(data, workdir)
    tower = _tower(data, workdir)
    compare = [DEFAULT_LAYOUT] + [name for name in LAYOUTS if name != DEFAULT_LAYOUT]
    results = [_scenario("+1%", base, data, workdir, tower, say, compare)]
    for name in ("+10%", "deletes only", "retrain"):
        results.append(_scenario(name, base, data, workdir, tower, say, [DEFAULT_LAYOUT]))

    t = Table(
        f"Patch sizes, {s.n:,} x {s.dim} catalog, snapshot 1 -> 2 ({DEFAULT_LAYOUT} layout)",
        [
            "update",
            "build",
            "new items' raw bytes",
            "full bundle",
            "patch",
            "patch / raw new",
            "patch / bundle",
            "apply (in memory)",
            "apply (file, fsync)",
            "read bundle twice",
            "make patch",
        ],
    )
    for r in results:
        row = r["layouts"][DEFAULT_LAYOUT]
        change = f"+{r['added']:,} items" if r["added"] else f"-{r['removed']:,} items"
        t.add(
            f"{r['name']} ({change})",
            "retrained" if r["retrained"] else "incremental",
            f"{r['raw_new']:,}" if r["raw_new"] else "0",
            f"{row['bundle']:,}",
            f"{row['patch']:,}",
            f"{row['patch'] / r['raw_new']:.2f}x" if r["raw_new"] else "-",
            f"{100 * row['patch'] / row['bundle']:.2f}%",
            f"{1000 * row['apply_s']:.0f} ms",
            f"{1000 * row['apply_file_s']:.0f} ms",
            f"{1000 * row['read_twice_s']:.0f} ms",
            f"{row['make_s']:.1f} s",
        )
    t.how = [
        "Each row: a copy of the benchmark catalog (snapshot 1, full build), then the change and "
        "`build(cat)` (`build(cat, full=True)` for retrain); `export(cat, device=DeviceProcesses(), out=OLD, "
        "embedder=TOWER, version=1)` and `export(cat, ..., out=NEW, delta_from=OLD)`, both verified by the Task "
        "Library; the patch is the file the second export wrote (`NEW.from-<hash>.patch`, zstd level 19, "
        "patch-from, long-distance matching).",
        "New items' raw bytes: one code byte per subspace (128) plus the id each result carries (`x0`, `x1`, ...), "
        "for the added items: what any delta must carry at least, uncompressed.",
        f"Apply: `store.delta.apply_patch(old_bytes, patch_bytes)` (base size and BLAKE3 check, zstd decode, result BLAKE3 "
        f"check) and `apply_file(OLD, PATCH, OUT)` (what `scannlite bundle patch` runs: reads both files, writes OUT "
        f"atomically with fsync), medians of {APPLY_REPEATS}; read twice: `Path(NEW).read_bytes()` twice (warm "
        f"page cache), median of {APPLY_REPEATS}. Make patch: `store.delta.make_patch` once.",
    ]
    section.tables.append(t)

    one = results[0]
    lt = Table(
        "What each layout choice buys (+1%, the same two snapshots exported in each layout)",
        ["layout", "result ids", "blocks", "bundle", "patch", "patch / bundle", "patch / raw new"],
    )
    ids_of = {"builder": "dense (builder)", "dense+content": "dense"}
    for name, row in one["layouts"].items():
        blocks = (
            "LevelDB 4 KiB, Snappy"
            if name in ("builder", "slotted+leveldb")
            else "by key hash, Snappy metadata"
            if name.endswith("snappy")
            else "by key hash, raw metadata"
        )
        lt.add(
            name + (" (default)" if name == DEFAULT_LAYOUT else ""),
            ids_of.get(name, "slotted"),
            blocks,
            f"{row['bundle']:,}",
            f"{row['patch']:,}",
            f"{100 * row['patch'] / row['bundle']:.2f}%",
            f"{row['patch'] / one['raw_new']:.2f}x",
        )
    lt.how = [
        "`export(..., layout=NAME)` for snapshot 1 and then snapshot 2 with `delta_from`, every name of "
        "`store.ondevice.layout.LAYOUTS`: `builder` is tflite-support's table as it comes (result ids a running "
        "count, 4 KiB blocks); the others are written by scannlite's streamed writer "
        "(`store.ondevice.index_writer`). Slotted ids give each "
        "leaf 25% room (at least 16 ids) so that existing items keep their `M_<id>` keys; blocks by key hash put "
        "each `E_p`, INDEX_CONFIG and USER_INFO in a block of its own and cut metadata blocks where a key's CRC32C "
        "is 0 mod 64.",
    ]
    section.tables.append(lt)

    row = one["layouts"][DEFAULT_LAYOUT]
    ratio, share = row["patch"] / one["raw_new"], row["patch"] / row["bundle"]
    slowest = max(
        results, key=lambda r: r["layouts"][DEFAULT_LAYOUT]["apply_s"] / r["layouts"][DEFAULT_LAYOUT]["read_twice_s"]
    )
    srow = slowest["layouts"][DEFAULT_LAYOUT]
    pt = Table(
        f"Where applying a patch spends its time ({slowest['name']}, the slowest against reading twice)",
        ["step", "median", "against reading the bundle twice"],
    )
    for step, seconds in [
        *srow["apply_parts_s"].items(),
        ("apply_patch, all of it", srow["apply_s"]),
        ("reading the new bundle twice (the target)", srow["read_twice_s"]),
    ]:
        pt.add(step, f"{1000 * seconds:.1f} ms", f"{seconds / srow['read_twice_s']:.2f}x")
    parts = srow["apply_parts_s"]
    cores = os.cpu_count() or 1
    floor = sum(parts.values()) / cores
    pt.add(
        f"all four steps' one-core work spread perfectly over the {cores} cores (a floor)",
        f"{1000 * floor:.1f} ms",
        f"{floor / srow['read_twice_s']:.2f}x",
    )
    pt.how = [
        f"Each step alone on one core, medians of {APPLY_REPEATS}, on the bundles and patch of that row: "
        "`blake3.blake3(data)` of the base and of the result, "
        "`zstandard.ZstdCompressionDict(base, dict_type=DICT_TYPE_RAWCONTENT)`, and "
        "`ZstdDecompressor(dict_data=...).decompress(patch)` with the dictionary already loaded.",
        "`apply_patch` hashes the base on a second thread while this one makes the dictionary and decodes, then "
        "hashes the result on every core (`blake3_hex`): the whole apply can be no faster than the floor row.",
    ]
    section.tables.append(pt)
    if floor > srow["read_twice_s"]:
        section.notes.append(
            f"Even spread perfectly over the {cores} cores, the apply's work takes {1000 * floor:.1f} ms, more than "
            f"reading the bundle twice ({1000 * srow['read_twice_s']:.1f} ms): zstd must write every byte of the "
            "result and BLAKE3 must read the base and the result once each, where reading twice is two copies "
            "out of the page cache."
        )
    section.targets += [
        (
            "+1% patch at most 2x the new items' raw codes + metadata",
            f"{ratio:.2f}x ({row['patch']:,} / {one['raw_new']:,} bytes)",
            bool(ratio <= 2),
        ),
        ("+1% patch at most 2% of the full bundle", f"{100 * share:.2f}%", bool(share <= 0.02)),
        (
            "applying a patch takes at most the time of reading the bundle twice",
            f"{1000 * srow['apply_s']:.0f} ms against {1000 * srow['read_twice_s']:.0f} ms ({slowest['name']}, the "
            f"slowest)",
            bool(srow["apply_s"] <= srow["read_twice_s"]),
        ),
    ]
    retrain = next(r for r in results if r["name"] == "retrain")
    if retrain["layouts"][DEFAULT_LAYOUT]["warning"]:
        section.notes.append("The retrain export warned: " + retrain["layouts"][DEFAULT_LAYOUT]["warning"] + ".")
    for r in results:
        if r["name"] == "+10%" and r["retrained"]:
            section.notes.append(
                "+10% made the health policy retrain (store/index/health.py), so its patch is a "
                "retrain's, not an incremental one's."
            )
    section.figures = {
        "patch_1pct": row["patch"],
        "raw_1pct": one["raw_new"],
        "share_1pct": share,
        "bundle": row["bundle"],
        "sizes": {r["name"]: r["layouts"][DEFAULT_LAYOUT]["patch"] for r in results},
    }
    return section


def main(argv: list[str] | None = None) -> int:
    from .data import prepare
    from .warm_queries import run_updating_report

    return run_updating_report(
        argv,
        __doc__.splitlines()[0],
        run,
        study="delta_bundles",
        quick_help="5,000 vectors: a smoke run, numbers meaningless",
        workdir_help="where data, catalogs and bundles go (kept)",
        make_data=prepare,
    )


if __name__ == "__main__":
    sys.exit(main())
