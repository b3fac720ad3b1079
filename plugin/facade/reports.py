"""The dicts the Python API returns and the CLI prints with ``--json`` for what a catalog holds and what a
build did: ``info``, ``build``, and the recall summary inside them.

One function per report, called by :class:`.database.Database`, so that ``scannlite info --json`` and
``Database.info()`` cannot differ (tests/test_cli_api_parity.py).
"""

from __future__ import annotations

from scannlite.store.catalog import query_sample
from scannlite.store.catalog.catalog import Catalog


def catalog_info(cat: Catalog) -> dict:
    """Settings, size, the latest snapshot, its partition model and recall estimates."""
    from scannlite.store.index.snapshot import list_snapshots

    with cat.reading():
        snaps = list_snapshots(cat)
        latest = snaps[-1] if snaps else None
        return {
            "path": str(cat.path),
            "dim": cat.dim,
            "distance": cat.distance,
            "normalize": cat.normalize,
            "metadata_type": cat.metadata_type,
            "metadata_limit": cat.metadata_limit,
            "count": cat.count(),
            "snapshot": latest.version if latest else None,
            "snapshot_count": latest.count if latest else None,
            "snapshots": len(snaps),
            "head_commit": cat.head_seq,
            "index": cat.index_config.to_json(),
            "model": cat.model_summary(latest.model_id) if latest else None,
            "segments": cat.segment_count(),
            "recall": recall_summary(latest),
            "query_recall": recall_summary(latest, "query_recall"),
            "recall_on": (latest.build.get("recall_on") if latest else None),
            "query_sample": query_sample.summary(cat),
            **{key: cat.settings.get(key) for key in ("text_embedder", "image_embedder", "thumbnails_root")},
        }


def recall_summary(info, key: str = "recall") -> dict | None:
    """A snapshot's recall estimate (``recall``: leave-one-out; ``query_recall``: on the query sample), with the
    figure at its leaves_to_search."""
    from scannlite.store.index.recall_estimate import RecallEstimate

    est = RecallEstimate.from_json(info.build.get(key)) if info else None
    if est is None:
        return None
    return {
        **est.to_json(),
        "leaves_to_search": info.leaves_to_search,
        "at_leaves_to_search": est.at(info.leaves_to_search),
        "leaves_note": info.build.get("leaves_note"),
    }


def build_report(r) -> dict:
    """A :class:`~scannlite.store.index.build.BuildResult` as a dict, recall figures at its leaves_to_search."""
    return {
        "snapshot": r.version,
        "published": r.published,
        "retrained": r.retrained,
        "reasons": r.reasons,
        "count": r.count,
        "encoded": r.encoded,
        "num_leaves": r.num_leaves,
        "leaves_to_search": r.leaves_to_search,
        "seconds": r.seconds,
        "recall": r.recall.at(r.leaves_to_search) if r.recall is not None and r.leaves_to_search else None,
        "query_recall": (
            r.query_recall.at(r.leaves_to_search) if r.query_recall is not None and r.leaves_to_search else None
        ),
        "lines": r.lines(),
    }
