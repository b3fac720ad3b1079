"""``scannlite embed --engine ray``: image embedding on Ray Data, for collections that outgrow
one machine's patience (install with ``pip install 'scannlite[ray]'``).

The pipeline: the driver's list of images (id, location, metadata) becomes a Ray dataset;
``map_batches`` runs an actor per worker that loads the TFLite embedder once and embeds batches
with :func:`scannlite.plugin.device.image_files.embed_image_files` (the function a local
device worker runs, so both engines give the same vectors bit for bit); the driver writes the
shards as the batches stream back. Without ``address`` Ray starts locally with this machine's cores; with it,
the same code runs on an existing cluster (whose workers need scannlite installed, and must
reach the image locations: shared storage or URIs).

**The process boundary, on Ray.** An actor loads tflite-support, so its process is a device
process: protobuf's pure-Python implementation must be selected before its first import and
TensorFlow must never load there. Ray starts the actor's process, so the setting travels in the
actor's *runtime environment* (an environment variable Ray sets before the process starts,
only for these actors: Ray's own tasks keep the fast protobuf), and the actor's first act is
:func:`scannlite.store.workers.worker.enter`, the same call a local device worker makes, which also
refuses a process where either is already loaded.

**CPU settings on small machines.** Actors that hold every CPU slot starve whatever other
Ray Data tasks need one (reading files, writing shards). Measured on this project's 2-core
machines: ``read_binary_files`` -> 2 actors of 1 CPU each -> ``write_parquet`` on a 2-CPU local
Ray wrote nothing in 4 minutes (512 images; killed). This pipeline is built so that it cannot
stall that way: the driver lists the images, the actors read them themselves (inside the
device function), and the driver writes the shards as batches stream back, so no Ray task
but the actors needs a CPU slot. Each actor asks for a whole CPU (``ACTOR_CPUS``), and a
local Ray gets the machine's cores (more if more workers are asked for, so that every actor
can start). Throughput and start-up: ``python -m bench.ray_embed`` (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from scannlite.plugin.ingest.embed_job import check_engine, write_shard
from scannlite.store.errors import InvalidInput, ScannliteError, one_line
from scannlite.store.workers.worker import start_env

ACTOR_CPUS = 1.0


class RayFailed(ScannliteError):
    """The Ray pipeline failed; the message is the first line of the cause."""


def _one_line(exc: BaseException) -> str:
    """The last line of the actor's exception (a RayTaskError wraps it as ``cause``)."""
    return one_line(getattr(exc, "cause", None) or exc, last=True)


class _EmbedActor:
    """One per Ray worker: a device process holding one loaded embedder."""

    def __init__(self, model: bytes, dim: int, max_pixels: int):
        from scannlite.store.workers.worker import enter

        enter("device")  # before anything imports tflite-support in this process
        self.model, self.dim, self.max_pixels = model, dim, max_pixels

    def __call__(self, batch):
        import pyarrow as pa

        from scannlite.plugin.device.image_files import embed_image_files

        locations = batch.column("location").to_pylist()
        got = embed_image_files(self.model, locations, self.max_pixels)
        n = len(locations)
        vectors = np.zeros((n, self.dim), np.float32)
        reasons, hashes = [None] * n, [None] * n
        for row, i in enumerate(got["kept"]):
            vectors[i], hashes[i] = got["vectors"][row], got["hashes"][row]
        for i, why in got["skipped"]:
            reasons[i] = why
        # Skipped rows carry a null embedding and their reason; the driver separates them.
        embedding = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.reshape(-1)), self.dim, mask=pa.array([r is not None for r in reasons])
        )
        return pa.table(
            {
                "id": batch.column("id").cast(pa.string()),
                "embedding": embedding,
                "metadata": batch.column("metadata").cast(pa.string()),
                "source_hash": pa.array(hashes, pa.string()),
                "skipped": pa.array(reasons, pa.string()),
            }
        )


def embed_images(
    items: list[dict],
    model: Path,
    dim: int,
    staging: Path,
    *,
    workers: int,
    address: str | None,
    batch: int,
    max_pixels: int,
) -> list[tuple[str, str]]:
    """Write ``staging/*.parquet`` (id, embedding, metadata, source_hash) for ``items``
    (dicts with id, location, metadata); return the skipped images as (id, reason)."""
    with ray_session(address, workers):
        return _embed_on_ray(items, model, dim, staging, workers=workers, batch=batch, max_pixels=max_pixels)


def _embed_on_ray(items, model, dim, staging, *, workers, batch, max_pixels) -> list[tuple[str, str]]:
    import ray
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-stage log lines, not errors
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # shards hold the images in input order
        ctx.enable_progress_bars = False  # the CLI draws its own
        listed = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // batch)))
        ds = listed.map_batches(
            _EmbedActor,
            fn_constructor_args=(Path(model).read_bytes(), dim, max_pixels),
            batch_size=batch,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=ACTOR_CPUS,
            runtime_env={"env_vars": start_env("device")},
        )
        # The driver writes the shards as the batches stream back: they land on this machine
        # (a cluster's workers would write to their own disks), and no write task competes
        # with the actors for CPU slots.
        skipped, number = [], 0
        table: Any  # a pyarrow Table (batch_format="pyarrow"); Ray types batches as any format's
        for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            reasons = table.column("skipped").to_pylist()
            skipped += [(ident, why) for ident, why in zip(table.column("id").to_pylist(), reasons) if why is not None]
            kept = table.filter(pa.compute.is_null(table.column("skipped"))).drop_columns(["skipped"])
            if kept.num_rows:
                write_shard(staging, number, kept)
                number += 1
    except ray.exceptions.RayError as exc:
        raise RayFailed(f"the Ray embedding pipeline failed: {_one_line(exc)}") from None
    return skipped


@contextmanager
def ray_session(address: str | None, workers: int):
    """Ray, started for this call (locally with the machine's cores, at least ``workers``, or
    joined at ``address``) and shut down after it; a session the caller started is reused."""
    # A driver started under `uv run` (as `make test` runs everything) makes Ray start every
    # worker through that same uv command; under `uv run --frozen --no-sync` they fail to start
    # ("worker startup repeatedly failed"). The workers need no more than this interpreter and
    # its packages, which is Ray's default; a user's own setting is left alone.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError:
        raise InvalidInput(
            "--engine ray needs Ray: install scannlite with the ray extra (pip install 'scannlite[ray]')"
        ) from None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=max(workers, os.cpu_count() or 1), **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayFailed(f"cannot start Ray{f' at {address}' if address else ''}: {_one_line(exc)}") from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _place_task(model, read, catalog_dir, dim):
    from scannlite.store.index.training import place_read

    return place_read(model, read, catalog_dir, dim, threads=1)  # one CPU slot per task


class RayPlacer:
    """``build(..., placer=RayPlacer(...))``: a retrain's placement (assign and encode every
    vector) as Ray tasks, one per segment row group, each on one CPU. The driver trains the
    model, hands the tasks the model once (Ray's object store) and each task only the
    address of its rows; a task reads them from the catalog directory itself, so on a cluster
    that directory must be on storage every node mounts at the same path. Results come back in
    order and the driver alone writes the catalog. Placement is the same arithmetic as on one
    machine, so the snapshot is the same bit for bit."""

    def __init__(self, *, address: str | None = None, workers: int | None = None):
        self.address, self.workers = address, workers or os.cpu_count() or 1

    def __call__(self, model, reads, catalog_dir, dim):
        from collections import deque

        with ray_session(self.address, self.workers) as ray:
            task = ray.remote(num_cpus=ACTOR_CPUS)(_place_task)
            model_ref = ray.put(model)
            pending = deque()
            try:
                # A bounded number in flight: results (leaves and codes) wait on the driver only
                # until their turn comes, so its memory does not grow with the catalog.
                for read in reads:
                    pending.append((read, task.remote(model_ref, read, str(catalog_dir), dim)))
                    if len(pending) >= 2 * self.workers:
                        read_done, ref = pending.popleft()
                        yield read_done, ray.get(ref)
                while pending:
                    read_done, ref = pending.popleft()
                    yield read_done, ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise RayFailed(f"placing vectors on Ray failed: {_one_line(exc)}") from None


def placer_for(engine: str, address: str | None = None, workers: int | None = None) -> RayPlacer | None:
    """``build --engine``: None places on this machine's cores (the default), ``ray`` on Ray."""
    check_engine(engine, address)
    return RayPlacer(address=address, workers=workers) if engine == "ray" else None
