"""``scannlite embed``: embed an image collection into Parquet shards, on this machine or on Ray.

The output is a directory of shards, ``part-*.parquet`` with columns ``id``, ``embedding``
(fixed-size list of float32), ``metadata`` and ``source_hash`` (the file's sha256), that
``scannlite add CATALOG DIR`` ingests as one dataset, in one commit and bounded memory. The
directory is written under a temporary name beside it and renamed when every shard is in:
it appears whole or not at all.

Inputs: a folder (walked recursively), a glob, or a manifest (a ``.parquet`` or ``.csv`` file
with a ``path`` column, and optionally ``id`` and ``metadata``; a path may be a URI that
pyarrow's filesystems open, such as ``s3://bucket/a.jpg``). Ids and metadata follow
``add --images``: the path relative to the folder, metadata from ``--metadata-file`` or the id.

Engines, with the same vectors bit for bit (both run
:func:`scannlite.plugin.device.image_files.embed_image_files` in a device process):

* ``local`` (the default, Ray-free): ``workers`` warm device workers on this machine;
* ``ray``: Ray Data, locally or on a cluster (``address``); :mod:`scannlite.plugin.ingest.ray_engine`.

Only TFLite image embedders (``tflite-image``) run here: they are what a phone runs, and the
only kind a Ray worker can load by itself.
"""

from __future__ import annotations

import csv
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scannlite.plugin.ingest.add import default_workers, find_images, image_id, read_sidecar
from scannlite.store.catalog.segments import embedding_array
from scannlite.store.errors import InvalidInput
from scannlite.store.images import DEFAULT_MAX_PIXELS
from scannlite.store.progress import SILENT, Progress
from scannlite.store.workers.boundary import ProcessFailed, WorkerError, run_in, set_max_workers

ENGINES = ("local", "ray")
BATCH = 256  # images per worker call, and per shard for the local engine
_EMBED_FILES = "scannlite.plugin.device.image_files:embed_image_files"


@dataclass
class EmbedReport:
    images: int = 0
    embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    shards: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.embedded / self.seconds if self.seconds else 0.0
        return (
            f"embedded {self.embedded} of {self.images} images into {self.shards} shards in "
            f"{self.seconds:.1f} s ({rate:.1f} images/s)" + (f", skipped {len(self.skipped)}" if self.skipped else "")
        )


def image_items(source: str, metadata_file: Path | None = None) -> list[dict]:
    """The images to embed, in a stable order: dicts with ``id``, ``location`` and ``metadata``."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() in (".parquet", ".csv"):
        return _manifest(path)
    root, files = find_images(source)
    sidecar = read_sidecar(metadata_file)
    ids = [image_id(root, p) for p in files]
    return [{"id": i, "location": str(p.resolve()), "metadata": sidecar.get(i, i)} for i, p in zip(ids, files)]


def _manifest_columns(path: Path) -> dict[str, list]:
    """Column name -> values, every value text or None (a CSV's ``007`` stays ``007``)."""
    if path.suffix.lower() == ".csv":
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInput(f"cannot read the manifest {path}: {exc}") from None
        header, body = (rows[0], rows[1:]) if rows else ([], [])
        return {name: [r[i] if i < len(r) else None for r in body] for i, name in enumerate(header)}
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"cannot read the manifest {path}: {str(exc).strip().splitlines()[0]}") from None
    columns = {}
    for name in table.column_names:
        values = table.column(name).to_pylist()
        if any(isinstance(v, bytes) for v in values):
            try:
                values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
            except UnicodeDecodeError:
                raise InvalidInput(f"the manifest {path}: column {name!r} is not UTF-8 text") from None
        columns[name] = [None if v is None else str(v) for v in values]
    return columns


def _manifest(path: Path) -> list[dict]:
    columns = _manifest_columns(path)
    if "path" not in columns:
        raise InvalidInput(f"the manifest {path} has no 'path' column (columns: {', '.join(columns)})")
    paths = columns["path"]
    ids = columns.get("id", paths)
    meta = columns.get("metadata", ids)
    items: list[dict] = []
    seen: dict[str, int] = {}
    for n, (ident, location, m) in enumerate(zip(ids, paths, meta)):
        if not location:
            raise InvalidInput(f"{path}: row {n}: the path is empty")
        if not ident:
            raise InvalidInput(f"{path}: row {n}: the id is empty")
        if ident in seen:
            raise InvalidInput(f"{path}: id {ident!r} appears twice (rows {seen[ident]} and {n})")
        seen[ident] = n
        if "://" not in location and not Path(location).is_absolute():
            location = str((path.parent / location).resolve())  # relative to the manifest
        items.append({"id": ident, "location": location, "metadata": None if m is None else str(m)})
    return items


def _tflite_image_embedder(embedder: str | Path) -> tuple[str, int]:
    from scannlite.plugin.embedders import registry as embedders

    et, model, emb = embedders.open_for(embedder, "image", {"text": "scannlite embed takes image embedders"})
    if et.name != "tflite-image":
        raise InvalidInput(f"scannlite embed runs TFLite image embedders (.tflite); {embedder} is {et.name}")
    if emb.dim is None:  # a TFLite image embedder's output width is read from the model
        raise InvalidInput(f"{embedder} does not state the width of its vectors")
    return model, int(emb.dim)


def write_shard(folder: Path, number: int, table: pa.Table) -> None:
    """One shard (both engines write theirs here, on this machine)."""
    pq.write_table(table, folder / f"part-{number:05d}.parquet", compression="zstd")


def _shard(folder: Path, number: int, rows: list[dict], got: dict, dim: int) -> None:
    kept = got["kept"]
    if kept:
        write_shard(
            folder,
            number,
            pa.table(
                {
                    "id": pa.array([rows[i]["id"] for i in kept], pa.string()),
                    "embedding": embedding_array(got["vectors"].reshape(-1, dim)),
                    "metadata": pa.array([rows[i]["metadata"] for i in kept], pa.string()),
                    "source_hash": pa.array(got["hashes"], pa.string()),
                }
            ),
        )


def _local(
    items: list[dict],
    model: str,
    dim: int,
    staging: Path,
    workers: int,
    batch: int,
    max_pixels: int,
    progress: Progress,
) -> list[tuple[str, str]]:
    set_max_workers("device", workers)
    chunks = [items[a : a + batch] for a in range(0, len(items), batch)]

    def embed(rows: list[dict]) -> dict:
        try:
            return run_in("device", _EMBED_FILES, model, [r["location"] for r in rows], max_pixels)
        except (WorkerError, ProcessFailed) as exc:
            raise InvalidInput(f"the image embedder failed: {exc}") from None

    skipped = []
    with (
        progress.task(f"embedding {len(items)} images", total=max(len(items), 1), unit="images") as advance,
        ThreadPoolExecutor(workers, thread_name_prefix="scannlite-embed") as pool,
    ):
        for number, (rows, got) in enumerate(zip(chunks, pool.map(embed, chunks))):
            _shard(staging, number, rows, got, dim)
            skipped += [(rows[i]["id"], why) for i, why in got["skipped"]]
            advance(len(rows))
    return skipped


def check_engine(engine: str, address: str | None) -> None:
    """``--engine`` and ``--address``, as ``embed`` and ``build`` take them."""
    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if address and engine != "ray":
        raise InvalidInput("--address names a Ray cluster; use it with --engine ray")


def embed_images(
    source: str,
    embedder: str | Path,
    out: Path,
    *,
    metadata_file: Path | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    batch: int = BATCH,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress = SILENT,
) -> EmbedReport:
    """Embed the images of ``source`` into Parquet shards in the new directory ``out``."""
    check_engine(engine, address)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1 or batch < 1:
        raise InvalidInput(f"workers and batch must be at least 1, got {workers} and {batch}")
    out = Path(out)
    if out.exists():
        raise InvalidInput(f"{out} already exists; name a new directory for the shards")
    model, dim = _tflite_image_embedder(embedder)
    items = image_items(source, metadata_file)
    if not items:
        raise InvalidInput(f"no image files in {source}")
    staging = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from None
    started = time.perf_counter()
    try:
        if engine == "local":
            skipped = _local(items, model, dim, staging, workers, batch, max_pixels, progress)
        else:
            from scannlite.plugin.ingest import ray_engine

            with progress.task(f"embedding {len(items)} images on Ray ({workers} actors)"):
                skipped = ray_engine.embed_images(
                    items,
                    Path(model),
                    dim,
                    staging,
                    workers=workers,
                    address=address,
                    batch=batch,
                    max_pixels=max_pixels,
                )
        shards = len(list(staging.glob("*.parquet")))
        if not shards:
            first = f" (the first, {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
            raise InvalidInput(f"none of the {len(items)} images could be embedded{first}; nothing was written")
        staging.rename(out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return EmbedReport(len(items), len(items) - len(skipped), skipped, shards, time.perf_counter() - started)
