"""Benchmark for issue 3: export time, bundle size against its floor, Task Library latency,
and the device's recall against exact search next to the server-side figure.

The catalog is the build-and-recall benchmark's (snapshot 1, the full build), made here if
that benchmark did not run first. The embedder is a "small tower": a probe text model
(``make_probe_model``, regex tokenizer, 1,000 tokens ``q0..q999`` mapped to random 128-d
vectors, output = sum over up to 4 tokens), written to a file and passed to ``export`` like
any other embedder. Recall through the device uses a second probe model, over the held-out
queries, searching the exported index: the Python Task Library cannot search by vector.
``python -m bench.export_latency [--quick]`` runs it alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from . import catalogs
from .data import Data
from .report import Section, Table, mib

RUNTIME = "scannlite.plugin.device.runtime:"
TOKENS_PER_QUERY = 4  # the probe model's sequence length: a short query of four words


def _queries(rng, vocab: int, count: int) -> list[str]:
    picks = rng.integers(0, vocab, size=(count, TOKENS_PER_QUERY))
    return [" ".join(f"q{i}" for i in row) for row in picks]


def run(data: Data, workdir: Path, command: str, say=print) -> Section:
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.catalog.synthetic import recall_at_k
    from scannlite.store.index import snapshot
    from scannlite.store.workers.boundary import run_in

    from .recall import ids_of

    s = data.setup
    section = Section("Export and latency (issue 3)", command)
    workdir = Path(workdir)
    built = catalogs.ensure(data, workdir)
    rng = np.random.default_rng(3)

    say("making the small-tower text embedder (probe model, device process)")
    tower_vectors = rng.standard_normal((s.embedder_vocab, s.dim)).astype(np.float32)
    tower = workdir / f"small-tower-{s.name}.tflite"
    tower.write_bytes(run_in("device", RUNTIME + "make_probe_model", tower_vectors))
    probe_texts = workdir / f"probe-texts-{s.name}.txt"
    probe_texts.write_text("\n".join(_queries(rng, s.embedder_vocab, 24)) + "\n")

    bundle = workdir / f"bundle-{s.name}.tflite"
    unverified = workdir / f"bundle-unverified-{s.name}.tflite"
    with Catalog.open(built.path) as cat:
        say("export without verification")
        t0 = time.perf_counter()
        export(cat, device=DeviceProcesses(), out=unverified, embedder=tower, version=1, verify_bundle=False)
        plain_s = time.perf_counter() - t0
        say("export (verified, the default)")
        t0 = time.perf_counter()
        res = export(cat, device=DeviceProcesses(), out=bundle, embedder=tower, version=1, probe=probe_texts)
        export_s = time.perf_counter() - t0
        raw = data.queries()
        snap = snapshot.load_snapshot(cat, 1, with_vectors=True)
        exact = ids_of(snapshot.search(cat, raw, k=s.k, exact=True, snapshot=snap))
        server = ids_of(snapshot.search(cat, raw, k=s.k, snapshot=snap))
        leaves = snap.info.leaves_to_search
    payload = bundle.read_bytes()
    if unverified.read_bytes() != payload:
        section.notes.append("The verified and unverified exports differ byte for byte (they should not).")

    say(f"Task Library latency: {s.latency_searches} searches (device process)")
    queries = _queries(rng, s.embedder_vocab, s.latency_searches)
    lat = run_in(
        "device",
        "bench.device_timing:time_text_search",
        payload,
        queries,
        max_results=s.k,
        l2_normalize=True,
        warmup=s.latency_warmup,
    )
    say("device recall: the held-out queries through the exported index (device process)")
    device = run_in("device", "bench.device_timing:search_vectors", payload, raw, max_results=s.k, l2_normalize=True)

    # ---- export and size --------------------------------------------------------------------
    m = res.manifest
    sizes = m["sizes"]
    overhead = sizes["file"] / sizes["floor"] - 1
    t = Table(
        f"Export: snapshot 1, {m['items']:,} items, {m['leaves']} leaves, {m['leaves_searched']} searched, "
        f"{m['lookup_type']} lookup",
        ["figure", "value"],
    )
    t.add("export time, verified (default)", f"{export_s:.1f} s")
    t.add("export time, --no-verify", f"{plain_s:.1f} s")
    t.add("bundle size", f"{sizes['file']:,} bytes ({mib(sizes['file'])})")
    t.add(
        "floor: codes + centroids + codebooks + metadata + model",
        f"{sizes['floor']:,} bytes = {sizes['floor_codes']:,} + {sizes['floor_centroids']:,} + "
        f"{sizes['floor_codebooks']:,} + {sizes['floor_metadata']:,} + {sizes['floor_model']:,}",
    )
    t.add("overhead over the floor", f"{100 * overhead:.2f}% ({sizes['file'] - sizes['floor']:,} bytes)")
    t.add(
        "of which the index (.ldb)",
        f"{sizes['index']:,} bytes against "
        f"{sizes['floor'] - sizes['floor_model']:,} ({100 * (sizes['index'] / (sizes['floor'] - sizes['floor_model']) - 1):.2f}%)",
    )
    t.add(
        "verification in the export",
        f"{m['parity']['queries']} queries matched the server-side search "
        f"({m['parity']['exact_order']} in exactly the same order)",
    )
    t.how = [
        "`scannlite.store.bundle.export.export(cat, device=DeviceProcesses(), out=BUNDLE, embedder=EMBEDDER, version=1, probe=TEXTS)` timed with "
        "`time.perf_counter()` in the benchmark process; it builds the index with tflite-support's builder and "
        "packs it in one device process, then verifies in a second (probe-vector parity plus the embedder's own "
        "texts), then writes. The --no-verify row is the same call with `verify_bundle=False`.",
        f"Embedder: the small tower, {s.embedder_vocab:,} random 128-d rows behind a regex tokenizer "
        f"({mib(sizes['floor_model'])}), made by `make_probe_model` in a device process and written to a file.",
        "Sizes: the export manifest's `sizes` (`file`, `index`, `floor`, `floor_*`); the device metadata of each "
        "item is its id (the default `--device-metadata id`).",
    ]
    section.tables.append(t)

    # ---- latency ----------------------------------------------------------------------------
    search_ms, embed_ms = 1000 * lat["search"], 1000 * lat["embed"]
    p50, p95 = np.percentile(search_ms, [50, 95])
    lt = Table("Task Library query latency on this machine (TextSearcher, bundle above)", ["figure", "value"])
    lt.add("search p50 (embedding included)", f"{p50:.3f} ms")
    lt.add("search p95 (embedding included)", f"{p95:.3f} ms")
    lt.add("search mean / max", f"{search_ms.mean():.3f} ms / {search_ms.max():.3f} ms")
    lt.add(
        "embedding alone (TextEmbedder.embed, same model) p50 / p95",
        f"{np.percentile(embed_ms, 50):.3f} ms / {np.percentile(embed_ms, 95):.3f} ms",
    )
    lt.add("searcher creation (once)", f"{1000 * lat['create_seconds']:.1f} ms")
    lt.how = [
        f"`bench.device_timing:time_text_search` in one device process (`run_in('device', ...)`): "
        f"`TextSearcher.create_from_options` once on the bundle's bytes (max_results {s.k}, l2_normalize on), "
        f"{s.latency_warmup} warm-up searches, then {s.latency_searches:,} searches each timed with "
        f"`time.perf_counter()`; queries are {TOKENS_PER_QUERY} random tokens of the small tower's vocabulary "
        f"(mean results returned {lat['mean_results']:.1f}). The embedding row times `TextEmbedder.embed` on the "
        "same model and queries, to show how much of a search is the embedder.",
    ]
    section.tables.append(lt)

    # ---- device recall ----------------------------------------------------------------------
    dev_recall = recall_at_k(device, exact, s.k)
    srv_recall = recall_at_k(server, exact, s.k)
    same_lists = sum(d == v for d, v in zip(device, server))
    rt = Table(
        f"recall@{s.k} through the Task Library against exact search ({len(raw)} held-out queries, {leaves} leaves)",
        ["figure", "value"],
    )
    rt.add("device (TextSearcher on the exported index)", f"{dev_recall:.4f}")
    rt.add("server-side (snapshot.search)", f"{srv_recall:.4f}")
    rt.add("equal", "yes" if dev_recall == srv_recall else "**no**")
    rt.add("queries whose top-10 ids are identical, in order", f"{same_lists} of {len(raw)}")
    rt.how = [
        "Device: `bench.device_timing:search_vectors`: a probe model over the held-out queries (token `qI` embeds "
        "to query I), searched with `runtime.text_search(probe, tokens, index=<the SCANN_INDEX_FILE packed in the "
        "bundle>, l2_normalize=True, max_results=10)`; results are the items' ids.",
        f"Server: `snapshot.search(cat, queries, k={s.k})` at the snapshot's {leaves} leaves (FLOAT lookup); "
        "truth as above (`exact=True`).",
    ]
    section.tables.append(rt)

    section.targets += [
        ("bundle size overhead over its floor at most 5%", f"{100 * overhead:.2f}%", bool(overhead <= 0.05)),
        (
            "Task Library query latency p50 at most 1 ms (small tower, embedding included)",
            f"p50 {p50:.3f} ms, p95 {p95:.3f} ms",
            bool(p50 <= 1.0),
        ),
        (
            "device recall@10 equals the server-side figure",
            f"device {dev_recall:.4f}, server {srv_recall:.4f}",
            bool(dev_recall == srv_recall),
        ),
    ]
    section.figures = {
        "device_recall": dev_recall,
        "server_recall": srv_recall,
        "p50_ms": p50,
        "p95_ms": p95,
        "overhead": overhead,
        "export_seconds": export_s,
    }
    return section


def main(argv: list[str] | None = None) -> int:
    from .cli import run_sections

    return run_sections(argv, ["export_latency"])


if __name__ == "__main__":
    sys.exit(main())
