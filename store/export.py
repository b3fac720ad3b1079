"""``scannlite export``: a snapshot as a verified TFLite Searcher bundle.

The on-device index is built from the snapshot's own partitions and codes (never retrained)
by tflite-support's index builder in a device process, packed into the embedder as its
SCANN_INDEX_FILE, then checked in a *second* device process, cold, as an app would open it:
the Task Library's answers must equal scannlite's device-equivalent search
(:mod:`scannlite.store.parity`). Only then are the bundle and its manifest moved into place;
a failure leaves the output path untouched.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata as pkg_metadata
from pathlib import Path

import numpy as np

from . import parity
from .catalog import Catalog, utcnow
from .embedder_checks import EmbedderFacts, check_against_index, inspect_embedder
from .errors import InvalidInput, ScannliteError
from .progress import SILENT, Progress
from .snapshot import LoadedSnapshot, load_snapshot

from .ondevice.bundle_file import INDEX_FILE_NAME as INDEX_NAME
DEFAULT_DEVICE_METADATA_LIMIT = 4096
PROBE_VECTORS = 100  # stored vectors searched (plus as many perturbed copies)
PROBE_INPUTS = 24  # texts or images run through the real embedder
VERIFY_K = 10


class VerificationFailed(ScannliteError):
    pass


@dataclass
class ExportResult:
    path: Path
    manifest_path: Path
    manifest: dict
    verified: bool
    parity: dict


def _version(dist: str) -> str | None:
    try:
        return pkg_metadata.version(dist)
    except pkg_metadata.PackageNotFoundError:
        return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def device_labels(cat: Catalog, snap: LoadedSnapshot, mode: str, limit: int) -> list[bytes]:
    """What each result carries on the device (``M_j``): the id, or the item's metadata."""
    if mode == "id":
        labels = [i.encode("utf-8") for i in snap.ids]
    elif mode == "metadata":
        from .snapshot import metadata_of

        meta = metadata_of(cat, snap.items)
        labels = []
        for item in snap.items.tolist():
            value = meta.get(item)
            labels.append(b"" if value is None else value.encode("utf-8") if isinstance(value, str) else bytes(value))
    else:
        raise InvalidInput(f"--device-metadata must be 'id' or 'metadata', got {mode!r}")
    for ident, label in zip(snap.ids, labels):
        if len(label) > limit:
            raise InvalidInput(f"item {ident!r}: its device {mode} is {len(label)} bytes, over the limit of {limit} "
                               "(raise --device-metadata-limit or use --device-metadata id)")
    return labels


def user_info(cat: Catalog, snap: LoadedSnapshot, leaves: int, mode: str) -> bytes:
    """USER_INFO: UTF-8 JSON (the Python Task Library cannot return non-UTF-8 user info)."""
    info = {"scannlite": 1, "snapshot": snap.info.version, "count": snap.count, "dim": cat.dim,
            "distance": cat.distance, "l2_normalize": cat.normalize, "leaves_to_search": leaves,
            "device_metadata": mode}
    return json.dumps(info, sort_keys=True, separators=(",", ":")).encode()


def index_arrays(snap: LoadedSnapshot) -> dict:
    m = snap.model
    arrays = {"partition_assignment": snap.leaves.astype(np.uint32), "centroids": m.centroids}
    if m.kind == "ah":
        arrays.update(embedding_dim=m.num_subspaces, codebooks=m.codebooks,
                      hashed_database=np.ascontiguousarray(snap.codes).reshape(-1))
    else:
        arrays.update(embedding_dim=m.dim, codebooks=None,
                      float_database=np.ascontiguousarray(snap.vectors, dtype=np.float32).reshape(-1))
    return arrays


def probe_inputs(cat: Catalog, snap: LoadedSnapshot, facts: EmbedderFacts | None, probe: Path | None):
    """Texts or images for the real-embedder check."""
    if facts is None:
        return None, None
    if facts.kind == "text":
        if probe is not None:
            if not probe.is_file():
                raise InvalidInput(f"cannot read probe file {probe}")
            texts = [ln.strip() for ln in probe.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not texts:
                raise InvalidInput(f"probe file {probe} holds no text")
            return texts[:PROBE_INPUTS * 4], None
        from .snapshot import metadata_of

        pick = snap.items[:: max(1, snap.count // PROBE_INPUTS)][:PROBE_INPUTS]
        texts = [v for v in metadata_of(cat, pick).values() if isinstance(v, str) and v.strip()]
        texts = texts or [snap.ids[j] for j in range(0, snap.count, max(1, snap.count // PROBE_INPUTS))]
        return [t[:2000] for t in texts[:PROBE_INPUTS]], None
    from .images import load_probe_images, synthetic_images

    shape = facts.description["inputs"][0]["shape"]
    images = load_probe_images(probe, PROBE_INPUTS) if probe is not None else synthetic_images(PROBE_INPUTS, shape[1], shape[2])
    return None, images


def verify(*, cat: Catalog, snap: LoadedSnapshot, index: bytes, bundle: bytes | None, labels: list[bytes],
           leaves: int, texts, images, progress: Progress = SILENT) -> parity.ParityReport:
    from scannlite.plugin.boundary import run_in

    rows = np.random.default_rng(snap.info.version).choice(snap.count, size=min(PROBE_VECTORS, snap.count), replace=False)
    probes = parity.probe_vectors(cat.vectors_for(snap.items[np.sort(rows)]), len(rows), seed=snap.info.version)
    k = min(VERIFY_K, snap.count)
    with progress.task("verifying with the Task Library in a device process"):
        answers = run_in("device", "scannlite.plugin.device.exporter:check_bundle", index=index,
                         probe_vectors=probes, max_results=k, l2_normalize=cat.normalize, bundle=bundle,
                         texts=texts, images=images)
    dindex = snap.device_index()
    rep = parity.compare(answers["probe"], parity.server_neighbors(
        dindex, labels, parity.normalised(probes, cat.normalize), k, leaves), "probe vector")
    for key in ("texts", "images"):
        if key in answers:
            vecs, dev = answers[key]
            server = parity.server_neighbors(dindex, labels, parity.normalised(vecs, cat.normalize), k, leaves)
            rep.merge(parity.compare(dev, server, f"real embedder {key[:-1]}"))
    return rep


def manifest_path_for(out: Path) -> Path:
    """``BUNDLE.tflite`` -> ``BUNDLE.manifest.json`` (likewise for a bare ``.ldb``)."""
    return out.with_suffix(".manifest.json")


def _write_atomically(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def export(cat: Catalog, *, out: Path, embedder: Path | None, version: int | None = None,
           leaves_to_search: int | None = None, index_only: bool = False, verify_bundle: bool = True,
           device_metadata: str = "id", device_metadata_limit: int = DEFAULT_DEVICE_METADATA_LIMIT,
           probe: Path | None = None, progress: Progress = SILENT) -> ExportResult:
    from scannlite.plugin.boundary import run_in

    out = Path(out)
    if not out.parent.is_dir():
        raise InvalidInput(f"cannot write {out}: directory {out.parent} does not exist")
    if embedder is None and not index_only:
        raise InvalidInput("--embedder MODEL.tflite is required (or --index-only for a bare .ldb)")
    model = None
    facts = None
    if embedder is not None:
        if not Path(embedder).is_file():
            raise InvalidInput(f"cannot read embedder {embedder}: no such file")
        model = Path(embedder).read_bytes()
        facts = inspect_embedder(model, f"embedder {Path(embedder).name}")
        if facts.description.get("index") and not index_only:
            progress.note(f"note: {Path(embedder).name} already carries an index; it will be replaced")
        check_against_index(facts, cat.dim, f"embedder {Path(embedder).name}")
    snap = load_snapshot(cat, version)
    if snap.count == 0:
        raise InvalidInput(f"snapshot {snap.info.version} is empty; there is nothing to search on a device")
    leaves = leaves_to_search if leaves_to_search is not None else snap.info.leaves_to_search
    if not 1 <= leaves <= snap.model.num_leaves:
        raise InvalidInput(f"--leaves-to-search must be between 1 and {snap.model.num_leaves}, got {leaves}")
    labels = device_labels(cat, snap, device_metadata, device_metadata_limit)
    info = user_info(cat, snap, leaves, device_metadata)
    arrays = index_arrays(snap)
    texts, images = probe_inputs(cat, snap, facts, probe) if verify_bundle and not index_only else (None, None)

    with progress.task(f"building the on-device index ({snap.count} items, {snap.model.num_leaves} leaves)"):
        index, bundle = run_in(
            "device", "scannlite.plugin.device.exporter:build_bundle", distance=cat.distance,
            lookup_type=snap.info.lookup_type or "FLOAT", leaves_to_search=leaves, metadata=labels,
            user_info=info, embedder=None if index_only else model, index_name=INDEX_NAME, **arrays)
    rep = parity.ParityReport()
    if verify_bundle:
        rep = verify(cat=cat, snap=snap, index=index, bundle=bundle, labels=labels, leaves=leaves,
                     texts=texts, images=images, progress=progress)
        if rep.problems:
            raise VerificationFailed(f"the bundle failed verification and was not written: {rep.problems[0]}"
                                     + (f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""))
    payload = index if index_only else bundle
    m = snap.model
    floor = {
        "codes": int(snap.codes.nbytes) if snap.codes is not None else int(snap.count * cat.dim * 4),
        "centroids": int(m.centroids.nbytes),
        "codebooks": int(sum(b.nbytes for b in m.codebooks)) if m.codebooks else 0,
        "metadata": int(sum(len(x) for x in labels)),
        "model": 0 if index_only else len(model),
    }
    manifest = {
        "format": "scannlite-bundle-manifest/1",
        "file": out.name,
        "kind": "index" if index_only else "bundle",
        "snapshot": snap.info.version,
        "items": snap.count,
        "dim": cat.dim,
        "distance": cat.distance,
        "l2_normalize": cat.normalize,
        "device_distance": "negative dot product" if cat.distance == "dot" else "squared L2",
        "index_type": "asymmetric hashing (uint8 codes)" if m.kind == "ah" else "float",
        "lookup_type": snap.info.lookup_type,
        "leaves": m.num_leaves,
        "leaves_searched": leaves,
        "dims_per_block": m.dims_per_block,
        "device_metadata": device_metadata,
        "embedder": None if facts is None else {"file": Path(embedder).name, "kind": facts.kind, "route": facts.route,
                                                 "output_dim": facts.output_dim, "sha256": sha256(model)},
        "sizes": {"file": len(payload), "index": len(index), "floor": sum(floor.values()), **{f"floor_{k}": v for k, v in floor.items()}},
        "sha256": {"file": sha256(payload), "index": sha256(index)},
        "index_file_name": None if index_only else INDEX_NAME,
        "verified": bool(verify_bundle),
        "parity": {"queries": rep.queries, "exact_order": rep.exact_order} if verify_bundle else None,
        "versions": {"scannlite": _version("scannlite"), "tflite-support": _version("tflite-support")},
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    manifest_path = manifest_path_for(out)
    tmp_out = _write_atomically(out, payload)
    tmp_manifest = _write_atomically(manifest_path, manifest_bytes)
    os.replace(tmp_out, out)
    os.replace(tmp_manifest, manifest_path)
    _record(cat, snap.info.version, out, manifest)
    return ExportResult(out, manifest_path, manifest, bool(verify_bundle), manifest["parity"] or {})


def _record(cat: Catalog, version: int, out: Path, manifest: dict) -> None:
    with cat.writing():
        if cat.conn.execute("SELECT 1 FROM snapshots WHERE version = ?", (version,)).fetchone() is None:
            return  # gc forgot the snapshot meanwhile; the bundle itself is still valid
        with cat.transaction():
            cat.conn.execute("INSERT INTO exports(version, path, sha256, manifest, created_at) VALUES (?, ?, ?, ?, ?)",
                             (version, str(out.resolve()), manifest["sha256"]["file"],
                              json.dumps(manifest, sort_keys=True), utcnow()))
