"""Inspecting, verifying and querying bundles made earlier or elsewhere.

``verify`` re-runs the export's checks on any bundle: the static checks the Task Library
lacks, then parity. With ``--catalog`` the reference is the catalog's snapshot the bundle
came from; without, it is the index file itself, decoded by scannlite's own SSTable reader
and searched by the device-equivalent search, so a bundle from anywhere can be checked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import device_search, parity
from .catalog import Catalog
from .embedder_checks import EmbedderRefused, check_against_index, inspect_embedder
from .errors import InvalidInput
from .device_side import DeviceSide
from .export import device_labels, manifest_path_for, probe_candidates, sha256
from .ondevice.errors import IndexFormatError
from .ondevice.index_file import OnDeviceIndex, read_index
from .ondevice.protos import DistanceMeasure, EmbeddingType, LookupType
from .progress import SILENT, Progress
from .vocabulary import Distance
from .snapshot import load_snapshot

from .ondevice.bundle_file import MODEL_IDENTIFIER as TFLITE_MAGIC


@dataclass
class OpenedBundle:
    path: Path
    data: bytes
    is_model: bool
    index_bytes: bytes
    index: OnDeviceIndex
    manifest: dict | None
    user_info: dict | None
    describe: dict | None = None
    problems: list[str] = field(default_factory=list)


def open_bundle(path: Path) -> OpenedBundle:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    data = path.read_bytes()
    is_model = len(data) >= 8 and data[4:8] == TFLITE_MAGIC
    describe = None
    try:
        if is_model:
            from .ondevice.bundle_file import describe_model, read_bundle

            bundle = read_bundle(data)
            index_bytes = bundle.require_index()
            describe = describe_model(data)
        else:
            index_bytes = data
        index = read_index(index_bytes)
    except IndexFormatError as exc:
        kind = "bundle" if is_model else "TFLite model or on-device index"
        raise InvalidInput(f"{path.name} is not a valid {kind}: {exc}") from None
    manifest = None
    mpath = manifest_path_for(path)
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text())
        except ValueError:
            manifest = None
    try:
        info = json.loads(index.user_info.decode()) if index.user_info else None
        info = info if isinstance(info, dict) and info.get("scannlite") else None
    except (UnicodeDecodeError, ValueError):
        info = None
    return OpenedBundle(path, data, is_model, index_bytes, index, manifest, info, describe)


def _distance_name(index: OnDeviceIndex) -> str:
    measure, _ = index.resolve_distance()
    return Distance.DOT if measure == DistanceMeasure.DOT_PRODUCT else Distance.L2


def l2_normalize_of(b: OpenedBundle) -> bool:
    if b.user_info is not None:
        return bool(b.user_info.get("l2_normalize"))
    if b.manifest is not None:
        return bool(b.manifest.get("l2_normalize"))
    return False


def info(path: Path) -> dict:
    b = open_bundle(path)
    summary = b.index.summary()
    out = {"file": str(b.path), "bytes": len(b.data), "sha256": sha256(b.data), "kind": "bundle" if b.is_model else "index",
           "index": summary, "user_info": b.user_info, "manifest": b.manifest}
    if b.describe is not None:
        d = b.describe
        out["model"] = {"inputs": [{k: i.get(k) for k in ("name", "shape", "dtype", "tokenizer", "normalization")}
                                   for i in d["inputs"]],
                        "outputs": [{k: o.get(k) for k in ("name", "shape", "dtype")} for o in d["outputs"]],
                        "packed_files": d.get("packed_files"), "min_parser_version": d.get("min_parser_version")}
    return out


def static_problems(b: OpenedBundle) -> list[str]:
    problems = [f"index: {p}" for p in b.index.validate()]
    ah = b.index.asymmetric_hashing
    if ah is not None and ah.lookup_type == LookupType.INT8_LUT16:
        problems.append("index: INT8_LUT16 lookup; the Task Library returns garbage (-0.0) for it")
    if b.is_model:
        try:
            facts = inspect_embedder(b.data, b.path.name)
            if b.index.query_dim is not None:
                check_against_index(facts, b.index.query_dim, b.path.name)
        except EmbedderRefused as exc:
            problems.append(str(exc))
    if b.manifest is not None:
        if b.manifest.get("sha256", {}).get("file") not in (None, sha256(b.data)):
            problems.append("the file's sha256 differs from its manifest: it was changed after export")
    return problems


def _index_as_device(index: OnDeviceIndex) -> tuple[device_search.DeviceIndex, np.ndarray]:
    """A DeviceIndex straight from the file, and float vectors to probe it with."""
    part, ah = index.partitioner, index.asymmetric_hashing
    dim = index.query_dim
    centroids = part.centroids.astype(np.float32) if part is not None and part.num_leaves else np.zeros((1, dim), np.float32)
    sizes = index.partition_sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = index.vectors()
    if ah is not None:
        books = [np.asarray(b, dtype=np.float32) for b in ah.codebooks]
        codes = np.ascontiguousarray(rows, dtype=np.uint8)
        decoded = np.concatenate([books[s][codes[:, s]] for s in range(len(books))], axis=1) if len(codes) else \
            np.zeros((0, dim), np.float32)
        lookup = ah.lookup_type.name
        di = device_search.DeviceIndex(_distance_name(index), centroids, offsets, books, codes, None, lookup)
        return di, decoded
    di = device_search.DeviceIndex(_distance_name(index), centroids, offsets, None, None, rows.astype(np.float32))
    return di, rows.astype(np.float32)


def verify(path: Path, *, device: DeviceSide, catalog: Path | None = None, probe: Path | None = None,
           progress: Progress = SILENT) -> tuple[list[str], parity.ParityReport]:
    b = open_bundle(path)
    problems = static_problems(b)
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
        snap = load_snapshot(cat, int(version), with_vectors=True)
        mode = (b.user_info or {}).get("device_metadata", "id")
        labels = device_labels(cat, snap, mode, 1 << 30)
        if labels != b.index.metadata:
            problems.append(f"the bundle's items differ from snapshot {version} of {catalog}")
            return problems, parity.ParityReport()
        lookup = b.index.asymmetric_hashing.lookup_type.name if b.index.asymmetric_hashing else None
        reference, source, l2n = snap.device_index(lookup), snap.vectors, cat.normalize
        candidates = probe_candidates(cat, snap)
    else:
        reference, source = _index_as_device(b.index)
        labels = [m or b"" for m in b.index.metadata]
        candidates = [m.decode("utf-8", "ignore") for m in labels]
    if len(source) == 0:
        return ["the index holds no items"], parity.ParityReport()
    texts = images = None
    if b.is_model:
        facts = inspect_embedder(b.data, b.path.name)
        texts, images = parity.probe_inputs(facts.kind, facts.description["inputs"][0]["shape"], candidates, probe)
    rep = parity.verify(device, index=b.index_bytes, bundle=b.data if b.is_model else None, reference=reference,
                        labels=labels, count=len(source), vectors_of=lambda rows: source[rows], l2_normalize=l2n,
                        leaves=leaves, texts=texts, images=images, progress=progress)
    return problems + rep.problems, rep


def query(path: Path, *, device: DeviceSide, texts: list[str] | None = None, images: list[Path] | None = None,
          k: int = 10):
    b = open_bundle(path)
    if not b.is_model:
        raise InvalidInput(f"{b.path.name} is a bare index; querying needs a bundle (an embedder with the index packed)")
    facts = inspect_embedder(b.data, b.path.name)
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    if texts:
        if facts.kind != "text":
            raise InvalidInput(f"{b.path.name} embeds images; use --image")
        return device.query_bundle(bundle=b.data, texts=texts, max_results=k, l2_normalize=l2_normalize_of(b))
    if images:
        if facts.kind != "image":
            raise InvalidInput(f"{b.path.name} embeds text; use --text")
        from .images import load_rgb

        arrays = []
        for p in images:
            if not Path(p).is_file():
                raise InvalidInput(f"cannot read {p}: no such file")
            try:
                arrays.append(load_rgb(Path(p)))
            except ValueError as exc:
                raise InvalidInput(f"cannot read image {exc}") from None
        return device.query_bundle(bundle=b.data, images=arrays, max_results=k, l2_normalize=l2_normalize_of(b))
    raise InvalidInput("give --text or --image")


__all__ = ["info", "verify", "query", "open_bundle", "EmbeddingType"]
