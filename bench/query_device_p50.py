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


def main() -> None:
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.searcher import NativeSearcher

    from .real_text import FULL, load

    chosen = json.loads((results.RESULTS / "raw" / "query_recall.json").read_text())["with_sample"]["leaves_to_search"]
    real = load(FULL, say=print)
    queries = np.ascontiguousarray(real.query_vectors, np.float32)
    out = {"command": "python -m bench.query_device_p50", "catalog": len(real.ids), "runs": []}
    with tempfile.TemporaryDirectory(prefix="scannlite-qp-") as tmp:
        cat = Catalog.create(Path(tmp) / "c", real.vectors.shape[1])
        cat.add(real.ids, real.vectors)
        default = build(cat).leaves_to_search
        for leaves in (default, chosen):
            path = Path(tmp) / f"index-{leaves}.ldb"
            res = export(
                cat, device=DeviceProcesses(), out=path, embedder=None, leaves_to_search=leaves, index_only=True
            )
            with NativeSearcher(path) as s:
                for q in queries[:50]:
                    s.search(q / np.linalg.norm(q), 10)
                times = []
                for q in queries:
                    q = (q / np.linalg.norm(q)).astype(np.float32)
                    t0 = time.perf_counter()
                    s.search(q, 10)
                    times.append(time.perf_counter() - t0)
            run = {
                "leaves": leaves,
                "libscannlite_p50_ms": round(float(np.median(times)) * 1000, 3),
                "task_library_latency_ms": res.manifest.get("device_latency_ms"),
                "verified_by": res.manifest.get("verified_by"),
            }
            print(run)
            out["runs"].append(run)
        cat.close()
    (results.RESULTS / "raw" / "query_device_p50.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
