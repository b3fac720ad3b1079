"""Reading snapshots: what they hold, searching them as a device would, and comparing them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import numpy as np

from scannlite.store.catalog import index_rows, item_rows
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import CatalogCorrupt, InvalidInput, UnknownSnapshot
from scannlite.store.index import device_search
from scannlite.store.index.partition_model import PartitionModel
from scannlite.store.index.stored import load_model


@dataclass
class SnapshotInfo:
    version: int
    seq: int
    model_id: int | None
    count: int
    items_digest: str
    leaves_to_search: int | None
    lookup_type: str | None
    created_at: str
    build: dict

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "seq": self.seq,
            "model_id": self.model_id,
            "count": self.count,
            "leaves_to_search": self.leaves_to_search,
            "lookup_type": self.lookup_type,
            "created_at": self.created_at,
            "retrained": self.build.get("retrained"),
            "reasons": self.build.get("reasons", []),
            "encoded": self.build.get("encoded"),
            "recall": self.build.get("recall"),
            "leaves_note": self.build.get("leaves_note"),
        }


def _info(row) -> SnapshotInfo:
    version, seq, model_id, count, items_digest, leaves_to_search, lookup_type, created_at, build = row
    try:
        build = json.loads(build)
    except (TypeError, ValueError):  # a damaged catalog.db: one line, not a traceback
        raise CatalogCorrupt(
            f"snapshot {version}'s build record in catalog.db is damaged; run `scannlite check`"
        ) from None
    return SnapshotInfo(version, seq, model_id, count, items_digest, leaves_to_search, lookup_type, created_at, build)


def list_snapshots(cat: Catalog) -> list[SnapshotInfo]:
    return [_info(r) for r in index_rows.snapshot_rows(cat)]


def get_snapshot(cat: Catalog, version: int | None = None) -> SnapshotInfo:
    row = index_rows.snapshot_row(cat, version)
    if version is None:
        if row is None:
            raise UnknownSnapshot(f"catalog {cat.path} has no snapshot yet; run `scannlite build`")
        return _info(row)
    if row is None:
        have = index_rows.snapshot_versions(cat)
        listing = f" (snapshots: {', '.join(map(str, have[-10:]))})" if have else " (there are none yet)"
        raise UnknownSnapshot(f"catalog {cat.path} has no snapshot {version}{listing}")
    return _info(row)


@dataclass
class LoadedSnapshot:
    """A snapshot in device order: grouped by leaf, by internal item number within a leaf.

    ``items[j]`` is the item behind the device's global id j (its ``M_j``)."""

    info: SnapshotInfo
    distance: str
    model: PartitionModel | None
    items: np.ndarray  # (N,) int64
    ids: list[str]
    leaves: np.ndarray  # (N,) int32
    codes: np.ndarray | None  # (N, S) uint8
    offsets: np.ndarray  # (L + 1,)
    vectors: np.ndarray | None = None  # float vectors, loaded on demand
    _indexes: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def partitions(self) -> PartitionModel:
        """The partition model; only a snapshot without items has none (callers check :attr:`count` first)."""
        if self.model is None:
            raise InvalidInput(f"snapshot {self.info.version} holds no items, so it has no partitions to search")
        return self.model

    def device_index(self, lookup_type: str | None = None) -> device_search.DeviceIndex:
        """The index to search, made once per lookup type: a long-lived process (Datasette)
        searching the same snapshot keeps its stacked codebooks between queries."""
        m = self.partitions
        lookup = lookup_type or self.info.lookup_type or "FLOAT"
        key = (lookup, id(self.codes), id(self.vectors))
        if key not in self._indexes:
            self._indexes[key] = device_search.DeviceIndex(
                distance=self.distance,
                centroids=m.centroids,
                offsets=self.offsets,
                codebooks=m.codebooks if m.kind == "ah" else None,
                codes=self.codes,
                vectors=self.vectors if m.kind == "float" else None,
                lookup_type=lookup,
            )
        return self._indexes[key]


def load_snapshot(cat: Catalog, version: int | None = None, *, with_vectors: bool = False) -> LoadedSnapshot:
    with cat.reading():
        info = get_snapshot(cat, version)
        if info.model_id is None:
            snap = LoadedSnapshot(
                info,
                cat.distance,
                None,
                np.zeros(0, np.int64),
                [],
                np.zeros(0, np.int32),
                None,
                np.zeros(1, np.int64),
                np.zeros((0, cat.dim), np.float32),
            )
            return snap
        model, _ = load_model(cat, info.model_id)
        # Read in batches straight into arrays: millions of row tuples at once cost gigabytes.
        items_parts: list[np.ndarray] = []
        leaves_parts: list[np.ndarray] = []
        code_parts: list[np.ndarray] = []
        ids: list[str] = []
        for rows in index_rows.snapshot_code_batches(cat, info.model_id, info.seq, 65_536):
            items_parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            ids.extend(r[1] for r in rows)
            leaves_parts.append(np.fromiter((r[2] for r in rows), dtype=np.int32, count=len(rows)))
            if model.kind == "ah":
                code_parts.append(
                    np.frombuffer(b"".join(r[3] for r in rows), dtype=np.uint8).reshape(len(rows), model.num_subspaces)
                )
        items = np.concatenate(items_parts) if items_parts else np.zeros(0, np.int64)
        leaves = np.concatenate(leaves_parts) if leaves_parts else np.zeros(0, np.int32)
        codes = None
        if model.kind == "ah":
            codes = np.concatenate(code_parts) if code_parts else np.zeros((0, model.num_subspaces), np.uint8)
        offsets = np.zeros(model.num_leaves + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(leaves, minlength=model.num_leaves))
        snap = LoadedSnapshot(info, cat.distance, model, items, ids, leaves, codes, offsets)
        if with_vectors or model.kind == "float":
            snap.vectors = cat.vectors_for(items)
    return snap


def metadata_of(cat: Catalog, items) -> dict[int, object]:
    return item_rows.metadata_of(cat, [int(i) for i in items])


def jsonable_metadata(value):
    """Metadata fit for JSON: text as is, bytes as UTF-8 when they decode, else ``base64:...``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    return value


def prepare_queries(cat: Catalog, queries) -> np.ndarray:
    """Queries get what inserted vectors got: a dimension check and, if the catalog
    normalises, L2 normalisation (what an app sets with ``l2_normalize=True``)."""
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise InvalidInput(f"query vectors must have shape (D,) or (Q, D), got {q.shape}")
    if q.shape[1] != cat.dim:
        raise InvalidInput(f"query vectors have {q.shape[1]} dimensions, the catalog has {cat.dim}")
    if not np.issubdtype(q.dtype, np.number):
        raise InvalidInput(f"query vectors must be numbers, got dtype {q.dtype}")
    q = q.astype(np.float64)
    if not np.isfinite(q).all():
        raise InvalidInput("query vectors contain NaN or infinity")
    q = q.astype(np.float32)
    if cat.normalize:
        zero = ~q.any(axis=1)
        if zero.any():
            raise InvalidInput(f"query row {int(np.argmax(zero))} is a zero vector and cannot be normalised")
        # Exactly as the Task Library does it, so server and phone see the same query bits.
        q = device_search.l2_normalize(q)
    return q


#: Exact search holds the snapshot's vectors up to this many floats (256 MB; a caller that
#: searches the same snapshot again keeps them); above it, it streams them from the segments.
EXACT_IN_MEMORY = 1 << 26


def search(
    cat: Catalog,
    queries,
    *,
    k: int = 10,
    leaves_to_search: int | None = None,
    exact: bool = False,
    version: int | None = None,
    snapshot: LoadedSnapshot | None = None,
) -> list[list[dict]]:
    """Top-k per query row: ``{"id", "distance", "metadata"}`` dicts, nearest first.

    Default: what a phone returns for this snapshot (see :mod:`device_search`).
    ``exact``: brute force over the snapshot's float vectors, same distance convention.
    """
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    q = prepare_queries(cat, queries)
    snap = snapshot or load_snapshot(cat, version)
    if exact and snap.vectors is None and snap.count * cat.dim <= EXACT_IN_MEMORY:
        snap.vectors = cat.vectors_for(snap.items)
    if snap.count == 0:
        return [[] for _ in range(len(q))]
    if exact and snap.vectors is not None:
        pos, dist = device_search.exact_search(snap.vectors, cat.distance, q, k)
    elif exact:  # straight from the segments, a chunk at a time: no float copy of the catalog
        pos, dist = device_search.exact_search_chunks(cat.iter_vectors(snap.items), cat.distance, q, k)
    else:
        n_leaves = leaves_to_search if leaves_to_search is not None else snap.info.leaves_to_search
        if n_leaves is not None and n_leaves < 1:
            raise InvalidInput(f"leaves to search must be at least 1, got {n_leaves}")
        pos, dist = device_search.search(snap.device_index(), q, k, n_leaves or 1)
    found = pos[pos >= 0]
    meta = metadata_of(cat, snap.items[found]) if len(found) else {}
    results = []
    for qi in range(len(q)):
        row = []
        for j, d in zip(pos[qi], dist[qi]):
            if j < 0:
                break
            item = int(snap.items[j])
            row.append({"id": snap.ids[j], "distance": float(d), "metadata": meta.get(item)})
        results.append(row)
    return results


def diff(cat: Catalog, v1: int, v2: int) -> dict:
    """Ids added, removed and changed (same id, new vector or metadata) from v1 to v2."""
    with cat.reading():
        a, b = get_snapshot(cat, v1), get_snapshot(cat, v2)
        old = item_rows.items_by_id_at(cat, a.seq)
        new = item_rows.items_by_id_at(cat, b.seq)
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(i for i in set(old) & set(new) if old[i] != new[i])
    return {"from": v1, "to": v2, "added": added, "removed": removed, "changed": changed}
