"""``build``: publish a new snapshot, incrementally unless the partitions' health says otherwise.

Incremental: new and changed vectors are assigned to the existing leaves and encoded with the
existing codebooks; deleted rows drop out of the snapshot; nothing else is recomputed.
A retrain (``--full``, or a health check in :mod:`scannlite.store.index.health` failing) trains
a new partition model with ScaNN on a seeded sample of the live vectors, then places every
live vector (leaf and codes) as it streams from the segments, one row group at a time, on
this machine's cores or a ``placer`` elsewhere (Ray). Memory: the sample, one row group, and
the snapshot's codes; never the catalog's float vectors (tests/test_build_memory.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scannlite.store.catalog import index_rows, item_rows
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.segments import RowGroupRead
from scannlite.store.index import query_training
from scannlite.store.index.build_recall import choose_leaves, recall_for_build, target_estimate
from scannlite.store.index.build_result import BuildResult
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.health import assess
from scannlite.store.index.partition_model import PartitionModel
from scannlite.store.index.recall_estimate import RecallEstimate
from scannlite.store.index.stored import items_digest, load_model
from scannlite.store.index.training import Trained, collect, imbalance, place_here, train_model, training_rows
from scannlite.store.oserrors import codes_floor, require_free
from scannlite.store.progress import SILENT, Progress

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
        return self.last is not None and not self.full and not self.config_changed and self.last[1] == self.head


@dataclass
class BuildWork:
    """What a build computed, ready to be committed in one transaction."""

    retrain: bool
    reasons: list[str]
    health: dict
    model: PartitionModel | None
    model_id: int | None
    trained: Trained | None  # when the partitions were retrained
    rows: Any  # PlacedRows, or a list of (model_id, item, leaf, code, trained) for the codes table
    recall: RecallEstimate | None = None
    query_recall: RecallEstimate | None = None


def plan_build(cat: Catalog, *, full: bool = False, changes: dict | None = None) -> BuildPlan:
    config = cat.index_config.replace(**changes) if changes else cat.index_config
    if changes and changes.get("recall_target") is not None and changes.get("leaves_to_search") is None:
        config = dataclasses.replace(config, leaves_to_search=None)  # a new target replaces a fixed number
    last = index_rows.newest_snapshot_head(cat)
    live = np.fromiter(item_rows.live_items(cat), dtype=np.int64)
    return BuildPlan(config, config != cat.index_config, cat.head_seq, last, live, full)


def _incremental(cat: Catalog, plan: BuildPlan, last_seq: int, model_id: int, progress: Progress) -> BuildWork:
    """Assign and encode what is new since the last snapshot (commit ``last_seq``) with its model, then ask the
    health policy."""
    live = plan.live
    model, baseline = load_model(cat, model_id)
    # SQLite counts and finds what changed: at millions of items, carrying every coded row
    # into Python would cost more than the build itself.
    coded_sizes = np.zeros(model.num_leaves, np.int64)
    trained_live = 0
    for leaf, count, trained in index_rows.live_codes_per_leaf(cat, model_id):
        coded_sizes[leaf] = count
        trained_live += trained
    # Every item live at the last snapshot was coded by its model, so what is new is what was
    # added since; the count check guards that reasoning, and the exact query stands behind it.
    new_items = np.fromiter(item_rows.live_items_added_after(cat, last_seq), dtype=np.int64)
    if int(coded_sizes.sum()) + len(new_items) != len(live):
        new_items = np.fromiter(item_rows.live_items_without_codes(cat, model_id), dtype=np.int64)
    with progress.task(f"encoding {len(new_items)} new vectors", total=max(len(new_items), 1)) as advance:
        vectors = cat.vectors_for(new_items)
        new_leaves = model.assign(vectors) if len(new_items) else np.zeros(0, np.int32)
        new_codes = model.encode(vectors) if len(new_items) else None
        advance(max(len(new_items), 1))
    sizes = coded_sizes + np.bincount(new_leaves.astype(np.int64), minlength=model.num_leaves)
    h = assess(
        model_kind=model.kind,
        model_leaves=model.num_leaves,
        model_dims_per_block=model.dims_per_block,
        baseline=baseline,
        config=plan.config,
        live=len(live),
        untrained=len(live) - trained_live,
        imbalance=imbalance(sizes),
        new_residual=model.residual(vectors, new_leaves) if len(new_items) else None,
        new_quantization_error=(
            model.quantization_error(vectors, new_codes) if len(new_items) and new_codes is not None else None
        ),
    )
    rows = [
        (model_id, item, int(new_leaves[j]), new_codes[j].tobytes() if new_codes is not None else None, 0)
        for j, item in enumerate(new_items.tolist())
    ]
    return BuildWork(
        h.retrain, h.reasons if h.retrain else [], h.as_dict(), model, model_id, None, [] if h.retrain else rows
    )


def _retrain(
    cat: Catalog, plan: BuildPlan, reasons: list[str], health: dict, progress: Progress, placer: Placer | None = None
) -> BuildWork:
    """Train on the seeded sample, then place every live vector as it streams from the
    segments: no step holds more than the sample and one chunk of the catalog as floats."""
    live, started = plan.live, time.perf_counter()
    rows = training_rows(len(live), plan.config.training_sample_size)
    with progress.task(f"reading the {len(rows)} training vectors", total=len(rows)) as advance:
        sample = cat.vectors_for(live[rows])
        advance(len(rows))
    queries = query_training.catalog_queries_for_training(cat, len(rows), plan.config)
    with progress.task(f"training ScaNN partitions on {len(rows)} vectors"):
        model, stats = train_model(sample, len(live), cat.distance, plan.config, queries)
    del sample
    with progress.task(f"placing {len(live)} vectors", total=len(live)) as advance:
        placed = (
            (np.searchsorted(live, read.items), *result)
            for read, result in (placer or place_here)(model, cat.vector_reads(live), cat.path, cat.dim)
        )
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
            yield (
                self.model_id,
                item,
                int(self.leaves[j]),
                codes[j].tobytes() if codes is not None else None,
                2 if self.sampled[j] else 1,
            )


def compute_build(
    cat: Catalog, plan: BuildPlan, progress: Progress = SILENT, placer: Placer | None = None
) -> BuildWork:
    """Incremental unless there is no model yet, ``--full`` was given, or the health policy
    asks for retraining (then the incremental work is thrown away and every vector retrained)."""
    last = plan.last
    if len(plan.live) == 0:
        return BuildWork(False, [], {}, None, None, None, [])
    if last is None or last[2] is None or plan.full:
        work = _retrain(
            cat, plan, ["--full was given" if plan.full else "no partition model yet"], {}, progress, placer
        )
    else:
        work = _incremental(cat, plan, last[1], last[2], progress)
        if work.retrain:
            work = _retrain(cat, plan, work.reasons, work.health, progress, placer)
    work.recall, work.query_recall = recall_for_build(cat, plan, work, progress)
    return work


def commit_build(
    cat: Catalog, plan: BuildPlan, work: BuildWork, started: float, progress: Progress = SILENT
) -> BuildResult:
    """One transaction: settings, the commit, a new model if any, the new codes, the snapshot."""
    config, live, model, model_id, rows = plan.config, plan.live, work.model, work.model_id, work.rows
    recipe = work.trained.stats.get("recipe") if work.trained is not None else None
    require_free(cat.path, codes_floor(rows), f"the build's {len(rows)} codes")
    with cat.transaction():
        if plan.config_changed:
            cat.set_setting("index", config.to_json())
            cat.index_config = config
        seq = cat.new_commit("build", {"retrained": work.retrain, "reasons": work.reasons, "encoded": len(rows)})
        if work.trained is not None:
            trained = work.trained.model  # the model a retrain made (work.model)
            model_id = index_rows.insert_model(
                cat,
                seq,
                kind=trained.kind,
                num_leaves=trained.num_leaves,
                dims_per_block=trained.dims_per_block,
                centroids=trained.centroid_blob(),
                codebooks=trained.codebook_blob(),
                trained_items=len(live),
                training=work.trained.stats,
            )
            rows = dataclasses.replace(rows, model_id=model_id)
        with progress.task(f"writing {len(rows)} codes", total=max(len(rows), 1)) as advance:
            index_rows.insert_codes(cat, rows)
            advance(max(len(rows), 1))
        on, sample_note = target_estimate(work.recall, work.query_recall)
        leaves_to_search, note = choose_leaves(config, model.num_leaves, on) if model is not None else (None, None)
        note = "; ".join(n for n in (note, sample_note) if n) or None
        version = (plan.last[0] + 1) if plan.last is not None else 1
        build_info = {
            "retrained": work.retrain,
            "reasons": work.reasons,
            "encoded": len(rows),
            "health": work.health,
            "recipe": recipe,
            "seconds": round(time.perf_counter() - started, 3),
            "recall": work.recall.to_json() if work.recall is not None else None,
            "query_recall": work.query_recall.to_json() if work.query_recall is not None else None,
            "recall_on": on.kind if on is not None else None,
            "leaves_note": note,
            "recall_target": config.recall_target if config.leaves_to_search is None else None,
        }
        index_rows.insert_snapshot(
            cat,
            version=version,
            seq=seq,
            model_id=model_id,
            count=len(live),
            items_digest=items_digest(live),
            leaves_to_search=leaves_to_search,
            lookup_type=config.lookup_type if model is not None else None,
            build=build_info,
        )
    return BuildResult(
        version,
        True,
        work.retrain,
        work.reasons,
        len(live),
        len(rows),
        model.num_leaves if model is not None else 0,
        leaves_to_search,
        time.perf_counter() - started,
        work.health,
        recipe,
        work.recall,
        note,
        config.lookup_type,
        work.query_recall,
    )


def build(
    cat: Catalog,
    *,
    full: bool = False,
    changes: dict | None = None,
    progress: Progress = SILENT,
    placer: Placer | None = None,
) -> BuildResult:
    """Publish a new snapshot: plan, compute, commit (see the module docstring).

    ``placer``: who places every vector when the partitions are retrained (default:
    :func:`training.place_here`, this machine's cores). It is handed the model and the segment
    row-group reads and returns, in their order, ``(read, (leaves, codes, health sums))`` as
    :func:`training.place_read` computes them, wherever it runs them
    (``scannlite.plugin.ingest.ray_engine.RayPlacer``); the commit stays here, with the writer."""
    started = time.perf_counter()
    with cat.writing():
        plan = plan_build(cat, full=full, changes=changes)
        if plan.last is not None and plan.up_to_date:
            version, _, model_id, count, leaves_to_search, _ = plan.last
            model = cat.model_summary(model_id)
            return BuildResult(
                version,
                False,
                False,
                [],
                count,
                0,
                model["num_leaves"] if model else 0,
                leaves_to_search,
                time.perf_counter() - started,
            )
        if plan.full or plan.last is None or plan.last[2] is None:  # a retrain: refused before training
            require_free(
                cat.path,
                len(plan.live) * (cat.dim // plan.config.dims_per_block + 4),
                f"the build's {len(plan.live)} codes",
            )
        work = compute_build(cat, plan, progress, placer)
        return commit_build(cat, plan, work, started, progress)


__all__ = ["build", "BuildResult", "IndexConfig"]
