"""Device p50 at the leaves a query sample chooses (issue 27): the full real text set (120,000 MiniLM
sentences) built with default settings, its index exported at the leaves chosen without a sample (the build's)
and with one (64, from ``python -m bench.query_recall --spec full``), each verified by both runtimes; the Task
Library's p50 is export's own latency probe, libscannlite's is timed here on the held-out queries.

``python -m bench.query_device_p50`` writes bench/results/raw/query_device_p50.json (docs/queries.md)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from . import block_tensorflow, results

block_tensorflow()


def export_index(cat, leaves: int, path: Path):
    """The catalog's index alone at ``leaves``, as export writes and verifies it (both runtimes, and the Task
    Library's own latency probe in its manifest)."""
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.bundle.export import export

    return export(cat, device=DeviceProcesses(), out=path, embedder=None, leaves_to_search=leaves, index_only=True)


def unit(queries: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(queries, np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def libscannlite_p50(paths: list[Path], queries: np.ndarray, warmup: int = 50) -> list[float]:
    """libscannlite's p50 search time in ms for each index, timed round robin query by query (each query on every
    index in turn), so that load from other work falls on all of them alike: their ratios hold."""
    from scannlite.store.searcher import NativeSearcher

    queries = unit(queries)
    searchers = [NativeSearcher(p) for p in paths]
    try:
        for s in searchers:
            for q in queries[:warmup]:
                s.search(q, 10)
        times: list[list[float]] = [[] for _ in searchers]
        for q in queries:
            for s, t in zip(searchers, times):
                t0 = time.perf_counter()
                s.search(q, 10)
                t.append(time.perf_counter() - t0)
    finally:
        for s in searchers:
            s.close()
    return [round(float(np.median(t)) * 1000, 3) for t in times]


def main() -> None:
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build

    from .real_text import FULL, load

    chosen = json.loads((results.RESULTS / "raw" / "query_recall.json").read_text())["with_sample"]["leaves_to_search"]
    real = load(FULL, say=print)
    out = {"command": "python -m bench.query_device_p50", "catalog": len(real.ids), "runs": []}
    with tempfile.TemporaryDirectory(prefix="scannlite-qp-") as tmp:
        cat = Catalog.create(Path(tmp) / "c", real.vectors.shape[1])
        cat.add(real.ids, real.vectors)
        default = build(cat).leaves_to_search
        steps = (default, chosen)
        paths = [Path(tmp) / f"index-{leaves}.ldb" for leaves in steps]
        exported = [export_index(cat, leaves, path) for leaves, path in zip(steps, paths)]
        p50s = libscannlite_p50(paths, real.query_vectors)
        for leaves, res, p50 in zip(steps, exported, p50s):
            run = {
                "leaves": leaves,
                "libscannlite_p50_ms": p50,
                "task_library_latency_ms": res.manifest.get("device_latency_ms"),
                "verified_by": res.manifest.get("verified_by"),
            }
            print(run)
            out["runs"].append(run)
        cat.close()
    (results.RESULTS / "raw" / "query_device_p50.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
