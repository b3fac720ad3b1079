"""One partition knob for short typed queries (issue 27): leaves per sqrt(N), judged by recall per code scanned.

The real text set of :mod:`bench.query_recall` (``--spec stdlib``; its vectors and short queries from the cache
that study made). For each ``leaves_per_sqrt_n`` a full build with otherwise default settings, then recall@10 of
the 500 held-out short queries at every ladder step, by :func:`scannlite.store.index.recall_estimate.
estimate_for_queries` (the definition the query-sample estimate uses; bench.query_recall compares it with the
device-equivalent search), beside the mean number of codes those leaves hold (what a phone scans). Only this knob:
training on a share of the query sample and spherical k-means or not are not measured.

``python -m bench.query_knobs`` writes ``bench/results/raw/query_knobs.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import block_tensorflow, results

block_tensorflow()

FACTORS = (1.0, 2.0, 4.0)


def main() -> int:
    from rich.console import Console

    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index import device_search, snapshot
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig
    from scannlite.store.index.recall_estimate import Snapshot, estimate_for_queries

    from .query_recall import SPECS, embed, short
    from .real_text import Spec, load

    console = Console(stderr=True, highlight=False)
    real = load(Spec(**SPECS["stdlib"]), console=console)
    half = len(real.query_texts) // 2
    held_short = embed([short(t) for t in real.query_texts], console)[half:]
    runs = []
    for factor in FACTORS:
        with tempfile.TemporaryDirectory(prefix="scannlite-query-knobs-") as tmp:
            cat = Catalog.create(Path(tmp) / "c", real.vectors.shape[1], index=IndexConfig(leaves_per_sqrt_n=factor))
            cat.add(real.ids, real.vectors)
            t0 = time.perf_counter()
            built = build(cat)
            seconds = time.perf_counter() - t0
            snap = snapshot.load_snapshot(cat, with_vectors=True)
            index = snap.device_index()
            mem = Snapshot.in_memory(index, snap.vectors, lambda rows, s=snap: s.model.decode(s.codes[rows]))
            est = estimate_for_queries(mem, held_short, sample=len(held_short))
            sizes = np.diff(index.offsets)
            order = device_search.leaf_order(index, held_short.astype(np.float32))
            codes = [float(np.mean(np.cumsum(sizes[order], axis=1)[:, n - 1])) for n in est.ladder]
            runs.append(
                {
                    "leaves_per_sqrt_n": factor,
                    "num_leaves": built.num_leaves,
                    "build_seconds": round(seconds, 1),
                    "rows": [
                        {"leaves": n, "codes_scanned": round(c), "recall_short": round(r, 4)}
                        for n, r, c in zip(est.ladder, est.recall, codes)
                    ],
                    "codes_for_0.90": next(
                        (round(c) for r, c in zip(est.recall, codes) if r >= 0.9),
                        None,
                    ),
                }
            )
            cat.close()
        console.print(json.dumps(runs[-1]["codes_for_0.90"]))
    out = {
        "command": "python -m bench.query_knobs",
        "catalog": len(real.ids),
        "held_out_short": len(held_short),
        "runs": runs,
    }
    print(json.dumps(out, indent=1))
    results.write(results.RESULTS / "raw" / "query_knobs.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
