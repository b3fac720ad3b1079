"""The recall a build records, and the leaves to search it chooses from it.

A build estimates recall@10 on the catalog's own vectors (:mod:`.recall_estimate`), or keeps the previous estimate
when little changed since, and searches the fewest leaves that reach the catalog's target (docs/benchmarks.md).
When the catalog has a query sample (:mod:`scannlite.store.catalog.query_sample`) it also measures recall on those
queries, and the target is met on them once there are at least :data:`MIN_QUERIES_FOR_TARGET`: people's queries are
often unlike the catalog's items (short texts, another modality), and the leave-one-out figure then overstates what
they get (docs/queries.md).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from scannlite.store.catalog import index_rows, query_sample
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index import query_training
from scannlite.store.index.config import IndexConfig
from scannlite.store.index.recall_estimate import RecallEstimate, estimate_for_queries
from scannlite.store.index.recall_estimate import estimate as estimate_recall
from scannlite.store.index.stored import catalog_snapshot, coded_rows, unseen_at_training
from scannlite.store.progress import Progress

if TYPE_CHECKING:
    from scannlite.store.index.build import BuildPlan, BuildWork


#: An incremental build reuses the previous estimate while the items added and removed since
#: it was made stay under this share of the catalog: a few percent more vectors in the same
#: leaves move recall by well under the estimate's own standard error (about 0.01).
REUSE_ESTIMATE_BELOW = 0.05

#: Sampled queries the recall target needs before it is met on them rather than on the catalog's own items: at 200
#: the standard error of recall near 0.9 is about 0.01-0.02 (one draw per query), below the gaps the sample exists
#: to correct (docs/queries.md).
MIN_QUERIES_FOR_TARGET = 200


def recall_for_build(
    cat: Catalog, plan: BuildPlan, work: BuildWork, progress: Progress
) -> tuple[RecallEstimate | None, RecallEstimate | None]:
    """The new snapshot's recall estimates, leave-one-out and on the query sample (None when there is no sample),
    each the previous snapshot's when little changed (and, for the sample's, the sample is the same)."""
    model, live = work.model, plan.live
    if model is None or plan.config.recall_sample == 0:
        return None, None
    sample_vectors = query_training.catalog_queries_for_estimate(cat, work, plan.config)
    digest = query_sample.digest(sample_vectors) if len(sample_vectors) else None
    own = ours = None
    if work.trained is None and plan.last is not None:
        build_info = json.loads(index_rows.build_record(cat, plan.last[0]))
        deleted = plan.last[3] + len(work.rows) - len(live)
        own = _reused(
            build_info.get("recall"), plan, len(work.rows) + max(deleted, 0), min(plan.config.recall_sample, len(live))
        )
        previous_queries = build_info.get("query_recall")
        if digest is not None and previous_queries and previous_queries.get("sample_digest") == digest:
            ours = _reused(
                previous_queries,
                plan,
                len(work.rows) + max(deleted, 0),
                min(plan.config.recall_sample, len(sample_vectors)),
            )
        if own is not None and (digest is None or ours is not None):
            return own, ours
    if work.trained is not None:
        items, leaves, codes = live, work.trained.leaves, work.trained.codes
        unseen_items = live[~work.rows.sampled]
    else:
        model_id = work.model_id
        assert model_id is not None  # an incremental build keeps the last snapshot's model
        unseen_items = unseen_at_training(cat, model_id)
        items, leaves, codes = coded_rows(cat, model_id, with_codes=model.kind == "ah")
        new = work.rows
        if new:
            items = np.concatenate([items, np.asarray([r[1] for r in new], dtype=np.int64)])
            leaves = np.concatenate([leaves, np.asarray([r[2] for r in new], dtype=leaves.dtype)])
            if codes is not None:
                codes = np.concatenate(
                    [codes, np.frombuffer(b"".join(r[3] for r in new), np.uint8).reshape(len(new), -1)]
                )
    # Queries the partitions were trained on sit closer to their centroids than a user's query
    # does: on real sentence embeddings they overestimated recall by 0.02-0.03 at few leaves,
    # where queries drawn from the rest matched held-out queries (docs/benchmarks.md). The rest
    # means the items live at training but left out of its sample, a uniform draw like the
    # sample itself: items added since may differ from the catalog the build is judged on.
    snap = catalog_snapshot(cat, model, items, leaves, codes, unseen_items)
    if own is None:
        with progress.task(f"estimating recall on {min(plan.config.recall_sample, len(live))} of the vectors"):
            own = estimate_recall(snap, sample=plan.config.recall_sample)
    if digest is not None and ours is None:
        with progress.task(
            f"estimating recall on {min(plan.config.recall_sample, len(sample_vectors))} sampled queries"
        ):
            ours = estimate_for_queries(snap, sample_vectors, sample=plan.config.recall_sample)
        if ours is not None:
            ours.sample_digest = digest
    return own, ours


def _reused(previous: dict | None, plan: BuildPlan, changed: int, sample: int) -> RecallEstimate | None:
    """A previous estimate, when it was made on ``sample`` queries and the items added and removed since stay under
    :data:`REUSE_ESTIMATE_BELOW` of the catalog."""
    if not previous or previous.get("sample") != sample or plan.last is None:
        return None
    drift = previous.get("drift", 0) + changed
    if drift > REUSE_ESTIMATE_BELOW * len(plan.live):
        return None
    kept = RecallEstimate.from_json(previous)
    if kept is None:
        return None
    kept.reused_from = kept.reused_from or plan.last[0]
    kept.drift = drift
    return kept


def target_estimate(
    recall: RecallEstimate | None, queries: RecallEstimate | None
) -> tuple[RecallEstimate | None, str | None]:
    """The estimate the recall target is met on: the query sample's when it has at least
    :data:`MIN_QUERIES_FOR_TARGET` queries, else leave-one-out; and a note when a sample was too small."""
    if queries is not None and queries.sample >= MIN_QUERIES_FOR_TARGET:
        return queries, None
    if queries is not None:
        return recall, (
            f"the query sample's {queries.sample} queries are fewer than {MIN_QUERIES_FOR_TARGET}: "
            "the recall target is met on the catalog's own items"
        )
    return recall, None


def choose_leaves(config: IndexConfig, num_leaves: int, recall: RecallEstimate | None) -> tuple[int, str | None]:
    """leaves_to_search for a new snapshot, and a note when the choice needs one.

    An explicit ``leaves_to_search`` wins; else the smallest ladder value whose estimated
    recall reaches ``recall_target``, at most ``max_leaves_to_search``; else the fixed rule.
    When the target is out of reach within the cap, the smallest ladder value whose recall is
    within one standard error of the cap's: a curve that levels off just under the target would
    otherwise send every build to the cap for gains no estimate can tell from noise (issue 27's
    synthetic case, docs/queries.md)."""
    if config.leaves_to_search is not None or recall is None or config.recall_target is None:
        return config.search_leaves(num_leaves), None
    cap = min(config.max_leaves_to_search, num_leaves)
    chosen = recall.smallest_meeting(config.recall_target)
    if chosen is not None and chosen <= cap:
        return chosen, None
    allowed = max([n for n in recall.ladder if n <= cap] or [1])
    missed = f"target recall {config.recall_target:.2f} not reached within max_leaves_to_search {cap}: "
    level = _levels_off_at(recall, allowed)
    if level is not None and level < allowed:
        return level, (
            f"{missed}{recall.at(level):.3f} at {level} leaves, where more leaves up to {allowed} gain less than "
            f"the estimate's standard error ({recall.at(allowed):.3f} at {allowed})"
            + (f"; it takes {chosen}" if chosen is not None else "")
        )
    return allowed, f"{missed}{recall.at(allowed):.3f} at {allowed} leaves" + (
        f" (it takes {chosen})" if chosen is not None else ""
    )


def _levels_off_at(recall: RecallEstimate, allowed: int) -> int | None:
    """The smallest ladder value whose recall is within one standard error of the recall at
    ``allowed`` (a ladder value); None when the estimate carries no standard errors."""
    if not recall.stderr or allowed not in recall.ladder:
        return None
    top = recall.ladder.index(allowed)
    floor = recall.recall[top] - recall.stderr[top]
    return next(n for n, r in zip(recall.ladder[: top + 1], recall.recall) if r >= floor)
