"""Ingesting images and texts into a catalog through a TFLite embedder.

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

from scannlite.store.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.images import IMAGE_SUFFIXES
from scannlite.store.progress import SILENT, Progress
from scannlite.store.readers import json_lines, metadata_text
from scannlite.store.segments import sha256_file

CHUNK = 512


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


def add_images(cat: Catalog, source: str, embedder: Path, metadata_file: Path | None = None,
               progress: Progress = SILENT) -> IngestReport:
    from . import embedders

    embedder = Path(embedder)
    if not embedder.is_file():
        raise InvalidInput(f"cannot read embedder {embedder}: no such file")
    root, files = find_images(source)
    if not files:
        raise InvalidInput(f"no image files in {source}")
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
            vectors, done, skipped = embedders.embed_images(embedder, [str(p) for _, p, _ in chunk])
            rep.skipped += [(Path(p).name, why) for p, why in skipped]
            ok = {str(p) for p in done}
            rows = [(ident, digest) for ident, p, digest in chunk if str(p) in ok]
            order = {str(p): i for i, p in enumerate(done)}
            if rows:
                vecs = vectors[[order[str(p)] for ident, p, _ in chunk if str(p) in ok]]
                r = cat.add([ident for ident, _ in rows], vecs,
                            [sidecar.get(ident, ident) for ident, _ in rows], [d for _, d in rows])
                rep.added, rep.updated = rep.added + r.added, rep.updated + r.updated
                rep.unchanged += r.unchanged
            advance(len(chunk))
    _remember(cat, "image_embedder", embedder)
    _remember(cat, "thumbnails_root", root)
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


def add_texts(cat: Catalog, path: Path, embedder: Path, progress: Progress = SILENT) -> IngestReport:
    from . import embedders

    embedder = Path(embedder)
    if not embedder.is_file():
        raise InvalidInput(f"cannot read embedder {embedder}: no such file")
    rows = read_texts(path)
    rep = IngestReport()
    with progress.task(f"embedding {len(rows)} texts", total=len(rows)) as advance:
        for start in range(0, len(rows), CHUNK * 8):
            chunk = rows[start:start + CHUNK * 8]
            vectors = embedders.embed_texts(embedder, [t for _, t, _ in chunk])
            hashes = [hashlib.sha256(t.encode()).hexdigest() for _, t, _ in chunk]
            r = cat.add([i for i, _, _ in chunk], vectors, [m for _, _, m in chunk], hashes)
            rep.added, rep.updated, rep.unchanged = rep.added + r.added, rep.updated + r.updated, rep.unchanged + r.unchanged
            advance(len(chunk))
    _remember(cat, "text_embedder", embedder)
    return rep


def _remember(cat: Catalog, key: str, path: Path) -> None:
    """Record which embedder made the catalog's vectors (the search page uses it)."""
    with cat.writing():
        with cat.transaction():
            cat.set_setting(key, str(Path(path).resolve()))
