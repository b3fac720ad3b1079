"""Ingesting images and texts into a catalog through any installed embedder.

The embedder is what the user named (``--embedder``): a model file (``.tflite`` -> the Task
Library's TextEmbedder or ImageEmbedder), or a type from ``scannlite embedders``, built in or
from a plugin package (``NAME`` or ``NAME:PATH``); see :mod:`scannlite.plugin.embedders.registry`.
The catalog records it, so the Datasette search page embeds queries the same way.

Images: a folder (walked recursively) or a glob; each file's id is its path relative to the
folder (or to the glob's fixed prefix), its metadata comes from a JSONL/CSV sidecar or is the
relative path. Files are hashed: a re-run skips files whose content is unchanged. Unreadable
files are skipped and reported, never fatal. Work is committed in chunks, so an interrupted
ingestion keeps every chunk it finished, and a re-run picks up where it stopped.

Embedding runs on ``workers`` threads (default: the machine's cores): each chunk is cut into
``workers`` parts embedded at once, each thread calling the embedder, whose model runs in a
warm worker process of its own (:func:`scannlite.store.workers.boundary.run_in`: the pool of device
workers is raised to ``workers``). Parts are put back in input order before each chunk is
committed, so the catalog holds the same items, in the same order, with the same vectors and
the same commits, whatever the number of workers. An embedder plugin's ``embed`` must
therefore be safe to call from several threads at once (the built-in ones are).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.readers import json_lines, metadata_text
from scannlite.store.digests import sha256_file
from scannlite.store.errors import InvalidInput
from scannlite.store.images import IMAGE_SUFFIXES
from scannlite.store.progress import SILENT, Progress

CHUNK = 512  # images per commit (texts: 8 times as many)
# What to tell someone who named an embedder of the other kind.
USE_INSTEAD = {"text": "use it with --texts", "image": "use it with --images"}


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        out = f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}"
        if self.skipped:
            out += f", skipped {len(self.skipped)} unreadable"
        return out


def find_images(source: str) -> tuple[Path, list[Path]]:
    """(root the ids are relative to, image files in a stable order)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        return path, files
    if any(ch in source for ch in "*?["):
        root = Path(source.split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        return root, files
    if path.is_file():
        return path.parent, [path]
    raise InvalidInput(f"no images at {source}: not a folder, a file or a glob that matches")


def image_id(root: Path, path: Path) -> str:
    """An image's id: its path relative to the folder (or glob prefix) it was found under."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def read_sidecar(path: Path | None) -> dict[str, object]:
    """id (relative path) -> metadata, from JSONL ({"id"|"path": ..., "metadata": ...}) or CSV
    (a column ``id`` or ``path`` and a column ``metadata``; other columns become JSON)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read metadata file {path}: no such file")
    out: dict[str, object] = {}
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                key = row.get("id") or row.get("path")
                if not key:
                    raise InvalidInput(f"{path}:{n}: no id or path column")
                rest = {k: v for k, v in row.items() if k not in ("id", "path")}
                out[key] = rest.get("metadata") if set(rest) == {"metadata"} else json.dumps(rest, sort_keys=True)
        return out
    for n, row in json_lines(path):
        key = row.get("id") or row.get("path")
        if not key:
            raise InvalidInput(f'{path}:{n}: each line needs an "id" or "path"')
        out[key] = metadata_text(row.get("metadata"))
    return out


def _embedded_rows(inputs: list[str], got, name: str) -> tuple[list[int], np.ndarray]:
    """(indices of the inputs that got a vector, their vectors): embedders keep the inputs'
    order and leave skipped ones out."""
    vectors = np.asarray(got.vectors)
    if vectors.ndim != 2 or len(vectors) != len(got.keys):
        raise InvalidInput(f"embedder {name} returned {vectors.shape} vectors for {len(got.keys)} inputs")
    kept, row = [], 0
    for i, item in enumerate(inputs):
        if row < len(got.keys) and got.keys[row] == item:
            kept.append(i)
            row += 1
    if row != len(got.keys):
        raise InvalidInput(f"embedder {name} returned vectors for inputs it was not given, or out of order")
    return kept, vectors


def default_workers() -> int:
    """Embedding threads (and so device workers) when none are asked for: the machine's cores."""
    return max(1, os.cpu_count() or 1)


def _parts(n: int, chunk: int, workers: int) -> Iterator[tuple[int, int, int]]:
    """(chunk start, part start, part stop): each chunk of ``chunk`` inputs in ``workers`` parts."""
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        size = -(-(stop - start) // workers)
        for a in range(start, stop, size):
            yield start, a, min(a + size, stop)


def _merge(parts: list, dim: int):
    """One chunk's parts as one :class:`~scannlite.plugin.embedders.hookspecs.Embedded`, in order."""
    from scannlite.plugin.embedders.hookspecs import Embedded

    if len(parts) == 1:
        return parts[0]
    arrays = [np.asarray(g.vectors) for g in parts]
    arrays = [a for a in arrays if a.size] or [np.zeros((0, dim), np.float32)]
    return Embedded(
        np.concatenate(arrays) if len(arrays) > 1 else arrays[0],
        [k for g in parts for k in g.keys],
        [s for g in parts for s in g.skipped],
    )


def _no_progress(n: int = 1) -> None:
    """``advance`` when nobody draws progress."""


def embed_in_chunks(
    embed: Callable[[list[str]], object],
    inputs: Sequence[str],
    chunk: int,
    workers: int,
    dim: int,
    advance: Callable[[int], None] = _no_progress,
) -> Iterator[tuple[int, int, Any]]:
    """(start, stop, what ``embed`` returned for ``inputs[start:stop]``) for each chunk, in order.

    With one worker each chunk is one ``embed`` call. With more, each chunk is cut into
    ``workers`` parts embedded on a thread pool (a few parts ahead of the chunk being
    committed, so workers keep busy meanwhile), and the parts of a chunk are merged in input
    order. ``advance(n)`` is called as parts finish, in input order.
    """
    workers = max(1, int(workers))
    plan = list(_parts(len(inputs), chunk, workers))
    run = lambda part: embed(list(inputs[part[1] : part[2]]))  # noqa: E731

    def finished() -> Iterator[tuple[tuple[int, int, int], object]]:
        if workers == 1:
            for part in plan:
                yield part, run(part)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="scannlite-embed") as pool:
            pending: deque = deque()
            try:
                for part in plan:
                    pending.append((part, pool.submit(run, part)))
                    if len(pending) >= 2 * workers:
                        done, future = pending.popleft()
                        yield done, future.result()
                while pending:
                    done, future = pending.popleft()
                    yield done, future.result()
            finally:
                for _, future in pending:
                    future.cancel()

    last = {}  # chunk start -> stop of its last part: the chunk is whole when that part is in
    for chunk_start, _, b in plan:
        last[chunk_start] = b
    gathered = []
    for (chunk_start, a, b), got in finished():
        gathered.append(got)
        advance(b - a)
        if b == last[chunk_start]:
            yield chunk_start, b, _merge(gathered, dim)
            gathered = []


def _use_workers(workers: int | None) -> int:
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {workers}")
    if workers > 1:
        from scannlite.store.workers.boundary import set_max_workers

        set_max_workers("device", workers)
    return workers


def add_images(
    cat: Catalog,
    source: str,
    embedder: str | Path,
    metadata_file: Path | None = None,
    progress: Progress = SILENT,
    workers: int | None = None,
) -> IngestReport:
    """Embed the images of a folder or glob and upsert them; ``workers`` embedding threads
    (default: the machine's cores), the same result with any number."""
    from scannlite.plugin.embedders import registry as embedders

    workers = _use_workers(workers)
    et, model, emb = embedders.open_for(embedder, "image", USE_INSTEAD)
    root, files = find_images(source)
    if not files:
        raise InvalidInput(f"no image files in {source}")
    embedders.check_dim(et, model, emb, cat.dim)
    sidecar = read_sidecar(metadata_file)
    known = cat.live_source_hashes()
    rep = IngestReport()
    todo = []
    for p in files:
        ident = image_id(root, p)
        digest = sha256_file(p)
        if known.get(ident) == digest:
            rep.unchanged += 1
        else:
            todo.append((ident, p, digest))
    paths = [str(p) for _, p, _ in todo]
    with progress.task(f"embedding {len(todo)} images", total=max(len(todo), 1), unit="images") as advance:
        for start, stop, got in embed_in_chunks(emb.embed, paths, CHUNK, workers, cat.dim, advance):
            chunk = todo[start:stop]
            rep.skipped += [(Path(p).name, why) for p, why in got.skipped]
            kept, vectors = _embedded_rows(paths[start:stop], got, et.name)
            rows = [chunk[i] for i in kept]
            if rows:
                r = cat.add(
                    [ident for ident, _, _ in rows],
                    vectors,
                    [sidecar.get(ident, ident) for ident, _, _ in rows],
                    [d for _, _, d in rows],
                )
                rep.added, rep.updated = rep.added + r.added, rep.updated + r.updated
                rep.unchanged += r.unchanged
    _remember(cat, "image_embedder", embedders.setting(et, model))
    _remember(cat, "thumbnails_root", str(Path(root).resolve()))
    return rep


def read_texts(path: Path) -> list[tuple[str, str, object]]:
    """(id, text, metadata) rows from a text file (one text per line; id = line number) or a
    JSONL file ({"id", "text", "metadata"?})."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    rows = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for n, row in json_lines(path):
            if not isinstance(row.get("text"), str) or not row["text"].strip():
                raise InvalidInput(f'{path}:{n}: each line needs a non-empty "text"')
            rows.append((str(row.get("id", n)), row["text"], metadata_text(row.get("metadata", row["text"]))))
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [(str(n), line.strip(), line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise InvalidInput(f"{path} holds no text")
    return rows


def add_texts(
    cat: Catalog, path: Path, embedder: str | Path, progress: Progress = SILENT, workers: int | None = None
) -> IngestReport:
    """Embed the texts of a file (see :func:`read_texts`) and upsert them."""
    from scannlite.plugin.embedders import registry as embedders

    et, model, emb = embedders.open_for(embedder, "text", USE_INSTEAD)
    return _add_text_rows(cat, read_texts(path), et, model, emb, progress, workers)


def add_text_rows(
    cat: Catalog,
    rows: Sequence[tuple[str, str, object]],
    embedder: str | Path,
    progress: Progress = SILENT,
    workers: int | None = None,
) -> IngestReport:
    """Embed ``(id, text, metadata)`` rows and upsert them (what :func:`add_texts` does with a file's)."""
    from scannlite.plugin.embedders import registry as embedders

    et, model, emb = embedders.open_for(embedder, "text", USE_INSTEAD)
    rows = [(str(i), t, m) for i, t, m in rows]
    if not rows or any(not isinstance(t, str) or not t.strip() for _, t, _ in rows):
        raise InvalidInput("give at least one text, and no empty ones")
    return _add_text_rows(cat, rows, et, model, emb, progress, workers)


def _add_text_rows(cat: Catalog, rows, et, model: str, emb, progress: Progress, workers: int | None) -> IngestReport:
    from scannlite.plugin.embedders import registry as embedders

    workers = _use_workers(workers)
    embedders.check_dim(et, model, emb, cat.dim)
    rep = IngestReport()
    texts = [t for _, t, _ in rows]
    with progress.task(f"embedding {len(rows)} texts", total=len(rows), unit="texts") as advance:
        for start, stop, got in embed_in_chunks(emb.embed, texts, CHUNK * 8, workers, cat.dim, advance):
            rep.skipped += [(text[:40], why) for text, why in got.skipped]
            kept, vectors = _embedded_rows(texts[start:stop], got, et.name)
            chunk = [rows[start + i] for i in kept]
            if chunk:
                hashes = [hashlib.sha256(t.encode()).hexdigest() for _, t, _ in chunk]
                r = cat.add([i for i, _, _ in chunk], vectors, [m for _, _, m in chunk], hashes)
                rep.added, rep.updated = rep.added + r.added, rep.updated + r.updated
                rep.unchanged += r.unchanged
    _remember(cat, "text_embedder", embedders.setting(et, model))
    return rep


def _remember(cat: Catalog, key: str, value: str) -> None:
    """Record which embedder made the catalog's vectors (the search page uses it)."""
    with cat.writing():
        with cat.transaction():
            cat.set_setting(key, value)
