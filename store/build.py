"""``build``: publish a new snapshot, incrementally unless the partitions' health says otherwise.

Incremental: new and changed vectors are assigned to the existing leaves and encoded with the
existing codebooks; deleted rows drop out of the snapshot; nothing else is recomputed.
A retrain (``--full``, or a health check in :mod:`scannlite.store.health` failing) trains
a new partition model with ScaNN on a seeded sample of the live vectors, then places every
live vector (leaf and codes) as it streams from the segments, one row group at a time, on
this machine's cores or a ``placer`` elsewhere (Ray). Memory: the sample, one row group, and
the snapshot's codes; never the catalog's float vectors (tests/test_build_memory.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .catalog import Catalog, utcnow
from .device_search import DeviceIndex
from .health import assess
from .index_config import IndexConfig
from .partition_model import PartitionModel
from .progress import SILENT, Progress
from .segments import RowGroupRead
from .recall_estimate import RecallEstimate, Snapshot, estimate as estimate_recall
from .training import Trained, collect, imbalance, place_here, train_model, training_rows


@dataclass
class BuildResult:
    version: int
    published: bool
    retrained: bool
    reasons: list[str]
    count: int
    encoded: int  # vectors assigned and encoded by this build
    num_leaves: int
    leaves_to_search: int | None
    seconds: float
    health: dict = field(default_factory=dict)
    recipe: str | None = None
    recall: RecallEstimate | None = None
    leaves_note: str | None = None  # why leaves_to_search is what it is, when it is not plain
    lookup_type: str = "FLOAT"

    def lines(self) -> list[str]:
        if not self.published:
            return [f"snapshot {self.version} is up to date ({self.count} items); nothing to build"]
        what = "retrained the partitions" if self.retrained else "incremental build"
        out = [f"snapshot {self.version}: {self.count} items, {self.num_leaves} leaves"
               + (f", {self.leaves_to_search} searched" if self.leaves_to_search else "")
               + f" ({what}, {self.encoded} vectors encoded, {self.seconds:.1f} s)"]
        if self.recall is not None and self.leaves_to_search:
            r = self.recall
            how = (f"reused from snapshot {r.reused_from}, little changed since" if r.reused_from is not None
                   else f"estimated on {r.sample} of its vectors in {r.seconds:.1f} s")
            out.append(f"  recall@{r.k} {r.at(self.leaves_to_search):.3f} at {self.leaves_to_search} of "
                       f"{self.num_leaves} leaves ({how})")
            if self.lookup_type != "FLOAT":
                # The estimate ranks codes as FLOAT tables do; fixed-point tables round every
                # entry, which loses a little more (docs/benchmarks.md: INT8 against FLOAT).
                out.append(f"  (estimated with FLOAT lookup tables; this snapshot's {self.lookup_type} tables "
                           "give somewhat less)")
        if self.leaves_note:
            out.append(f"  {self.leaves_note}")
        if self.retrained:
            out += [f"  why: {r}" for r in self.reasons]
            if self.recipe:
                out.append(f"  recipe: {self.recipe}")
        elif self.count:
            h = self.health
            out.append(f"  why not retrain: {h.get('untrained', 0)} of {h.get('live', 0)} vectors added since "
                       f"training, imbalance {h.get('imbalance', 1.0):.2f}; every health check passed")
        return out


def items_digest(items: np.ndarray) -> str:
    return hashlib.sha256(np.sort(np.asarray(items, dtype="<i8")).tobytes()).hexdigest()


def load_model(cat: Catalog, model_id: int) -> tuple[PartitionModel, dict]:
    kind, dim, leaves, dpb, cents, books, training = cat.conn.execute(
        "SELECT kind, dim, num_leaves, dims_per_block, centroids, codebooks, training FROM models WHERE model_id = ?",
        (model_id,)).fetchone()
    try:
        return PartitionModel.from_blobs(kind, dim, leaves, dpb, cents, books), json.loads(training)
    except (TypeError, ValueError):  # a damaged catalog.db: one line, not a traceback
        from scannlite.store.errors import CatalogCorrupt

        raise CatalogCorrupt(f"partition model {model_id} in catalog.db is damaged; run `scannlite check`") from None


#: (model, segment row-group reads, catalog directory, dim) -> (read, (leaves, codes, sums)) in order.
Placer = Callable[[PartitionModel, Iterable[RowGroupRead], Path, int], Iterable[tuple[RowGroupRead, tuple]]]


@dataclass
class BuildPlan:
    """What a build starts from: the settings, the newest snapshot, and the live items."""

    config: IndexConfig
    config_changed: bool
    head: int
    last: tuple | None  # (version, seq, model_id, count, leaves_to_search, lookup_type)
    live: np.ndarray
    full: bool

    @property
    def up_to_date(self) -> bool:
        return (self.last is not None and not self.full and not self.config_changed
                and self.last[1] == self.head)


@dataclass
class BuildWork:
    """What a build computed, ready to be committed in one transaction."""

    retrain: bool
    reasons: list[str]
    health: dict
    model: PartitionModel | None
    model_id: int | None
    trained: object | None  # training.Trained when the partitions were retrained
    rows: "list[tuple] | PlacedRows"  # (model_id, item, leaf, code, trained) for the codes table
    recall: RecallEstimate | None = None


def plan_build(cat: Catalog, *, full: bool = False, changes: dict | None = None) -> BuildPlan:
    config = cat.index_config.replace(**changes) if changes else cat.index_config
    if changes and changes.get("recall_target") is not None and changes.get("leaves_to_search") is None:
        config = dataclasses.replace(config, leaves_to_search=None)  # a new target replaces a fixed number
    last = cat.conn.execute("SELECT version, seq, model_id, count, leaves_to_search, lookup_type "
                            "FROM snapshots ORDER BY version DESC LIMIT 1").fetchone()
    live = np.fromiter((r[0] for r in cat.conn.execute(
        "SELECT item FROM items WHERE removed_seq IS NULL ORDER BY item")), dtype=np.int64)
    return BuildPlan(config, config != cat.index_config, cat.head_seq, last, live, full)


def _incremental(cat: Catalog, plan: BuildPlan, model_id: int, progress: Progress) -> BuildWork:
    """Assign and encode what is new with the existing model, then ask the health policy."""
    live = plan.live
    model, baseline = load_model(cat, model_id)
    # SQLite counts and finds what changed: at millions of items, carrying every coded row
    # into Python would cost more than the build itself.
    coded_sizes = np.zeros(model.num_leaves, np.int64)
    trained_live = 0
    for leaf, count, trained in cat.conn.execute(
            "SELECT c.leaf, COUNT(*), SUM(c.trained > 0) FROM codes c JOIN items i ON i.item = c.item "
            "WHERE c.model_id = ? AND i.removed_seq IS NULL GROUP BY c.leaf", (model_id,)):
        coded_sizes[leaf] = count
        trained_live += trained
    # Every item live at the last snapshot was coded by its model, so what is new is what was
    # added since; the count check guards that reasoning, and the exact query stands behind it.
    new_items = np.fromiter((r[0] for r in cat.conn.execute(
        "SELECT item FROM items WHERE removed_seq IS NULL AND added_seq > ? ORDER BY item", (plan.last[1],))),
        dtype=np.int64)
    if int(coded_sizes.sum()) + len(new_items) != len(live):
        new_items = np.fromiter((r[0] for r in cat.conn.execute(
            "SELECT item FROM items i WHERE removed_seq IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM codes c WHERE c.model_id = ? AND c.item = i.item) ORDER BY item", (model_id,))),
            dtype=np.int64)
    with progress.task(f"encoding {len(new_items)} new vectors", total=max(len(new_items), 1)) as advance:
        vectors = cat.vectors_for(new_items)
        new_leaves = model.assign(vectors) if len(new_items) else np.zeros(0, np.int32)
        new_codes = model.encode(vectors) if len(new_items) else None
        advance(max(len(new_items), 1))
    sizes = coded_sizes + np.bincount(new_leaves.astype(np.int64), minlength=model.num_leaves)
    h = assess(model_kind=model.kind, model_leaves=model.num_leaves, model_dims_per_block=model.dims_per_block,
               baseline=baseline, config=plan.config, live=len(live), untrained=len(live) - trained_live,
               imbalance=imbalance(sizes),
               new_residual=model.residual(vectors, new_leaves) if len(new_items) else None,
               new_quantization_error=(model.quantization_error(vectors, new_codes)
                                       if len(new_items) and new_codes is not None else None))
    rows = [(model_id, item, int(new_leaves[j]), new_codes[j].tobytes() if new_codes is not None else None, 0)
            for j, item in enumerate(new_items.tolist())]
    return BuildWork(h.retrain, h.reasons if h.retrain else [], h.as_dict(), model, model_id, None,
                     [] if h.retrain else rows)


def _retrain(cat: Catalog, plan: BuildPlan, reasons: list[str], health: dict, progress: Progress,
             placer: Placer | None = None) -> BuildWork:
    """Train on the seeded sample, then place every live vector as it streams from the
    segments: no step holds more than the sample and one chunk of the catalog as floats."""
    live, started = plan.live, time.perf_counter()
    rows = training_rows(len(live), plan.config.training_sample_size)
    with progress.task(f"reading the {len(rows)} training vectors", total=len(rows)) as advance:
        sample = cat.vectors_for(live[rows])
        advance(len(rows))
    with progress.task(f"training ScaNN partitions on {len(rows)} vectors"):
        model, stats = train_model(sample, len(live), cat.distance, plan.config)
    del sample
    with progress.task(f"placing {len(live)} vectors", total=len(live)) as advance:
        placed = ((np.searchsorted(live, read.items), *result)
                  for read, result in (placer or place_here)(model, cat.vector_reads(live), cat.path, cat.dim))
        leaves, codes, baseline = collect(model, len(live), placed, on_chunk=advance)
    trained = Trained(model, leaves, codes, {**baseline, **stats, "seconds": time.perf_counter() - started})
    sampled = np.zeros(len(live), bool)
    sampled[rows] = True
    return BuildWork(True, reasons, health, model, None, trained, PlacedRows(live, leaves, codes, sampled))


@dataclass
class PlacedRows:
    """A retrain's rows for the codes table, made one at a time as SQLite takes them: a
    million (model, item, leaf, code, trained) tuples held at once cost about 0.5 GB.
    ``trained`` is 2 for the items ScaNN trained on, 1 for the others (0: coded later)."""

    items: np.ndarray
    leaves: np.ndarray
    codes: np.ndarray | None
    sampled: np.ndarray  # per item: in the training sample
    model_id: int | None = None  # known once the model row is written

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        codes = self.codes
        for j, item in enumerate(self.items.tolist()):
            yield (self.model_id, item, int(self.leaves[j]), codes[j].tobytes() if codes is not None else None,
                   2 if self.sampled[j] else 1)


def compute_build(cat: Catalog, plan: BuildPlan, progress: Progress = SILENT, placer: Placer | None = None) -> BuildWork:
    """Incremental unless there is no model yet, ``--full`` was given, or the health policy
    asks for retraining (then the incremental work is thrown away and every vector retrained)."""
    model_id = plan.last[2] if plan.last is not None else None
    if len(plan.live) == 0:
        return BuildWork(False, [], {}, None, None, None, [])
    if model_id is None or plan.full:
        work = _retrain(cat, plan, ["--full was given" if plan.full else "no partition model yet"], {}, progress,
                        placer)
    else:
        work = _incremental(cat, plan, model_id, progress)
        if work.retrain:
            work = _retrain(cat, plan, work.reasons, work.health, progress, placer)
    work.recall = _recall(cat, plan, work, progress)
    return work


#: An incremental build reuses the previous estimate while the items added and removed since
#: it was made stay under this share of the catalog: a few percent more vectors in the same
#: leaves move recall by well under the estimate's own standard error (about 0.01).
REUSE_ESTIMATE_BELOW = 0.05


def _recall(cat: Catalog, plan: BuildPlan, work: BuildWork, progress: Progress) -> RecallEstimate | None:
    """The new snapshot's recall estimate, or the previous one when little changed."""
    model, live = work.model, plan.live
    if model is None or plan.config.recall_sample == 0:
        return None
    if work.trained is None and plan.last is not None:
        previous = json.loads(cat.conn.execute("SELECT build FROM snapshots WHERE version = ?",
                                               (plan.last[0],)).fetchone()[0]).get("recall")
        deleted = plan.last[3] + len(work.rows) - len(live)
        drift = (previous or {}).get("drift", 0) + len(work.rows) + max(deleted, 0)
        if previous and previous.get("sample") == min(plan.config.recall_sample, len(live)) \
                and drift <= REUSE_ESTIMATE_BELOW * len(live):
            kept = RecallEstimate.from_json(previous)
            kept.reused_from = kept.reused_from or plan.last[0]
            kept.drift = drift
            return kept
    if work.trained is not None:
        items, leaves, codes = live, work.trained.leaves, work.trained.codes
        unseen_items = live[~work.rows.sampled]
    else:
        unseen_items = unseen_at_training(cat, work.model_id)
        items, leaves, codes = coded_rows(cat, work.model_id, with_codes=model.kind == "ah")
        new = work.rows
        if new:
            items = np.concatenate([items, np.asarray([r[1] for r in new], dtype=np.int64)])
            leaves = np.concatenate([leaves, np.asarray([r[2] for r in new], dtype=leaves.dtype)])
            if codes is not None:
                codes = np.concatenate([codes, np.frombuffer(b"".join(r[3] for r in new), np.uint8)
                                        .reshape(len(new), -1)])
    # Queries the partitions were trained on sit closer to their centroids than a user's query
    # does: on real sentence embeddings they overestimated recall by 0.02-0.03 at few leaves,
    # where queries drawn from the rest matched held-out queries (docs/benchmarks.md). The rest
    # means the items live at training but left out of its sample, a uniform draw like the
    # sample itself: items added since may differ from the catalog the build is judged on.
    with progress.task(f"estimating recall on {min(plan.config.recall_sample, len(live))} of the vectors"):
        return estimate_recall(catalog_snapshot(cat, model, items, leaves, codes, unseen_items),
                               sample=plan.config.recall_sample)


def unseen_at_training(cat: Catalog, model_id: int) -> np.ndarray | None:
    """Items live when the model was trained but left out of its training sample (``trained =
    1``; the sample is 2). None for a model whose codes do not say (written before the sample
    was marked, or a float index, which trains nothing)."""
    if cat.conn.execute("SELECT 1 FROM codes WHERE model_id = ? AND trained = 2 LIMIT 1", (model_id,)).fetchone() is None:
        return None
    return np.fromiter((r[0] for r in cat.conn.execute(
        "SELECT item FROM codes WHERE model_id = ? AND trained = 1 ORDER BY item", (model_id,))), np.int64)


def catalog_snapshot(cat: Catalog, model: PartitionModel, items: np.ndarray, leaves: np.ndarray,
                     codes: np.ndarray | None, unseen_items: np.ndarray | None = None) -> Snapshot:
    """A snapshot's rows (``items``, their leaves and codes, in any order) as the recall
    estimate reads them: in device order, vectors streamed from the segments, no float copy
    of the catalog held. ``unseen_items``: items the partitions were not trained on."""
    order = np.lexsort((items, leaves))  # device row -> position in the arrays
    row_of = np.empty(len(items), np.int64)
    row_of[order] = np.arange(len(items))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(leaves, minlength=model.num_leaves))]).astype(np.int64)
    index = DeviceIndex(cat.distance, model.centroids, offsets, None, None, None)

    def vectors(rows):
        return cat.vectors_for(items[order[rows]])

    if codes is not None:
        def decoded(rows):
            return model.decode(codes[order[rows]])
    else:  # a float index is small (FLOAT_INDEX_BELOW): the device compares the vectors themselves
        every = vectors(np.arange(len(items)))

        def decoded(rows):
            return every[rows]

    def chunks():
        for positions, chunk_vectors in cat.iter_vectors(items):
            yield row_of[positions], chunk_vectors

    unseen = None if unseen_items is None else np.flatnonzero(np.isin(items[order], unseen_items))
    return Snapshot(index, vectors, decoded, chunks, unseen)


def coded_rows(cat: Catalog, model_id: int, *, with_codes: bool, batch: int = 65_536):
    """(items, leaves, codes or None) of the live items a model coded, read in batches
    straight into arrays: a million Python row tuples would cost about as much as the vectors."""
    cur = cat.conn.execute(
        "SELECT c.item, c.leaf" + (", c.code" if with_codes else "") + " FROM codes c JOIN items i ON i.item = c.item "
        "WHERE c.model_id = ? AND i.removed_seq IS NULL ORDER BY c.item", (model_id,))
    items, leaves, codes = [], [], []
    while rows := cur.fetchmany(batch):
        items.append(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
        leaves.append(np.fromiter((r[1] for r in rows), np.int32, len(rows)))
        if with_codes:
            codes.append(np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(len(rows), -1))
    def joined(parts, empty):
        return np.concatenate(parts) if parts else empty

    return (joined(items, np.zeros(0, np.int64)), joined(leaves, np.zeros(0, np.int32)),
            joined(codes, np.zeros((0, 0), np.uint8)) if with_codes else None)


def choose_leaves(config: IndexConfig, num_leaves: int, recall: RecallEstimate | None) -> tuple[int, str | None]:
    """leaves_to_search for a new snapshot, and a note when the choice needs one.

    An explicit ``leaves_to_search`` wins; else the smallest ladder value whose estimated
    recall reaches ``recall_target``, at most ``max_leaves_to_search``; else the fixed rule."""
    if config.leaves_to_search is not None or recall is None or config.recall_target is None:
        return config.search_leaves(num_leaves), None
    cap = min(config.max_leaves_to_search, num_leaves)
    chosen = recall.smallest_meeting(config.recall_target)
    if chosen is not None and chosen <= cap:
        return chosen, None
    allowed = max([l for l in recall.ladder if l <= cap] or [1])
    return allowed, (f"target recall {config.recall_target:.2f} not reached within max_leaves_to_search {cap}: "
                     f"{recall.at(allowed):.3f} at {allowed} leaves"
                     + (f" (it takes {chosen})" if chosen is not None else ""))


def commit_build(cat: Catalog, plan: BuildPlan, work: BuildWork, started: float,
                 progress: Progress = SILENT) -> BuildResult:
    """One transaction: settings, the commit, a new model if any, the new codes, the snapshot."""
    config, live, model, model_id, rows = plan.config, plan.live, work.model, work.model_id, work.rows
    recipe = work.trained.stats.get("recipe") if work.trained is not None else None
    from scannlite.store.oserrors import codes_floor, require_free

    require_free(cat.path, codes_floor(rows), f"the build's {len(rows)} codes")
    with cat.transaction():
        if plan.config_changed:
            cat.set_setting("index", config.to_json())
            cat.index_config = config
        seq = cat.new_commit("build", {"retrained": work.retrain, "reasons": work.reasons, "encoded": len(rows)})
        if work.trained is not None:
            cur = cat.conn.execute(
                "INSERT INTO models(created_seq, kind, dim, num_leaves, dims_per_block, centroids, codebooks, "
                "trained_items, training) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, model.kind, cat.dim, model.num_leaves, model.dims_per_block, model.centroid_blob(),
                 model.codebook_blob(), len(live), json.dumps(work.trained.stats, sort_keys=True)))
            model_id = cur.lastrowid
            rows = dataclasses.replace(rows, model_id=model_id)
        with progress.task(f"writing {len(rows)} codes", total=max(len(rows), 1)) as advance:
            cat.conn.executemany("INSERT INTO codes(model_id, item, leaf, code, trained) VALUES (?, ?, ?, ?, ?)", rows)
            advance(max(len(rows), 1))
        leaves_to_search, note = choose_leaves(config, model.num_leaves, work.recall) if model is not None \
            else (None, None)
        version = (plan.last[0] + 1) if plan.last is not None else 1
        build_info = {"retrained": work.retrain, "reasons": work.reasons, "encoded": len(rows),
                      "health": work.health, "recipe": recipe, "seconds": round(time.perf_counter() - started, 3),
                      "recall": work.recall.to_json() if work.recall is not None else None, "leaves_note": note,
                      "recall_target": config.recall_target if config.leaves_to_search is None else None}
        cat.conn.execute(
            "INSERT INTO snapshots(version, seq, model_id, count, items_digest, leaves_to_search, lookup_type, "
            "created_at, build) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (version, seq, model_id, len(live), items_digest(live), leaves_to_search,
             config.lookup_type if model is not None else None, utcnow(), json.dumps(build_info, sort_keys=True)))
    return BuildResult(version, True, work.retrain, work.reasons, len(live), len(rows),
                       model.num_leaves if model is not None else 0, leaves_to_search,
                       time.perf_counter() - started, work.health, recipe, work.recall, note, config.lookup_type)


def build(cat: Catalog, *, full: bool = False, changes: dict | None = None, progress: Progress = SILENT,
          placer: Placer | None = None) -> BuildResult:
    """Publish a new snapshot: plan, compute, commit (see the module docstring).

    ``placer``: who places every vector when the partitions are retrained (default:
    :func:`training.place_here`, this machine's cores). It is handed the model and the segment
    row-group reads and returns, in their order, ``(read, (leaves, codes, health sums))`` as
    :func:`training.place_read` computes them, wherever it runs them
    (``scannlite.plugin.ray_engine.RayPlacer``); the commit stays here, the one writer."""
    started = time.perf_counter()
    with cat.writing():
        plan = plan_build(cat, full=full, changes=changes)
        if plan.up_to_date:
            version, _, model_id, count, leaves_to_search, _ = plan.last
            model = cat.model_summary(model_id)
            return BuildResult(version, False, False, [], count, 0, model["num_leaves"] if model else 0,
                               leaves_to_search, time.perf_counter() - started)
        if plan.full or plan.last is None or plan.last[2] is None:  # a retrain: refused before training
            from scannlite.store.oserrors import require_free

            require_free(cat.path, len(plan.live) * (cat.dim // plan.config.dims_per_block + 4),
                         f"the build's {len(plan.live)} codes")
        work = compute_build(cat, plan, progress, placer)
        return commit_build(cat, plan, work, started, progress)


__all__ = ["build", "BuildResult", "IndexConfig"]
