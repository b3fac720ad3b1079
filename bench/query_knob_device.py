"""What leaves per sqrt(N) costs on a device for short typed queries (issue 27): the 120,000-sentence set of
``python -m bench.query_knobs --spec full``, built with its query sample at 1, 2 (the default) and 4 leaves per
sqrt(N). Fewer codes scanned is not the whole device cost: the device also scores every centroid, and four
times the leaves is four times that work. For each, the fewest ladder leaves at which the held-out short queries
reach recall@10 0.90 (by the sample estimate's definition, past the 64-leaf cap where needed), the index exported
and verified by both runtimes at those leaves, and its p50: libscannlite's timed round robin over the three
indexes on the held-out short queries (their ratios hold under load), the Task Library's from export's probe.

``python -m bench.query_knob_device`` writes bench/results/raw/query_knob_device.json (docs/queries.md).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from . import block_tensorflow, results

block_tensorflow()

FACTORS = (2.0, 1.0, 4.0)
TARGET = 0.90


def main() -> int:
    from rich.console import Console

    from scannlite.store.catalog import query_sample
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index import snapshot
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig

    from .query_device_p50 import export_index, libscannlite_p50
    from .query_knobs import held_out_recall, text_set

    console = Console(stderr=True, highlight=False)
    started = datetime.now(UTC)
    real, sample, held_short, _ = text_set("full", console)
    runs, paths = [], []
    with tempfile.TemporaryDirectory(prefix="scannlite-knob-device-") as tmp:
        for factor in FACTORS:
            cat = Catalog.create(
                Path(tmp) / f"c{factor}", real.vectors.shape[1], index=IndexConfig().replace(leaves_per_sqrt_n=factor)
            )
            cat.add(real.ids, real.vectors)
            query_sample.add(cat, sample)
            t0 = time.perf_counter()
            built = build(cat)
            seconds = time.perf_counter() - t0
            est, codes = held_out_recall(snapshot.load_snapshot(cat, with_vectors=True), held_short)
            leaves = est.smallest_meeting(TARGET) or est.ladder[-1]
            i90 = est.ladder.index(leaves)
            path = Path(tmp) / f"index-{factor}.ldb"
            res = export_index(cat, leaves, path)
            paths.append(path)
            runs.append(
                {
                    "leaves_per_sqrt_n": factor,
                    "num_leaves": built.num_leaves,
                    "build_seconds": round(seconds, 1),
                    "leaves_for_target": leaves,
                    "recall_short_there": round(est.recall[i90], 4),
                    "recall_short_stderr": est.stderr[i90],
                    "codes_scanned": round(codes[i90]),
                    "sample_estimate_there": round(built.query_recall.at(leaves), 4),
                    "task_library_latency_ms": res.manifest.get("device_latency_ms"),
                    "verified_by": res.manifest.get("verified_by"),
                }
            )
            console.print(runs[-1])
            cat.close()
        for run, p50 in zip(runs, libscannlite_p50(paths, held_short)):
            run["libscannlite_p50_ms"] = p50
    out = results.stamped(
        {
            "catalog": len(real.ids),
            "sample": len(sample),
            "held_out": len(held_short),
            "target": TARGET,
            "runs": runs,
        },
        started,
        "python -m bench.query_knob_device",
    )
    results.write(results.RESULTS / "raw" / "query_knob_device.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
