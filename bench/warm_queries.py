"""Benchmark for issue 9: queries through warm model workers, from Datasette over HTTP, and
``add --images`` with 1 and N embedding workers.

The data is ``make demo``'s (:mod:`scannlite.plugin.dual_encoder.demo_openmoji`): the OpenMoji catalog
(4,024 emoji images embedded by the demo's image tower, 64 leaves) with the demo's MiniLM text
tower configured as its text embedder. The demo's outputs are reused from ``demo-output/``;
when they are missing the benchmark makes them there with the demo's own code (training and
converting the dual encoder: a few minutes). Steps, one after another:

1. ``datasette serve`` on the catalog (a separate process, as a user runs it), then text
   queries over HTTP to ``/-/scannlite/catalog/search.json?q=...``: the first one (cold:
   the Datasette process opens the embedder, starts a device worker, loads the tower), then
   many more (warm), timed one by one on the client;
2. image queries (an emoji PNG posted as a multipart upload), the first one, then many more;
3. rounds of 16 concurrent text queries: every answer must be the sequential answer;
4. ``scannlite add --images`` of every OpenMoji image into a new catalog, with ``--workers 1``
   and ``--workers N`` (N = the machine's cores), each a fresh CLI process timed from outside;
   the two catalogs must hold the same vectors.

``python -m bench.warm_queries`` runs it alone, writes ``bench/results/benchmarks/warm_queries.json``
and renders docs/benchmarks.md again; ``--quick`` runs few queries and a 200-image subset and
writes nothing unless ``--results`` says where (without the demo's outputs, a stand-in text
model and catalog replace them and the image steps are left out; quick runs record no targets).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import ROOT
from .report import Section, Table

NAME = "Warm queries (issue 9)"
BIN = Path(sys.executable).parent
DEMO = ROOT / "demo-output"
CONCURRENT = 16
TEXT_P50_MS, IMAGE_P50_MS = 30.0, 50.0


# ---- the demo's outputs, or a stand-in --------------------------------------------------------


def demo_outputs(out: Path | None = None) -> dict | None:
    out = out or DEMO
    paths = {
        "catalog": out / "emoji.catalog",
        "text": out / "towers" / "text_embedder.tflite",
        "image": out / "towers" / "image_embedder.tflite",
        "images": out / "openmoji",
        "text_bundle": out / "emoji_text_searcher.tflite",
        "captions": out / "openmoji-captions.jsonl",
    }
    needed = [p for key, p in paths.items() if key != "text_bundle"]
    if not (paths["catalog"] / "catalog.db").is_file() or not all(p.exists() for p in needed):
        return None
    with open(paths["captions"], encoding="utf-8") as f:
        paths["caption_list"] = [json.loads(line)["metadata"] for line in f if line.strip()]
    return paths


def make_demo(say) -> dict:
    from scannlite.plugin.dual_encoder import demo_openmoji

    say(f"the demo's outputs are missing: making them in {DEMO} with the demo's code (training included)")
    demo_openmoji.run(DEMO, say=lambda line: say("  demo: " + line.strip()))
    return demo_outputs()


def stand_in(workdir: Path, say) -> dict:
    """A probe text model and a random catalog, for quick runs on machines without the demo."""
    from scannlite.plugin.facade.database import create
    from scannlite.store.workers.boundary import run_in

    say("quick run without the demo's outputs: a stand-in probe text model and catalog (no image steps)")
    rng = np.random.default_rng(9)
    model = workdir / "warm-probe-text.tflite"
    model.write_bytes(
        run_in(
            "device",
            "scannlite.plugin.device.runtime:make_probe_model",
            rng.standard_normal((500, 64)).astype(np.float32),
        )
    )
    path = workdir / "warm-stand-in.catalog"
    if not (path / "catalog.db").is_file():
        with create(path, 64, num_leaves=16, leaves_to_search=2) as db:
            db.add(ids=[f"v{i}" for i in range(2000)], vectors=rng.standard_normal((2000, 64)))
            db.build()
            db.configure(text_embedder=model)
    return {
        "catalog": path,
        "text": model,
        "image": None,
        "images": None,
        "captions": None,
        "caption_list": [f"q{i} q{(7 * i) % 500}" for i in range(500)],
    }


# ---- a Datasette server, and queries to it --------------------------------------------------


class Server:
    def __init__(self, db: Path, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.db, self.log, self.url = db, log, f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "datasette"), "serve", str(self.db), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/versions.json", timeout=5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.perf_counter() - started > 120:
                    self.__exit__()
                    raise RuntimeError(f"datasette did not start; see {self.log}")
                time.sleep(0.1)
        self.start_seconds = time.perf_counter() - started
        name = self.get("/-/databases.json")[0]["name"]
        self.search = f"/-/scannlite/{urllib.parse.quote(name)}/search.json"
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()

    def get(self, path: str, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        with urllib.request.urlopen(req, timeout=300) as resp:
            return json.loads(resp.read())

    def timed(self, path: str, data: bytes | None = None, headers: dict | None = None) -> tuple[float, dict]:
        t0 = time.perf_counter()
        got = self.get(path, data, headers)
        took = time.perf_counter() - t0
        if not got.get("ok", True):
            raise RuntimeError(f"query failed: {got.get('error')}")
        return took, got

    def text(self, q: str, k: int = 10) -> tuple[float, dict]:
        return self.timed(self.search + "?" + urllib.parse.urlencode({"q": q, "k": k}))

    def image(self, png: bytes, k: int = 10) -> tuple[float, dict]:
        boundary = "scannliteBenchBoundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + png
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.timed(self.search, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _ms(seconds: list[float]) -> tuple[float, float]:
    p50, p95 = np.percentile(1000 * np.asarray(seconds), [50, 95])
    return float(p50), float(p95)


def _ids(answer: dict) -> list[tuple[str, float]]:
    return [(hit["id"], hit["distance"]) for hit in answer["results"]]


# ---- add --images with 1 and N workers -----------------------------------------------------


def _add_images(paths: dict, folder: Path, catalog: Path, workers: int) -> float:
    subprocess.run(
        [str(BIN / "scannlite"), "init", str(catalog), "--dim", "128", "--distance", "dot"],
        check=True,
        capture_output=True,
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            str(BIN / "scannlite"),
            "add",
            str(catalog),
            "--images",
            str(folder),
            "--embedder",
            str(paths["image"]),
            "--metadata-file",
            str(paths["captions"]),
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"scannlite add failed: {proc.stderr.strip()}")
    return took


def _same_catalogs(a: Path, b: Path) -> bool:
    from scannlite.store.catalog.catalog import Catalog

    with Catalog.open(a) as ca, Catalog.open(b) as cb:
        ids = ca.ids_at(ca.head_seq)
        if ids != cb.ids_at(cb.head_seq):
            return False
        va = ca.vectors_for(np.array([ca.get(i)["item"] for i in ids]))
        vb = cb.vectors_for(np.array([cb.get(i)["item"] for i in ids]))
        return bool(np.array_equal(va, vb))


# ---- the benchmark ---------------------------------------------------------------------------


def run(data, workdir: Path, command: str, say=print) -> Section:
    quick = data.setup.name == "quick"
    workdir = Path(workdir)
    section = Section(NAME, command)
    paths = demo_outputs()
    if paths is None:
        paths = stand_in(workdir, say) if quick else make_demo(say)
    demo = paths["image"] is not None
    n_text, n_image, rounds = (20, 10, 2) if quick else (200, 100, 5)
    n_add = 200 if quick else None
    rng = np.random.default_rng(17)
    captions = paths["caption_list"]
    texts = [captions[i] for i in rng.choice(len(captions), size=n_text, replace=len(captions) < n_text)]
    pngs = sorted(paths["images"].glob("*.png")) if demo else []
    load_before = os.getloadavg()[0]

    say(f"datasette serve {paths['catalog'] / 'catalog.db'}; {n_text} text queries over HTTP")
    with Server(paths["catalog"] / "catalog.db", workdir / "warm-datasette.log") as server:
        cold_text, first = server.text(texts[0])
        warm = [server.text(t) for t in texts]
        text_seconds = [s for s, _ in warm]
        text_embed = [a["query"]["seconds"] for _, a in warm]
        text_search = [a["search_ms"] / 1000 for _, a in warm]
        if demo:
            say(f"{n_image} image queries over HTTP (emoji PNGs as uploads)")
            picks = [pngs[i] for i in rng.choice(len(pngs), size=n_image + 1, replace=False)]
            cold_image, _ = server.image(picks[0].read_bytes())
            images = [server.image(p.read_bytes()) for p in picks[1:]]
            image_seconds = [s for s, _ in images]
            image_embed = [a["query"]["seconds"] for _, a in images]
        say(f"{rounds} rounds of {CONCURRENT} concurrent text queries")
        batch = [texts[i % len(texts)] for i in range(CONCURRENT)]
        alone = {t: _ids(server.text(t)[1]) for t in dict.fromkeys(batch)}
        walls, same, total, busy_embed = [], 0, 0, []
        with ThreadPoolExecutor(CONCURRENT) as pool:
            for n in range(rounds):
                t0 = time.perf_counter()
                answers = list(pool.map(server.text, batch))
                walls.append(time.perf_counter() - t0)
                same += sum(_ids(a) == alone[t] for t, (_, a) in zip(batch, answers))
                total += len(batch)
                if n or rounds == 1:
                    busy_embed += [a["query"]["seconds"] for _, a in answers]
        server_start = server.start_seconds

    if demo:
        workers = max(1, os.cpu_count() or 1)
        folder = paths["images"]
        if n_add is not None:
            folder = workdir / "warm-openmoji-subset"
            folder.mkdir(exist_ok=True)
            for p in pngs[:n_add]:
                if not (folder / p.name).exists():
                    (folder / p.name).symlink_to(p)
        count = len(list(folder.glob("*.png")))
        adds = {}
        with tempfile.TemporaryDirectory(prefix="scannlite-warm-", dir=workdir) as tmp:
            for w in (1, workers):
                say(f"scannlite add --images ({count} images) --workers {w}")
                adds[w] = _add_images(paths, folder, Path(tmp) / f"w{w}", w)
            identical = _same_catalogs(Path(tmp) / "w1", Path(tmp) / f"w{workers}")
    floor = None
    if demo and paths.get("text_bundle") and paths["text_bundle"].is_file():
        from scannlite.store.workers.boundary import run_in

        say("for comparison: the text tower alone in a device worker (TextEmbedder, TextSearcher)")
        floor = run_in(
            "device",
            "bench.device_timing:time_text_search",
            paths["text_bundle"].read_bytes(),
            texts,
            max_results=10,
            l2_normalize=True,
            warmup=min(10, len(texts)),
        )
    load_after = os.getloadavg()[0]

    # ---- tables ---------------------------------------------------------------------------
    tp50, tp95 = _ms(text_seconds)
    what = "the demo's MiniLM text tower" if demo else "a stand-in probe text model"
    t = Table(
        f"Datasette queries over HTTP ({what}, {'OpenMoji catalog' if demo else 'stand-in catalog'})",
        [
            "query",
            "first (cold)",
            "p50 after the first",
            "p95 after the first",
            "of which embedding p50",
            "of which search p50",
            "queries",
        ],
    )
    t.add(
        "text (`?q=`)",
        f"{1000 * cold_text:,.0f} ms",
        f"{tp50:.1f} ms",
        f"{tp95:.1f} ms",
        f"{1000 * statistics.median(text_embed):.1f} ms",
        f"{1000 * statistics.median(text_search):.2f} ms",
        str(len(text_seconds)),
    )
    if demo:
        ip50, ip95 = _ms(image_seconds)
        t.add(
            "image (PNG upload)",
            f"{1000 * cold_image:,.0f} ms",
            f"{ip50:.1f} ms",
            f"{ip95:.1f} ms",
            f"{1000 * statistics.median(image_embed):.1f} ms",
            "",
            str(len(image_seconds)),
        )
    t.how = [
        f"`datasette serve {paths['catalog'].name}/catalog.db` in its own process (up in {server_start:.1f} s), "
        "queried from this process with `urllib` (a new connection per request); each figure is the client's wall "
        "time from sending the request to reading the whole JSON answer (k = 10).",
        "First (cold): the first text query after the server started: it opens the configured embedder (reads and "
        "checks the model file), starts a device worker, loads the tower into the Task Library, and loads the "
        "snapshot. The first image query then loads the image tower (in a warm worker).",
        f"Text queries: {len(text_seconds)} captions of the catalog's emoji drawn at random (seed 17)"
        if demo
        else f"Text queries: {len(text_seconds)} probe-token queries",
        *(
            [f"Image queries: {len(image_seconds)} emoji PNGs of the catalog (96 px) posted as multipart uploads."]
            if demo
            else []
        ),
        "Embedding and search columns: the server's own figures in each answer (`query.seconds`: the embedding, "
        "including the round trip to the worker; `search_ms`: the device-equivalent search).",
    ]
    section.tables.append(t)
    if demo and floor is not None:
        fp50, fp95 = _ms(list(floor["embed"]))
        sp50, sp95 = _ms(list(floor["search"]))
        f = Table(
            "For comparison: the text tower alone, in a device worker (no HTTP, no Datasette)", ["call", "p50", "p95"]
        )
        f.add("`TextEmbedder.embed` (the embedding a text query needs)", f"{fp50:.1f} ms", f"{fp95:.1f} ms")
        f.add("`TextSearcher.search` on the demo's text bundle (what a phone does)", f"{sp50:.1f} ms", f"{sp95:.1f} ms")
        f.how = [
            "`bench.device_timing:time_text_search` in a device worker: the same texts as the HTTP queries, "
            "10 warm-up calls, then each call timed with `time.perf_counter()` inside the worker. The difference "
            "to the HTTP p50 is scannlite's and Datasette's share (worker round trip, search, the page's "
            "catalog state, thumbnails paths, HTTP)."
        ]
        section.tables.append(f)

    c = Table(f"{CONCURRENT} concurrent text queries over HTTP", ["figure", "value"])
    c.add("answers identical to the sequential answer", f"{same} of {total}")
    c.add(
        "throughput, first round", f"{CONCURRENT / walls[0]:.1f} queries/s ({1000 * walls[0]:,.0f} ms for {CONCURRENT})"
    )
    later = walls[1:] or walls
    c.add(
        "throughput, the next round" if len(later) == 1 else f"throughput, median of the next {len(later)} rounds",
        f"{CONCURRENT / statistics.median(later):.1f} queries/s "
        f"({1000 * statistics.median(later):,.0f} ms for {CONCURRENT})",
    )
    c.add("sequential, for comparison (1 / p50)", f"{1000 / tp50:.1f} queries/s")
    c.add(
        "server's embedding time per query, median (alone / 16 at once)",
        f"{1000 * statistics.median(text_embed):.1f} ms / {1000 * statistics.median(busy_embed):.1f} ms",
    )
    c.how = [
        f"{rounds} rounds of {CONCURRENT} requests sent at once from {CONCURRENT} client threads ({len(set(batch))} "
        "distinct texts); each answer's ids and distances compared with the answer the same text got alone. "
        "Datasette runs each search in a thread (`asyncio.to_thread`); the device workers are at most the "
        f"machine's cores ({os.cpu_count()}), so the first round also starts the second worker.",
        "The embedding row: `query.seconds` of the answers, alone (the warm text queries above) and in the "
        "rounds after the first (waiting for a free worker included).",
    ]
    section.tables.append(c)

    if demo:
        a = Table(
            f"`scannlite add --images`: {count:,} OpenMoji images (96 px PNG), the demo's image tower",
            ["workers", "wall time", "images/s", "x 1 worker"],
        )
        for w, took in adds.items():
            a.add(f"--workers {w}", f"{took:.1f} s", f"{count / took:.1f}", f"{adds[1] / took:.2f}")
        a.how = [
            "Each row: `scannlite init` of a new catalog, then `scannlite add NEW --images "
            f"{'demo-output/openmoji' if n_add is None else 'SUBSET'} --embedder towers/image_embedder.tflite "
            "--metadata-file openmoji-captions.jsonl --workers W` as a fresh process, timed from outside "
            "(process start, hashing the files, decoding, embedding, commits).",
            f"The two catalogs hold the same ids and byte-identical vectors: {'yes' if identical else 'NO'}.",
        ]
        section.tables.append(a)

    if demo and floor is not None:
        section.notes.append(
            f"Where the text query's time goes: p50 {tp50:.1f} ms over HTTP; the server's embedding figure "
            f"{1000 * statistics.median(text_embed):.1f} ms (measured around the call into the device worker) and "
            f"search {1000 * statistics.median(text_search):.2f} ms; the tower alone takes {fp50:.1f} ms in the worker. "
            "The rest is Datasette, HTTP and the page's catalog state and thumbnail paths."
        )
    section.notes.append(
        f"Load average (1 min) {load_before:.2f} before this benchmark and {load_after:.2f} after: "
        "the 2 cores are shared with other work, so absolute times drift between runs."
    )
    section.figures = {
        "text_cold_ms": 1000 * cold_text,
        "text_p50_ms": tp50,
        "text_p95_ms": tp95,
        "concurrent_identical": [same, total],
        "concurrent_qps": CONCURRENT / statistics.median(later),
    }
    if demo:
        section.figures.update(
            {
                "image_cold_ms": 1000 * cold_image,
                "image_p50_ms": ip50,
                "image_p95_ms": ip95,
                "add_images_per_s": {str(w): count / s for w, s in adds.items()},
                "add_identical": identical,
            }
        )
    if not quick and demo:
        section.targets += [
            (
                f"Datasette text query (MiniLM) p50 after the first at most {TEXT_P50_MS:.0f} ms",
                f"{tp50:.1f} ms (first {1000 * cold_text:,.0f} ms)",
                tp50 <= TEXT_P50_MS,
            ),
            (f"Datasette image query p50 at most {IMAGE_P50_MS:.0f} ms", f"{ip50:.1f} ms", ip50 <= IMAGE_P50_MS),
            (
                f"{CONCURRENT} concurrent HTTP text queries: every answer the sequential one",
                f"{same} of {total}",
                same == total,
            ),
        ]
    return section


# ---- alone: this study's results, then docs/benchmarks.md rendered again ----------------------


def run_updating_report(
    argv, description: str, run, *, study: str, quick_help: str, workdir_help: str, make_data=None
) -> int:
    """A benchmark section run on its own: parse ``--quick/--workdir/--results/--output``, run
    it, print its tables and targets, write its JSON results (by default
    ``bench/results/benchmarks/<study>.json``, not with ``--quick``) and render the report from
    that folder again (default docs/benchmarks.md). ``make_data(setup, workdir)`` gives what
    ``run`` takes as its data (default: just the setup)."""
    from types import SimpleNamespace

    from . import block_tensorflow, results
    from .cli import SYNTHETIC, save_results, synthetic_data
    from .report import command_line, console, now, targets_table
    from .setup import pick

    block_tensorflow()
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--workdir", type=Path, help=workdir_help)
    ap.add_argument(
        "--results", type=Path, help="write the JSON results here (default: bench/results/benchmarks, not with --quick)"
    )
    ap.add_argument(
        "--output",
        type=Path,
        help="render the report of the results folder here (default: docs/benchmarks.md, not with --quick)",
    )
    args = ap.parse_args(argv)
    folder = args.results or (None if args.quick else results.RESULTS / "benchmarks")
    output = args.output or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if output and not folder:
        ap.error("--output with --quick needs --results (the folder the report is rendered from)")
    con = console()
    say = lambda msg: con.print(f"[dim]- {msg}[/dim]")  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="scannlite-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0, started, load = time.perf_counter(), now(), os.getloadavg()[0]
        setup = pick(args.quick)
        data = make_data(setup, workdir) if make_data else SimpleNamespace(setup=setup)
        section = run(data, workdir, command_line(), say)
        section.seconds = time.perf_counter() - t0
        described = synthetic_data(setup, data) if make_data and study in SYNTHETIC else []
    for table in section.tables:
        table.print(con)
    if section.targets:
        targets_table([section]).print(con)
    save_results(
        folder,
        output,
        [results.section_json(section, study, started=started, data=described, load=(load, os.getloadavg()[0]))],
        con,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_updating_report(
        argv,
        __doc__.splitlines()[0],
        run,
        study="warm_queries",
        quick_help="few queries, 200 images: a smoke run",
        workdir_help="where catalogs and logs go (kept)",
    )


if __name__ == "__main__":
    sys.exit(main())
