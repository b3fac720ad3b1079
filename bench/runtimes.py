"""Benchmark for issue 22: libscannlite beside the Task Library, in one run.

1. **Same answers, and how fast**, on the real MiniLM sentence set (:mod:`bench.real_text`;
   ``SCANNLITE_BENCH_REAL=full`` for the 120,000-sentence set, else its 5,000-sentence quick set,
   which is what is cached on a fresh machine): a catalog with every setting at its default,
   ``build``, ``export(..., index_only=True)`` (verified by both runtimes), then the held-out
   queries through the Task Library (TextSearcher over the index through a probe embedder, in a
   device process, each search timed alone: export's own latency probe, ``check_bundle``) and
   through libscannlite here (``NativeSearcher.search`` of the l2-normalised query, each search
   timed alone, ctypes call included). Every query's answers must be identical (metadata, order,
   distance bits).
2. **Opening a large index** (1,000,000 and 5,000,000 items, the issue's 715 MB target: 256-d,
   asymmetric hashing, 2,000 leaves; written by the export's index writer from random codes and
   random centroids and codebooks, since what opening reads and what 100 searches keep resident
   depend on the file's layout, not on how good the codes are), in a fresh process with the file
   dropped from the page cache first: the time to open, the file's pages in memory after opening
   (``mincore``) and the process's resident pages of the mapping (``/proc/self/smaps``) after
   opening and after 100 searches, against the file's size, and VmHWM. Each file is deleted
   once measured.

``python -m bench.runtimes`` runs it alone, writes ``bench/results/benchmarks/runtimes.json``
and renders docs/benchmarks.md again; ``--quick`` is a smoke run (50,000 items) writing nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .report import Section, Table

NAME = "Two runtimes: libscannlite beside the Task Library (issue 22)"
K = 10
ROUNDS = 2
LARGE = {"full": (1_000_000, 5_000_000), "quick": (50_000,)}
LARGE_DIM, LARGE_LEAVES, LARGE_SEARCHED = 256, 2000, 5
SEARCHES = 100


def _ms(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "searches": len(ms)}


def same_answers(workdir: Path, quick: bool, say) -> dict:
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.bundle import runtimes
    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.searcher import NativeSearcher

    from . import real_text

    spec = real_text.FULL if os.environ.get("SCANNLITE_BENCH_REAL") == "full" and not quick else real_text.QUICK
    rs = real_text.load(spec, say=say)
    queries = np.asarray(rs.query_vectors, dtype=np.float32)
    say(f"real set: {len(rs.ids):,} sentences, {len(queries)} queries; building with default settings")
    path = workdir / "real.catalog"
    shutil.rmtree(path, ignore_errors=True)  # a kept --workdir from an earlier run
    with Catalog.create(path, rs.vectors.shape[1]) as cat:
        cat.add(rs.ids, rs.vectors, rs.texts)
        build(cat)
        out = workdir / "real.ldb"
        t0 = time.perf_counter()
        res = export(cat, device=DeviceProcesses(), out=out, embedder=None, index_only=True)
        export_s = time.perf_counter() - t0
        l2n = cat.normalize
    say("the Task Library: every query, then timed rounds (a device process)")
    got = DeviceProcesses().check_bundle(index=str(out), probe_vectors=queries, max_results=K, l2_normalize=l2n)
    phone, tl = got["probe"], got["latency_ms"]
    say("libscannlite: every query, then timed rounds (this process)")
    prepared = runtimes.prepared(queries, l2n)
    seconds: list[float] = []
    with NativeSearcher(out) as s:
        mine = [[(m, float(d)) for m, d in zip(r.metadata, r.distances)] for r in (s.search(q, K) for q in prepared)]
        for _ in range(ROUNDS):
            for q in prepared:
                t = time.perf_counter()
                s.search(q, K)
                seconds.append(time.perf_counter() - t)
        info = dict(s.info)
    problems = runtimes.exact_problems(phone, mine, ("task-library", "libscannlite"), "real query")
    return {
        "set": rs.describe(),
        "spec": spec.name,
        "items": len(rs.ids),
        "queries": len(queries),
        "identical": len(queries) - len(problems),
        "problems": problems[:3],
        "results": sum(len(r) for r in mine),
        "ties": sum(int((np.diff([d for _, d in r]) == 0).sum()) for r in mine),
        "task_library": tl,
        "libscannlite": _ms(seconds),
        "info": info,
        "verified_by": res.manifest["verified_by"],
        "parity": res.manifest["parity"],
        "export_s": export_s,
        "bytes": res.manifest["sizes"]["file"],
    }


def large_layout(n: int):
    """(codebooks, centroids, leaf sizes, rng) of the large index, from a fixed seed."""
    rng = np.random.default_rng(22)
    books = [rng.standard_normal((256, 2)).astype(np.float32) for _ in range(LARGE_DIM // 2)]
    centroids = rng.standard_normal((LARGE_LEAVES, LARGE_DIM)).astype(np.float32)
    sizes = np.bincount(rng.integers(0, LARGE_LEAVES, n), minlength=LARGE_LEAVES)
    return books, centroids, sizes, rng


def write_large(path: Path, n: int) -> None:
    from scannlite.store.bundle.ondevice.index_writer import scann_config, write_index

    books, centroids, sizes, rng = large_layout(n)
    codes = rng.integers(0, 256, (n, len(books)), dtype=np.uint8)
    config = scann_config(
        distance="dot", centroids=centroids, leaves_to_search=LARGE_SEARCHED, codebooks=books, lookup_type="INT8"
    )
    labels = [b"item %d" % i for i in range(n)]
    with open(path, "wb") as f:
        write_index(f, config=config, database=codes, sizes=sizes, labels=labels, user_info=None)
        f.flush()
        os.fsync(f.fileno())  # written back, so the reader can drop it from the page cache


def visited_codes(n: int, searches: int) -> tuple[int, int]:
    """(leaves, code bytes) the probe's queries visit: the leaves of largest dot product with
    each query (the device's rule for a dot-product index), their codes summed."""
    _, centroids, sizes, _ = large_layout(n)
    q = np.random.default_rng(5).standard_normal((searches, LARGE_DIM)).astype(np.float32)
    top = np.argsort(-(q @ centroids.T), axis=1, kind="stable")[:, :LARGE_SEARCHED]
    leaves = np.unique(top)
    return len(leaves), int(sizes[leaves].sum()) * (LARGE_DIM // 2)


# Run in a fresh process: drop the file from the page cache, open, search, read /proc and mincore.
PROBE = r"""
import ctypes, json, mmap, os, sys, time
import numpy as np
from scannlite.store.searcher import NativeSearcher

path, searches, readahead = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
size = os.path.getsize(path)
fd = os.open(path, os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
libc = ctypes.CDLL(None, use_errno=True)
page = mmap.PAGESIZE

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

def mapped_rss():
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            inside = len(parts) >= 6 and parts[5] == os.path.realpath(path)
        elif inside and parts[0] == "Rss:":
            total += int(parts[1]) * 1024
    return total

def in_page_cache():
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    buf = (ctypes.c_char * size).from_buffer(m)
    vec = (ctypes.c_ubyte * ((size + page - 1) // page))()
    assert libc.mincore(ctypes.c_void_p(ctypes.addressof(buf)), ctypes.c_size_t(size), vec) == 0
    n = sum(v & 1 for v in vec)
    del buf
    m.close()
    return n * page

before = status("VmRSS")
cached_before = in_page_cache()
t = time.perf_counter()
s = NativeSearcher(path, readahead=readahead)
open_ms = (time.perf_counter() - t) * 1000
after_open = {"mapped": mapped_rss(), "cached": in_page_cache(), "rss": status("VmRSS")}
rng = np.random.default_rng(5)
q = rng.standard_normal((searches, s.dimension)).astype(np.float32)
t = time.perf_counter()
for v in q:
    s.search(v, 10)
search_ms = (time.perf_counter() - t) * 1000 / searches
after = {"mapped": mapped_rss(), "cached": in_page_cache(), "rss": status("VmRSS"), "hwm": status("VmHWM")}
info = s.info  # counts the items: every leaf located (after the figures above)
s.close()
t = time.perf_counter()
again = NativeSearcher(path)  # the file's pages now in the page cache: a warm open
warm_open_ms = (time.perf_counter() - t) * 1000
again.close()
print(json.dumps({"size": size, "before_rss": before, "cached_before": cached_before, "open_ms": open_ms,
                  "after_open": after_open, "after": after, "search_ms": search_ms, "warm_open_ms": warm_open_ms, "info": info}))
"""


def _probe(path: Path, readahead: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(SEARCHES), "1" if readahead else "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def open_large(workdir: Path, n: int, say) -> dict:
    path = workdir / f"large-{n}.ldb"
    say(f"writing a {n:,}-item index (the export's index writer, synthetic codes)")
    t0 = time.perf_counter()
    write_large(path, n)
    write_s = time.perf_counter() - t0
    say("opening it in a fresh process, the file dropped from the page cache first")
    try:
        m = _probe(path, True)
        say("again with readahead off (MADV_RANDOM kept)")
        m["no_readahead"] = _probe(path, False)
    finally:
        path.unlink(missing_ok=True)
    m["write_s"], m["items"] = write_s, n
    m["visited_leaves"], m["visited_bytes"] = visited_codes(n, SEARCHES)
    return m


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def run(data, workdir: Path, command: str, say=print) -> Section:
    quick = data.setup.name == "quick"
    workdir = Path(workdir)
    section = Section(NAME, command)
    r = same_answers(workdir, quick, say)
    tl, mine = r["task_library"], r["libscannlite"]
    t = Table(
        f"Real text, {r['items']:,} MiniLM sentences, default settings ({r['info']['num_leaves']} leaves, "
        f"{r['info']['leaves_to_search']} searched, {r['info']['lookup']} lookup): {r['queries']} held-out queries, k={K}",
        ["runtime", "identical answers", "p50 per search", "p95 per search", "searches timed"],
    )
    t.add(
        "Task Library 0.4.4 (TextSearcher, device process)",
        "(reference)",
        f"{tl['p50']:.3f} ms",
        f"{tl['p95']:.3f} ms",
        tl["searches"],
    )
    t.add(
        "libscannlite (ctypes, this process)",
        f"{r['identical']} of {r['queries']} queries",
        f"{mine['p50']:.3f} ms",
        f"{mine['p95']:.3f} ms",
        mine["searches"],
    )
    t.how += [
        f"Set: {r['set']}.",
        f"Index: `export(cat, device=DeviceProcesses(), out=real.ldb, embedder=None, index_only=True)` "
        f"({r['bytes']:,} bytes, {r['export_s']:.1f} s), verified by {' and '.join(r['verified_by'])} "
        f"({r['parity']['queries']} probe queries, identical on {r['parity']['identical']}).",
        "Task Library: `DeviceProcesses().check_bundle(index=real.ldb, probe_vectors=queries, max_results=10, "
        "l2_normalize=True)`: TextSearcher through a probe embedder (a lookup of the query vector), warm, each "
        f"`search` timed alone ({ROUNDS} rounds over the queries); the probe embedding costs microseconds.",
        "libscannlite: `NativeSearcher(real.ldb).search(l2_normalize(q), 10)`, warm, each call timed alone "
        f"({ROUNDS} rounds), the ctypes call and result conversion included.",
        f"Identical: metadata, order and float32 distance bits of all {r['results']:,} results "
        f"({r['ties']} exact ties among adjacent results).",
    ]
    section.tables.append(t)
    ratio = tl["p50"] / mine["p50"] if mine["p50"] else float("inf")
    section.targets.append(
        (
            "libscannlite returns the Task Library's answers on every real query",
            f"{r['identical']} of {r['queries']}",
            r["identical"] == r["queries"],
        )
    )
    section.targets.append(
        (
            "libscannlite p50 per search at most the Task Library's (goal: half)",
            f"{mine['p50']:.3f} ms vs {tl['p50']:.3f} ms ({ratio:.2f}x faster)",
            mine["p50"] <= tl["p50"],
        )
    )
    if r["problems"]:
        section.notes += r["problems"]
    if r["spec"] != "full":
        section.notes.append(
            f"The real set here is bench.real_text's quick set ({r['items']:,} sentences), the one cached on this "
            "machine: the full set (120,000 sentences) is embedded by MiniLM at about 100 sentences a second on "
            "these 2 shared cores (the quick set's 5,100 took 50 s), about 20 minutes; "
            "`SCANNLITE_BENCH_REAL=full python -m bench.runtimes` uses it."
        )
    section.notes.append(
        "Opening reads the footer, the metaindex and index blocks and the block holding INDEX_CONFIG: no leaf's "
        "codes block and no metadata block. Each leaf is located in its block (its first entry and restart "
        "array) and the block's trailer (compression type and checksum) read the first time a search visits it. "
        "`NativeSearcher` counts the items (`info['size']`, which locates every leaf) only when asked. It maps "
        "the file with MADV_RANDOM while opening so that readahead around the pages it reads does not read "
        "their neighbours, and MADV_NORMAL after."
    )
    large = {}
    for n in LARGE["quick" if quick else "full"]:
        large[n] = m = open_large(workdir, n, say)
        _large_table(section, n, m)
    section.figures = {"same": r, "large": {str(n): m for n, m in large.items()}}
    return section


def _large_table(section: Section, n: int, m: dict) -> None:
    info = m["info"]
    t2 = Table(
        f"Opening a large index with libscannlite: {n:,} items, {info['dimension']}-d asymmetric hashing, "
        f"{info['num_leaves']} leaves, {info['leaves_to_search']} searched ({_mib(m['size'])} file)",
        [
            "step",
            "time",
            "file pages in memory (mincore)",
            "mapping resident in the process (smaps Rss)",
            "process RSS",
        ],
    )
    t2.add("before opening (file dropped from the page cache)", "", _mib(m["cached_before"]), "", _mib(m["before_rss"]))
    a = m["after_open"]
    t2.add("open", f"{m['open_ms']:.2f} ms", _mib(a["cached"]), _mib(a["mapped"]), _mib(a["rss"]))
    b = m["after"]
    t2.add(
        f"after {SEARCHES} searches (k=10), which visit {m['visited_leaves']} of {info['num_leaves']} leaves "
        f"({_mib(m['visited_bytes'])} of codes)",
        f"{m['search_ms']:.3f} ms per search",
        _mib(b["cached"]),
        _mib(b["mapped"]),
        f"{_mib(b['rss'])} (VmHWM {_mib(b['hwm'])})",
    )
    t2.add("open again (the file now in the page cache)", f"{m['warm_open_ms']:.2f} ms", "", "", "")
    nr = m["no_readahead"]
    nb = nr["after"]
    t2.add(
        f"readahead off (`NativeSearcher(path, readahead=False)`, a fresh process, cold): open, then {SEARCHES} searches",
        f"{nr['open_ms']:.2f} ms; {nr['search_ms']:.3f} ms per search",
        _mib(nb["cached"]),
        _mib(nb["mapped"]),
        f"{_mib(nb['rss'])} (VmHWM {_mib(nb['hwm'])})",
    )
    t2.how += [
        f"Index: `bench.runtimes.write_large` ({n:,} rows of random uint8 codes, {info['num_subspaces']} subspaces, "
        "INT8 lookup, random centroids and codebooks, labels `item N`), written by the export's index writer in "
        f"{m['write_s']:.1f} s. Random codes search no better than noise, but opening and residency depend only "
        "on the file's layout (block sizes, leaves, metadata), which is the export's.",
        "A fresh Python process: `posix_fadvise(DONTNEED)` on the file, then `NativeSearcher(path)` "
        "(which maps it read-only), timed; `mincore` on a second mapping of the file counts its pages in the "
        "page cache; `/proc/self/smaps` gives the searcher mapping's resident pages; `/proc/self/status` VmRSS and VmHWM.",
        f"Then {SEARCHES} random queries (k=10): only the searched leaves' codes, the centroids, codebooks and "
        "the metadata blocks of the results are touched (each touched block read whole once, for its checksum); "
        "'opened pages + visited leaves' codes' leaves the metadata blocks out.",
        "Readahead off: the same in another fresh process after dropping the file from the page cache again, "
        "with `NativeSearcher(path, readahead=False)` (MADV_RANDOM kept after opening): the kernel then reads "
        "only the pages touched, where readahead (and fault-around, mapping the neighbours it brought in) "
        "makes the default's resident set larger and its first visits of leaves faster.",
    ]
    section.tables.append(t2)
    touched = a["mapped"] + m["visited_bytes"]
    section.targets.append(
        (
            f"opening a {n:,}-item index takes milliseconds and reads no codes",
            f"{m['warm_open_ms']:.2f} ms warm, {m['open_ms']:.0f} ms cold; {_mib(a['cached'])} of the "
            f"{_mib(m['size'])} file read (the index and config blocks)",
            m["warm_open_ms"] < 100 and a["cached"] < m["size"] / 5,
        )
    )
    section.targets.append(
        (
            f"after {SEARCHES} searches the mapping's resident pages are those touched, not the file",
            f"readahead off: {_mib(nb['mapped'])}, on: {_mib(b['mapped'])} resident of a {_mib(m['size'])} "
            f"file; opened pages + visited leaves' codes: {_mib(touched)}",
            nb["mapped"] < 1.5 * touched and b["mapped"] < m["size"] / 2,
        )
    )


def main(argv: list[str] | None = None) -> int:
    from .warm_queries import run_updating_report

    return run_updating_report(
        argv,
        __doc__.splitlines()[0],
        run,
        study="runtimes",
        quick_help="a 50,000-item large index: a smoke run",
        workdir_help="where the catalog and indexes go (kept)",
    )


if __name__ == "__main__":
    sys.exit(main())
