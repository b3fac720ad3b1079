"""Ingesting images and texts into a catalog through any installed embedder.

The embedder is what the user named (``--embedder``): a model file (``.tflite`` -> the Task
Library's TextEmbedder or ImageEmbedder), or a type from ``scannlite embedders``, built in or
from a plugin package (``NAME`` or ``NAME:PATH``); see :mod:`scannlite.plugin.embedders`.
The catalog records it, so the Datasette search page embeds queries the same way.

Images: a folder (walked recursively) or a glob; each file's id is its path relative to the
folder (or to the glob's fixed prefix), its metadata comes from a JSONL/CSV sidecar or is the
relative path. Files are hashed: a re-run skips files whose content is unchanged. Unreadable
files are skipped and reported, never fatal. Work is committed in chunks, so an interrupted
ingestion keeps every chunk it finished, and a re-run picks up where it stopped.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scannlite.store.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.images import IMAGE_SUFFIXES
from scannlite.store.progress import SILENT, Progress
from scannlite.store.readers import json_lines, metadata_text
from scannlite.store.segments import sha256_file

CHUNK = 512
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
            raise InvalidInput(f"{path}:{n}: each line needs an \"id\" or \"path\"")
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


def add_images(cat: Catalog, source: str, embedder: str | Path, metadata_file: Path | None = None,
               progress: Progress = SILENT) -> IngestReport:
    from . import embedders

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
        ident = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix()
        digest = sha256_file(p)
        if known.get(ident) == digest:
            rep.unchanged += 1
        else:
            todo.append((ident, p, digest))
    with progress.task(f"embedding {len(todo)} images", total=max(len(todo), 1)) as advance:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            paths = [str(p) for _, p, _ in chunk]
            got = emb.embed(paths)
            rep.skipped += [(Path(p).name, why) for p, why in got.skipped]
            kept, vectors = _embedded_rows(paths, got, et.name)
            rows = [chunk[i] for i in kept]
            if rows:
                r = cat.add([ident for ident, _, _ in rows], vectors,
                            [sidecar.get(ident, ident) for ident, _, _ in rows], [d for _, _, d in rows])
                rep.added, rep.updated = rep.added + r.added, rep.updated + r.updated
                rep.unchanged += r.unchanged
            advance(len(chunk))
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
                raise InvalidInput(f"{path}:{n}: each line needs a non-empty \"text\"")
            rows.append((str(row.get("id", n)), row["text"], metadata_text(row.get("metadata", row["text"]))))
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [(str(n), line.strip(), line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise InvalidInput(f"{path} holds no text")
    return rows


def add_texts(cat: Catalog, path: Path, embedder: str | Path, progress: Progress = SILENT) -> IngestReport:
    from . import embedders

    et, model, emb = embedders.open_for(embedder, "text", USE_INSTEAD)
    rows = read_texts(path)
    embedders.check_dim(et, model, emb, cat.dim)
    rep = IngestReport()
    with progress.task(f"embedding {len(rows)} texts", total=len(rows)) as advance:
        for start in range(0, len(rows), CHUNK * 8):
            chunk = rows[start:start + CHUNK * 8]
            texts = [t for _, t, _ in chunk]
            got = emb.embed(texts)
            rep.skipped += [(text[:40], why) for text, why in got.skipped]
            kept, vectors = _embedded_rows(texts, got, et.name)
            chunk = [chunk[i] for i in kept]
            if chunk:
                hashes = [hashlib.sha256(t.encode()).hexdigest() for _, t, _ in chunk]
                r = cat.add([i for i, _, _ in chunk], vectors, [m for _, _, m in chunk], hashes)
                rep.added, rep.updated = rep.added + r.added, rep.updated + r.updated
                rep.unchanged += r.unchanged
            advance(len(texts))
    _remember(cat, "text_embedder", embedders.setting(et, model))
    return rep


def _remember(cat: Catalog, key: str, value: str) -> None:
    """Record which embedder made the catalog's vectors (the search page uses it)."""
    with cat.writing():
        with cat.transaction():
            cat.set_setting(key, value)
