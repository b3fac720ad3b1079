"""What builds stored, read back: partition models, the codes of a model, the items a snapshot holds.

Kept apart from :mod:`.build` (which writes them) so that readers such as snapshots and the recall estimate need
not load the build's planning and training code. See docs/schema.md for the tables.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from scannlite.store.catalog import index_rows
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import CatalogCorrupt
from scannlite.store.index.device_search import DeviceIndex
from scannlite.store.index.partition_model import PartitionModel
from scannlite.store.index.recall_estimate import Snapshot


def items_digest(items: np.ndarray) -> str:
    return hashlib.sha256(np.sort(np.asarray(items, dtype="<i8")).tobytes()).hexdigest()


def load_model(cat: Catalog, model_id: int) -> tuple[PartitionModel, dict]:
    kind, dim, leaves, dpb, cents, books, training = index_rows.model_row(cat, model_id)
    try:
        return PartitionModel.from_blobs(kind, dim, leaves, dpb, cents, books), json.loads(training)
    except (TypeError, ValueError):  # a damaged catalog.db: one line, not a traceback
        raise CatalogCorrupt(f"partition model {model_id} in catalog.db is damaged; run `scannlite check`") from None


def unseen_at_training(cat: Catalog, model_id: int) -> np.ndarray | None:
    """Items live when the model was trained but left out of its training sample (``trained =
    1``; the sample is 2). None for a model whose codes do not say (written before the sample
    was marked, or a float index, which trains nothing)."""
    if not index_rows.marks_training_sample(cat, model_id):
        return None
    return np.fromiter(index_rows.items_left_out_of_training(cat, model_id), np.int64)


def catalog_snapshot(
    cat: Catalog,
    model: PartitionModel,
    items: np.ndarray,
    leaves: np.ndarray,
    codes: np.ndarray | None,
    unseen_items: np.ndarray | None = None,
) -> Snapshot:
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
    items, leaves, codes = [], [], []
    for rows in index_rows.live_code_batches(cat, model_id, with_codes=with_codes, batch=batch):
        items.append(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
        leaves.append(np.fromiter((r[1] for r in rows), np.int32, len(rows)))
        if with_codes:
            codes.append(np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(len(rows), -1))

    def joined(parts, empty):
        return np.concatenate(parts) if parts else empty

    return (
        joined(items, np.zeros(0, np.int64)),
        joined(leaves, np.zeros(0, np.int32)),
        joined(codes, np.zeros((0, 0), np.uint8)) if with_codes else None,
    )
