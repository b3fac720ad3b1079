"""Inspecting and verifying bundles made earlier or elsewhere (``bundle info``, ``bundle verify``); ``bundle
query`` is :mod:`.querying`'s, opening a file :mod:`.opening`'s, both named here too for the callers of this module.

``verify`` re-runs the export's checks on any bundle: the static checks the Task Library
lacks, then parity. With ``--catalog`` the reference is the catalog's snapshot the bundle
came from; without, it is the index file itself, decoded by scannlite's own SSTable reader
and searched by the device-equivalent search, so a bundle from anywhere can be checked.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scannlite.store.bundle import parity
from scannlite.store.bundle.device_side import DeviceSide
from scannlite.store.bundle.embedder_checks import EmbedderRefused, check_against_index
from scannlite.store.bundle.export import device_labels, probe_candidates
from scannlite.store.bundle.manifest import l2_normalize_said
from scannlite.store.bundle.ondevice.index_file import OnDeviceIndex
from scannlite.store.bundle.ondevice.protos import DistanceMeasure, EmbeddingType, LookupType
from scannlite.store.bundle.ondevice.sstable import RELEASE_EVERY
from scannlite.store.bundle.opening import OpenedBundle, dropper, open_bundle, slices
from scannlite.store.bundle.querying import query
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.index import device_search
from scannlite.store.index.snapshot import load_snapshot
from scannlite.store.progress import SILENT, Progress
from scannlite.store.vocabulary import Distance


def _distance_name(index: OnDeviceIndex) -> str:
    measure, _ = index.resolve_distance()
    return Distance.DOT if measure == DistanceMeasure.DOT_PRODUCT else Distance.L2


def l2_normalize_of(b: OpenedBundle) -> bool:
    return l2_normalize_said(b.user_info, b.manifest)


def info(path: Path) -> dict:
    from scannlite.store.bundle.manifest import size_split

    with open_bundle(path) as b:
        summary = b.index.summary()
        out = {
            "file": str(b.path),
            "bytes": len(b.data),
            "sha256": b.sha256,
            "kind": "bundle" if b.is_model else "index",
            "index": summary,
            "split": size_split(len(b.data), len(b.index_bytes), summary["bytes"]["metadata"], b.is_model),
            "user_info": b.user_info,
            "manifest": b.manifest,
        }
        if b.describe is not None:
            d = b.describe
            out["model"] = {
                "inputs": [
                    {k: i.get(k) for k in ("name", "shape", "dtype", "tokenizer", "normalization")} for i in d["inputs"]
                ],
                "outputs": [{k: o.get(k) for k in ("name", "shape", "dtype")} for o in d["outputs"]],
                "packed_files": d.get("packed_files"),
                "min_parser_version": d.get("min_parser_version"),
            }
        return out


def static_problems(b: OpenedBundle) -> list[str]:
    problems = [f"index: {p}" for p in b.index.validate()]
    ah = b.index.asymmetric_hashing
    if ah is not None and ah.lookup_type == LookupType.INT8_LUT16:
        problems.append("index: INT8_LUT16 lookup; the Task Library returns garbage (-0.0) for it")
    if b.is_model:
        try:
            facts = b.facts
            if b.index.query_dim is not None:
                check_against_index(facts, b.index.query_dim, b.path.name)
        except EmbedderRefused as exc:
            problems.append(str(exc))
    if b.manifest is not None:
        if b.manifest.get("sha256", {}).get("file") not in (None, b.sha256):
            problems.append("the file's sha256 differs from its manifest: it was changed after export")
    return problems


def _index_as_device(b: OpenedBundle) -> tuple[device_search.DeviceIndex, int, Callable[[np.ndarray], np.ndarray]]:
    """A DeviceIndex straight from the file, its item count, and a function giving float vectors
    for rows to probe it with (decoded from their codes only when asked: all of them would be
    4 bytes per dimension per item)."""
    index = b.index
    part, ah = index.partitioner, index.asymmetric_hashing
    dim = index.query_dim
    if dim is None:  # an index with neither codes nor float vectors (static_problems reports it first)
        raise InvalidInput(f"{b.path.name}: the index does not state the width of its vectors")
    centroids = (
        part.centroids.astype(np.float32) if part is not None and part.num_leaves else np.zeros((1, dim), np.float32)
    )
    sizes = index.partition_sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = _gathered(b, [p for p in index.partitions if p is not None], index)
    if ah is not None:
        books = [np.asarray(b, dtype=np.float32) for b in ah.codebooks]

        def decoded(r: np.ndarray) -> np.ndarray:
            if not len(r):
                return np.zeros((0, dim), np.float32)
            return np.concatenate([books[s][rows[r, s]] for s in range(len(books))], axis=1)

        di = device_search.DeviceIndex(
            _distance_name(index), centroids, offsets, books, rows, None, ah.lookup_type.name
        )
        return di, len(rows), decoded
    vectors = rows.astype(np.float32, copy=False)
    di = device_search.DeviceIndex(_distance_name(index), centroids, offsets, None, None, vectors)
    return di, len(vectors), lambda r: vectors[r]


def _gathered(b: OpenedBundle, parts: list[np.ndarray], index: OnDeviceIndex) -> np.ndarray:
    """The partitions' rows in one array, copied out of the map a few partitions at a time, each
    batch's pages dropped again, so the file and its copy are never both resident."""
    if not parts:
        return index.vectors()
    out = np.empty((sum(len(p) for p in parts), parts[0].shape[1]), dtype=parts[0].dtype.newbyteorder("="))
    at = copied = 0
    for part in parts:
        out[at : at + len(part)] = part
        at += len(part)
        copied += part.nbytes
        if copied >= RELEASE_EVERY:
            dropper(b.data)()
            copied = 0
    return out


@contextlib.contextmanager
def _as_files(b: OpenedBundle):
    """(index, bundle) as paths for the device process, which maps them itself: a bare index is
    its own file; a bundle's packed index is copied once into a temporary file (from the map,
    never held in memory; on a tmpfs ``TMPDIR`` that copy is memory too). The device opens the
    paths again: a file replaced between the checks above and the device's load is not caught."""
    if not b.is_model:
        yield str(b.path.absolute()), None
        return
    with tempfile.TemporaryDirectory(prefix="scannlite-verify-") as tmp:
        index = Path(tmp) / "index.ldb"
        with open(index, "wb") as f:
            for piece in slices(b.index_bytes, dropper(b.data)):
                f.write(piece)
        yield str(index), str(b.path.absolute())


def verify(
    path: Path,
    *,
    device: DeviceSide,
    catalog: Path | None = None,
    probe: Path | None = None,
    runtimes: tuple[str, ...] | None = None,
    progress: Progress = SILENT,
) -> tuple[list[str], parity.ParityReport]:
    """Static problems and the parity report; ``runtimes``: which to verify with (default: every
    one present, :func:`.runtimes.available`)."""
    with open_bundle(path) as b:
        return _verify(b, device, catalog, probe, runtimes, progress)


def _verify(
    b: OpenedBundle,
    device: DeviceSide,
    catalog: Path | None,
    probe: Path | None,
    runtimes: tuple[str, ...] | None,
    progress: Progress,
) -> tuple[list[str], parity.ParityReport]:
    problems = static_problems(b)
    dropper(b.data)()  # validating read every code
    if problems:
        return problems, parity.ParityReport()
    l2n = l2_normalize_of(b)
    leaves = b.index.leaves_searched
    candidates: list[str] = []
    if catalog is not None:
        cat = Catalog.open(catalog)
        version = (b.user_info or b.manifest or {}).get("snapshot")
        if version is None:
            raise InvalidInput(f"{b.path.name} does not say which snapshot it holds; verify it without --catalog")
        snap = load_snapshot(cat, int(version))
        mode = (b.user_info or {}).get("device_metadata", "id")
        labels = device_labels(cat, snap, mode, 1 << 30)
        if labels != b.index.metadata:
            problems.append(f"the bundle's items differ from snapshot {version} of {catalog}")
            return problems, parity.ParityReport()
        lookup = b.index.asymmetric_hashing.lookup_type.name if b.index.asymmetric_hashing else None
        reference, count, l2n = snap.device_index(lookup), snap.count, cat.normalize
        vectors_of = lambda rows: cat.vectors_for(snap.items[rows])  # noqa: E731  (as export's check reads them)
        candidates = probe_candidates(cat, snap)
    else:
        reference, count, vectors_of = _index_as_device(b)
        labels = [m or b"" for m in b.index.metadata]
        # Only the probe texts' labels are kept decoded: all of them would be millions of strings.
        decoded = (m.decode("utf-8", "ignore") for m in labels)
        nonblank = np.flatnonzero(np.fromiter((bool(t.strip()) for t in decoded), bool, len(labels)))
        candidates = [
            labels[i].decode("utf-8", "ignore") for i in parity.evenly(nonblank.tolist(), parity.PROBE_INPUTS)
        ]
    if count == 0:
        return ["the index holds no items"], parity.ParityReport()
    texts = images = None
    if b.is_model:
        facts = b.facts
        texts, images = parity.probe_inputs(facts.kind, facts.description["inputs"][0]["shape"], candidates, probe)
    with _as_files(b) as (index, bundle):
        rep = parity.verify(
            device,
            index=index,
            bundle=bundle,
            reference=reference,
            labels=labels,
            count=count,
            vectors_of=vectors_of,
            l2_normalize=l2n,
            leaves=leaves,
            texts=texts,
            images=images,
            runtimes=runtimes,
            progress=progress,
        )
    return problems + rep.problems, rep


__all__ = ["info", "verify", "query", "open_bundle", "OpenedBundle", "EmbeddingType"]
