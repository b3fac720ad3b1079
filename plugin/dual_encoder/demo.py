"""``scannlite demo``: the whole path on this machine, end to end, in minutes.

``synthetic``: built-in clustered vectors: init, add, build, an incremental update, search
as a phone would against exact search, and a verified on-device index export.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle.export import export
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered, recall_at_k, split
from scannlite.store.index import snapshot
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.progress import SILENT, Progress

DEVICE = DeviceProcesses()


def synthetic(out: Path, say=print, progress: Progress = SILENT, n: int = 20_000, dim: int = 64) -> dict:
    out = Path(out)
    path = out / "synthetic.catalog"
    if path.exists():
        shutil.rmtree(path)
    out.mkdir(parents=True, exist_ok=True)
    x = clustered(n + 2_500, dim, seed=42)
    data, queries = split(x, 500, seed=7)
    base, extra = data[:n], data[n:]
    cat = Catalog.create(path, dim, "dot", index=IndexConfig(leaves_to_search=6))
    say(f"1. created {path} (dim {dim}, dot product, vectors L2-normalised on insert)")
    cat.add([f"item-{i}" for i in range(n)], base, [f"synthetic item {i}" for i in range(n)])
    say(f"2. added {n:,} clustered unit vectors")
    r = build(cat, progress=progress)
    say("3. " + "\n   ".join(r.lines()))
    cat.add([f"new-{i}" for i in range(len(extra))], extra, [f"added later {i}" for i in range(len(extra))])
    cat.delete([f"item-{i}" for i in range(0, n, 20)])
    r = build(cat, progress=progress)
    say(f"4. added {len(extra):,} and deleted {n // 20:,}; " + "\n   ".join(r.lines()))
    found = snapshot.search(cat, queries, k=10)
    truth = snapshot.search(cat, queries, k=10, exact=True)
    rec = recall_at_k([[h["id"] for h in row] for row in found], [[h["id"] for h in row] for row in truth])
    say(
        f"5. device-equivalent search, {r.leaves_to_search} of {r.num_leaves} leaves: recall@10 {rec:.3f} "
        f"against exact search over {len(queries)} held-out queries"
    )
    for qi in range(2):
        say(
            f"   query {qi}: "
            + ", ".join(f"{h['id']} ({h['distance']:.3f})" for h in found[qi][:4])
            + "   exact: "
            + ", ".join(h["id"] for h in truth[qi][:4])
        )
    e = export(cat, device=DEVICE, out=out / "synthetic.ldb", embedder=None, index_only=True, progress=progress)
    m = e.manifest
    say(
        f"6. exported {e.path} ({m['sizes']['file']:,} bytes): the Task Library matched scannlite on "
        f"{m['parity']['queries']} probe queries"
    )
    return {"catalog": str(path), "recall_at_10": rec, "index": str(e.path)}
