"""Training a partition model with ScaNN 1.4.2, restricted to what a phone can search.

The recipe was chosen by measurement (docs/device-recall.md), not copied from
Model Maker: on held-out clustered unit vectors at COCO size, ScaNN's tree defaults (random
init, 12 iterations, GENERIC) reached device recall@10 0.617 at 4 of 351 leaves, spherical
k-means with k-means++ init and 25 iterations 0.812 (INT8 lookup) and 0.857 (FLOAT lookup).
Residual quantization (ScaNN's default for tree + dot product), reordering, SOAR and
projections are all off: the device index cannot represent them.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scannlite.store.catalog.segments import RowGroupRead
from scannlite.store.index.config import FLOAT_INDEX_BELOW, IndexConfig
from scannlite.store.index.partition_model import PartitionModel, subspace_widths
from scannlite.store.oserrors import native_io_error, writes
from scannlite.store.vocabulary import Distance

#: Rows placed (assigned and encoded) per chunk: 8,192 x 128-d is 8 MiB of float64 per step.
PLACE_CHUNK = 8192
#: Seed of the training sample, fixed so the same catalog trains the same model.
TRAINING_SEED = 20240808


def import_scann():
    """ScaNN's pybind API, without letting ``import scann`` pull in TensorFlow.

    scann 1.4.2's ``__init__`` tries ``import tensorflow`` to register its TF ops. The store
    process never holds TensorFlow, so the name is blocked for the duration of the import and
    released afterwards (a caller that already imported TensorFlow keeps it).
    """
    if "scann" not in sys.modules:
        block = "tensorflow" not in sys.modules
        if block:
            sys.modules["tensorflow"] = None  # type: ignore[assignment]
        try:
            import scann  # noqa: F401
        finally:
            if block and sys.modules.get("tensorflow", False) is None:
                del sys.modules["tensorflow"]
    from scann.scann_ops.py import scann_ops_pybind

    return scann_ops_pybind


@contextmanager
def quiet_native_stderr():
    """ScaNN's C++ code logs training chatter straight to file descriptor 2; keep it off the
    user's terminal, and replay it only if training fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace")[-4000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@dataclass
class Trained:
    model: PartitionModel
    leaves: np.ndarray  # (n,) int32
    codes: np.ndarray | None  # (n, subspaces) uint8
    stats: dict


def baseline_sums(
    model: PartitionModel, vectors: np.ndarray, leaves: np.ndarray, codes, chunk: int = PLACE_CHUNK
) -> np.ndarray:
    """(squared residual, squared quantization error, squared norm) summed over ``vectors``,
    chunk by chunk so that no decoded float64 copy of many vectors is ever made."""
    sums = np.zeros(3)
    for lo in range(0, len(vectors), chunk):
        x = vectors[lo : lo + chunk].astype(np.float64)
        d = x - model.centroids[leaves[lo : lo + chunk]]
        sums[0] += float((d * d).sum())
        if codes is not None:
            q = x - model.decode(codes[lo : lo + chunk])
            sums[1] += float((q * q).sum())
            sums[2] += float((x * x).sum())
    return sums


def baseline_from(model: PartitionModel, leaves: np.ndarray, sums: np.ndarray) -> dict:
    """The health baseline: leaf balance, mean residual and relative quantization error."""
    n = len(leaves)
    return {
        "imbalance": imbalance(np.bincount(leaves, minlength=model.num_leaves)),
        "residual": float(sums[0]) / n if n else 0.0,
        "quantization_error": float(sums[1]) / max(float(sums[2]), 1e-30) if model.codebooks is not None and n else 0.0,
    }


def imbalance(sizes: np.ndarray) -> float:
    """Expected points scanned per searched leaf over the mean leaf size (1.0 = balanced),
    assuming queries land where the data is: L * sum(n_i^2) / N^2."""
    n = sizes.sum()
    if n == 0 or len(sizes) <= 1:
        return 1.0
    return float(len(sizes) * (sizes.astype(np.float64) ** 2).sum() / float(n) ** 2)


def training_rows(n: int, sample_size: int) -> np.ndarray:
    """Which of ``n`` vectors ScaNN trains on: all of them, or a seeded uniform sample (sorted),
    so the same catalog always trains the same model."""
    if n <= sample_size:
        return np.arange(n)
    return np.sort(np.random.default_rng(TRAINING_SEED).choice(n, size=sample_size, replace=False))


def place(
    model: PartitionModel, vectors: np.ndarray, *, chunk: int = PLACE_CHUNK, threads: int | None = None, on_chunk=None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Leaf and codes of every vector, chunk by chunk on ``threads`` threads (default: the
    cores). numpy releases the GIL in its matrix products and searches, and each row's answer
    depends on that row alone, so the result equals one thread's, chunk size aside."""
    n = len(vectors)
    leaves = np.empty(n, dtype=np.int32)
    codes = np.empty((n, model.num_subspaces), dtype=np.uint8) if model.codebooks is not None else None

    def one(lo: int) -> int:
        part = vectors[lo : lo + chunk]
        leaves[lo : lo + chunk] = model.assign(part)
        if codes is not None:
            codes[lo : lo + chunk] = model.encode(part)
        return len(part)

    starts = range(0, n, chunk)
    workers = max(1, min(threads or os.cpu_count() or 1, len(starts)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(one, starts):
            if on_chunk:
                on_chunk(done)
    return leaves, codes


def train_model(
    sample: np.ndarray, n: int, distance: Distance, config: IndexConfig, queries: np.ndarray | None = None
) -> tuple[PartitionModel, dict]:
    """A partition model trained by ScaNN on ``sample`` (the ``training_sample_size`` rows
    :func:`training_rows` picks from the catalog's ``n`` vectors), and the recipe it followed.
    ``queries``: rows of the query sample the tree alone trains on as well
    (:func:`scannlite.store.index.query_training.for_training`; docs/queries.md).

    ScaNN only ever sees the sample: handed the whole catalog, its builder also hashes and
    holds every vector (and copies of them) at once (docs/design-figures.md, "Training memory"). Placing the rest afterwards (:func:`placed`) is what every
    incremental build already does, so full and incremental builds place vectors by the same rule.
    """
    started = time.perf_counter()
    dim = sample.shape[1]
    if n < FLOAT_INDEX_BELOW:
        model = PartitionModel("float", sample.mean(axis=0, keepdims=True).astype(np.float32), None, None)
        return model, {
            "recipe": f"raw float vectors in one leaf (fewer than {FLOAT_INDEX_BELOW} vectors: "
            "too few to train 256 hashing centres)",
            "requested_leaves": 1,
            "training_seconds": time.perf_counter() - started,
        }
    pybind = import_scann()
    num_leaves = config.leaves_for(n)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    distance = Distance(distance)
    # Tree and codes are trained by two separate ScaNN builds: the codes are not residuals, so
    # they do not depend on the tree, and ScaNN's combined tree + hashing build holds per-leaf
    # state many times what each build alone holds (docs/design-figures.md, "Training memory").
    spherical = config.spherical_for(distance)
    extra = 0 if queries is None or num_leaves <= 1 else len(queries)
    if num_leaves > 1:
        points = np.concatenate([sample, queries.astype(np.float32)]) if queries is not None and extra else sample
        tree = (
            pybind.builder(points, 10, distance.scann)
            .tree(
                num_leaves=num_leaves,
                num_leaves_to_search=config.search_leaves(num_leaves),
                training_sample_size=len(points),
                spherical=spherical,
                random_init=False,
                training_iterations=config.training_iterations,
            )
            .score_brute_force()
        )
        with built_assets(tree) as folder:
            centroids = read_centroids(folder)
    else:
        centroids = sample.mean(axis=0, keepdims=True).astype(np.float32)
    threshold = config.anisotropic_threshold if distance == "dot" else float("nan")
    hashing = pybind.builder(sample, 10, distance.scann).score_ah(
        config.dims_per_block,
        anisotropic_quantization_threshold=threshold,
        training_sample_size=len(sample),
        hash_type="lut256",
        residual_quantization=False,
    )
    with built_assets(hashing) as folder:
        model = PartitionModel(
            "ah", centroids, read_codebooks(folder, dim, config.dims_per_block), config.dims_per_block
        )
    recipe = (
        f"ScaNN 1.4.2: {'spherical ' if spherical else ''}k-means tree, k-means++ init, "
        f"{config.training_iterations} iterations, {model.num_leaves} leaves"
        if num_leaves > 1
        else "ScaNN 1.4.2: one leaf (catalog too small for a useful tree)"
    )
    recipe += f"; asymmetric hashing lut256, {config.dims_per_block} dim(s) per block"
    if distance == "dot" and not math.isnan(threshold):
        recipe += f", anisotropic threshold {threshold:g}"
    recipe += f"; trained on {len(sample):,} of {n:,} vectors"
    if extra:
        recipe += f", the tree also on {extra:,} query-sample points ({config.train_on_queries:g} of its points)"
    return model, {
        "recipe": recipe,
        "sample": len(sample),
        **({"tree_queries": extra} if extra else {}),
        "requested_leaves": num_leaves,
        "training_seconds": time.perf_counter() - started,
    }


def placed(model: PartitionModel, vectors: np.ndarray, threads: int | None = None):
    """``(leaves, codes, health sums)`` of ``vectors``: what every placement engine returns."""
    leaves, codes = place(model, vectors, threads=threads)
    return leaves, codes, baseline_sums(model, vectors, leaves, codes)


def place_read(model: PartitionModel, read: RowGroupRead, catalog_dir: Path, dim: int, threads: int | None = None):
    """:func:`placed` for one segment row group: the unit an engine elsewhere (a Ray task) runs."""
    return placed(model, read.read(catalog_dir, dim), threads)


def place_here(model: PartitionModel, reads, catalog_dir: Path, dim: int) -> Iterator[tuple[RowGroupRead, tuple]]:
    """The default placer (see ``build``): the reads placed on this machine's cores, in order,
    the next row group read while this one is placed."""
    for read, vectors in prefetched((r, r.read(catalog_dir, dim)) for r in reads):
        yield read, placed(model, vectors)


def collect(model: PartitionModel, n: int, parts, *, on_chunk=None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Leaves and codes of ``n`` vectors from ``(positions, leaves, codes, sums)`` parts, in
    the order they come, and the health baseline over all of them."""
    leaves = np.empty(n, dtype=np.int32)
    codes = np.empty((n, model.num_subspaces), dtype=np.uint8) if model.codebooks is not None else None
    sums, done = np.zeros(3), 0
    for positions, part_leaves, part_codes, part_sums in parts:
        leaves[positions] = part_leaves
        if codes is not None:
            codes[positions] = part_codes
        sums += part_sums
        done += len(positions)
        if on_chunk:
            on_chunk(len(positions))
    if done != n:
        raise RuntimeError(f"internal error: {done} of {n} vectors placed")
    return leaves, codes, baseline_from(model, leaves, sums)


def prefetched(iterable):
    """``iterable``'s items, the next one read on a thread while the caller works on this one
    (Parquet decoding and numpy both release the GIL): two items held at most."""
    items = iter(iterable)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(next, items, StopIteration)
        while (item := ahead.result()) is not StopIteration:
            ahead = pool.submit(next, items, StopIteration)
            yield item


def train(vectors: np.ndarray, distance: Distance, config: IndexConfig, queries: np.ndarray | None = None) -> Trained:
    """:func:`train_model` on the seeded sample of an in-memory array (and ``queries``, for the tree), then every
    row placed."""
    started = time.perf_counter()
    n = len(vectors)
    model, stats = train_model(vectors[training_rows(n, config.training_sample_size)], n, distance, config, queries)
    leaves, codes, sums = placed(model, vectors)
    return Trained(
        model, leaves, codes, {**baseline_from(model, leaves, sums), **stats, "seconds": time.perf_counter() - started}
    )


@contextmanager
def built_assets(builder):
    """Build a ScaNN searcher (its C++ chatter kept off the terminal) and serialize it: yields
    the folder of its assets, removed afterwards."""
    with quiet_native_stderr():
        searcher = builder.build()
    with (
        writes(tempfile.gettempdir(), "making a folder for ScaNN's trained files in"),
        tempfile.TemporaryDirectory(prefix="scannlite-scann-") as tmp,
    ):
        try:
            searcher.serialize(tmp)
        except RuntimeError as exc:  # ScaNN says only "I/O error" when it cannot write (full /tmp, ...)
            raise native_io_error(exc, tmp, "writing ScaNN's trained files to") or exc from None
        del searcher
        yield Path(tmp)


def read_codebooks(folder: Path, dim: int, dims_per_block: int) -> list[np.ndarray]:
    """The asymmetric-hashing codebooks from ScaNN's serialized assets."""
    from scann.proto import centers_pb2

    book_proto = centers_pb2.CentersForAllSubspaces()
    book_proto.ParseFromString((Path(folder) / "ah_codebook.pb").read_bytes())
    books = []
    for sub in book_proto.subspace_centers:
        rows = [list(c.feature_value_float) or list(c.feature_value_double) for c in sub.center]
        books.append(np.asarray(rows, dtype=np.float32))
    widths = [b.shape[1] for b in books]
    if widths != subspace_widths(dim, dims_per_block) or any(b.shape[0] != 256 for b in books):
        raise RuntimeError(f"unexpected ScaNN codebook layout {[b.shape for b in books]}")
    return books


def read_centroids(folder: Path) -> np.ndarray:
    """The k-means tree's leaf centroids from ScaNN's serialized assets, in leaf order."""
    from scann.partitioning import partitioner_pb2

    part = partitioner_pb2.SerializedPartitioner()
    part.ParseFromString((Path(folder) / "serialized_partitioner.pb").read_bytes())
    root = part.kmeans.kmeans_tree.root
    if any(child.leaf_id != i for i, child in enumerate(root.children)):
        raise RuntimeError("ScaNN's tree leaves are not numbered in order")
    return np.asarray([list(c.dimension) or list(c.float_dimension) for c in root.centers], dtype=np.float32)
