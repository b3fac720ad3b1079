"""``build``: publish a new snapshot, incrementally unless the partitions' health says otherwise.

Incremental: new and changed vectors are assigned to the existing leaves and encoded with the
existing codebooks; deleted rows drop out of the snapshot; nothing else is recomputed.
A retrain (``--full``, or a health check in :mod:`scannlite.store.health` failing) trains
a new partition model on every live vector.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

import numpy as np

from .catalog import Catalog, utcnow
from .health import assess
from .index_config import IndexConfig
from .partition_model import PartitionModel
from .progress import SILENT, Progress
from .training import baseline_stats, imbalance, train


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

    def lines(self) -> list[str]:
        if not self.published:
            return [f"snapshot {self.version} is up to date ({self.count} items); nothing to build"]
        what = "retrained the partitions" if self.retrained else "incremental build"
        out = [f"snapshot {self.version}: {self.count} items, {self.num_leaves} leaves"
               + (f", {self.leaves_to_search} searched" if self.leaves_to_search else "")
               + f" ({what}, {self.encoded} vectors encoded, {self.seconds:.1f} s)"]
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
    return PartitionModel.from_blobs(kind, dim, leaves, dpb, cents, books), json.loads(training)


def build(cat: Catalog, *, full: bool = False, changes: dict | None = None, progress: Progress = SILENT) -> BuildResult:
    started = time.perf_counter()
    with cat.writing():
        config = cat.index_config.replace(**changes) if changes else cat.index_config
        config_changed = config != cat.index_config
        head = cat.head_seq
        last = cat.conn.execute("SELECT version, seq, model_id, count, leaves_to_search, lookup_type "
                                "FROM snapshots ORDER BY version DESC LIMIT 1").fetchone()
        live = np.fromiter((r[0] for r in cat.conn.execute(
            "SELECT item FROM items WHERE removed_seq IS NULL ORDER BY item")), dtype=np.int64)
        if last is not None and not full and not config_changed and last[1] == head:
            leaves = (cat.conn.execute("SELECT num_leaves FROM models WHERE model_id = ?", (last[2],)).fetchone()
                      or [0])[0]
            return BuildResult(last[0], False, False, [], last[3], 0, leaves, last[4], time.perf_counter() - started)

        model_id = last[2] if last is not None else None
        reasons: list[str] = []
        health: dict = {}
        new_rows: list[tuple] = []
        model = None
        recipe = None
        retrain = False
        if len(live) == 0:
            model_id = None
        elif model_id is None or full:
            retrain = True
            reasons.append("--full was given" if full else "no partition model yet")
        else:
            model, baseline = load_model(cat, model_id)
            coded = cat.conn.execute(
                "SELECT c.item, c.leaf, c.trained FROM codes c JOIN items i ON i.item = c.item "
                "WHERE c.model_id = ? AND i.removed_seq IS NULL", (model_id,)).fetchall()
            coded_items = np.asarray([r[0] for r in coded], dtype=np.int64)
            coded_leaves = np.asarray([r[1] for r in coded], dtype=np.int64)
            trained_live = sum(r[2] for r in coded)
            new_items = np.setdiff1d(live, coded_items, assume_unique=True)
            with progress.task(f"encoding {len(new_items)} new vectors", total=max(len(new_items), 1)) as advance:
                vectors = cat.vectors_for(new_items)
                new_leaves = model.assign(vectors) if len(new_items) else np.zeros(0, np.int32)
                new_codes = model.encode(vectors) if len(new_items) else None
                advance(max(len(new_items), 1))
            sizes = np.bincount(np.concatenate([coded_leaves, new_leaves]).astype(np.int64), minlength=model.num_leaves)
            h = assess(model_kind=model.kind, model_leaves=model.num_leaves, model_dims_per_block=model.dims_per_block,
                       baseline=baseline, config=config, live=len(live), untrained=len(live) - trained_live,
                       imbalance=imbalance(sizes),
                       new_residual=model.residual(vectors, new_leaves) if len(new_items) else None,
                       new_quantization_error=(model.quantization_error(vectors, new_codes)
                                               if len(new_items) and new_codes is not None else None))
            health = h.as_dict()
            if h.retrain:
                retrain = True
                reasons = h.reasons
            else:
                for j, item in enumerate(new_items.tolist()):
                    new_rows.append((model_id, item, int(new_leaves[j]),
                                     new_codes[j].tobytes() if new_codes is not None else None, 0))

        trained = None
        if retrain:
            with progress.task(f"reading {len(live)} vectors", total=len(live)) as advance:
                vectors = cat.vectors_for(live)
                advance(len(live))
            with progress.task(f"training ScaNN partitions on {len(live)} vectors") as advance:
                trained = train(vectors, cat.distance, config)
                advance(1)
            model = trained.model
            recipe = trained.stats.get("recipe")
            new_rows = [(None, int(item), int(trained.leaves[j]),
                         trained.codes[j].tobytes() if trained.codes is not None else None, 1)
                        for j, item in enumerate(live.tolist())]

        with cat.transaction():
            if config_changed:
                cat.set_setting("index", config.to_json())
                cat.index_config = config
            seq = cat.new_commit("build", {"retrained": retrain, "reasons": reasons, "encoded": len(new_rows)})
            if trained is not None:
                cur = cat.conn.execute(
                    "INSERT INTO models(created_seq, kind, dim, num_leaves, dims_per_block, centroids, codebooks, "
                    "trained_items, training) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, model.kind, cat.dim, model.num_leaves, model.dims_per_block, model.centroid_blob(),
                     model.codebook_blob(), len(live), json.dumps(trained.stats, sort_keys=True)))
                model_id = cur.lastrowid
                new_rows = [(model_id, *row[1:]) for row in new_rows]
            with progress.task(f"writing {len(new_rows)} codes", total=max(len(new_rows), 1)) as advance:
                cat.conn.executemany("INSERT INTO codes(model_id, item, leaf, code, trained) VALUES (?, ?, ?, ?, ?)",
                                     new_rows)
                advance(max(len(new_rows), 1))
            leaves_to_search = config.search_leaves(model.num_leaves) if model is not None else None
            version = (last[0] + 1) if last is not None else 1
            build_info = {"retrained": retrain, "reasons": reasons, "encoded": len(new_rows), "health": health,
                          "recipe": recipe, "seconds": round(time.perf_counter() - started, 3)}
            cat.conn.execute(
                "INSERT INTO snapshots(version, seq, model_id, count, items_digest, leaves_to_search, lookup_type, "
                "created_at, build) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (version, seq, model_id, len(live), items_digest(live), leaves_to_search,
                 config.lookup_type if model is not None else None, utcnow(), json.dumps(build_info, sort_keys=True)))
        return BuildResult(version, True, retrain, reasons, len(live), len(new_rows),
                           model.num_leaves if model is not None else 0, leaves_to_search,
                           time.perf_counter() - started, health, recipe)


__all__ = ["build", "BuildResult", "IndexConfig", "baseline_stats"]
