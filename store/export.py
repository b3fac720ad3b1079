"""``scannlite export``: a snapshot as a verified TFLite Searcher bundle.

The on-device index is written from the snapshot's own partitions and codes (never retrained)
by scannlite's streamed writer (:mod:`.ondevice.index_writer`), packed into the embedder as its
SCANN_INDEX_FILE in a device process, then checked in a *second* device process, cold, as an
app would open it: the Task Library's answers must equal scannlite's device-equivalent search
(:mod:`scannlite.store.parity`). Only then are the bundle and its manifest moved into place;
a failure leaves the output path untouched.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata as pkg_metadata
from pathlib import Path

import numpy as np

from . import parity
from .atomic import replacing, scratch_beside
from .catalog import Catalog
from .device_side import DeviceSide
from .embedder_checks import EmbedderFacts, check_against_index, inspect_embedder
from .errors import InvalidInput, ScannliteError
from .ondevice.bundle_file import INDEX_FILE_NAME as INDEX_NAME
from .ondevice.errors import IndexFormatError
from .ondevice.index_writer import scann_config, write_index
from .ondevice.layout import DEFAULT_LAYOUT, LAYOUTS, slotted_offsets
from .progress import SILENT, Progress
from .recall_estimate import RecallEstimate
from .snapshot import LoadedSnapshot, get_snapshot, load_snapshot, metadata_of
from .vocabulary import Distance

DEFAULT_DEVICE_METADATA_LIMIT = 4096


class VerificationFailed(ScannliteError):
    pass


@dataclass
class ExportResult:
    path: Path
    manifest_path: Path
    manifest: dict
    verified: bool
    parity: dict
    patch_path: Path | None = None


@dataclass
class DeltaBase:
    """The bundle a patch starts from (``--delta-from``): checked, and what the layout keeps of it."""

    path: Path
    data: bytes
    sha256: str
    snapshot: int
    retrained: bool  # the new snapshot has another partition model: every item moved
    offsets: list[int]  # its index's global_partition_offsets


@dataclass
class ExportPlan:
    """Everything decided before a device process is started: what goes into the index, and
    what the verification will ask. Every refusal happens while planning, so a bad request
    never costs a device process and never touches the output."""

    cat: Catalog
    snap: LoadedSnapshot
    out: Path
    index_only: bool
    model: bytes | None  # the embedder's bytes
    facts: EmbedderFacts | None
    embedder_name: str | None
    leaves: int
    device_metadata: str
    labels: list[bytes]
    user_info: bytes
    texts: list[str] | None
    images: list | None
    layout: str = DEFAULT_LAYOUT
    offsets: list[int] | None = None  # first result id of each leaf (None: the builder's own)
    ids_moved_from_leaf: int | None = None  # first leaf whose ids differ from the base's
    base: DeltaBase | None = None


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


def probe_candidates(cat: Catalog, snap: LoadedSnapshot) -> list[str]:
    """Texts a text embedder is probed with: evenly spread items' text metadata, else their ids."""
    pick = parity.evenly(snap.items.tolist(), parity.PROBE_INPUTS)
    texts = [v for v in metadata_of(cat, pick).values() if isinstance(v, str) and v.strip()]
    return texts or parity.evenly(list(snap.ids), parity.PROBE_INPUTS)


def user_info(cat: Catalog, snap: LoadedSnapshot, leaves: int, mode: str) -> bytes:
    """USER_INFO: UTF-8 JSON (the Python Task Library cannot return non-UTF-8 user info)."""
    info = {"scannlite": 1, "snapshot": snap.info.version, "count": snap.count, "dim": cat.dim,
            "distance": cat.distance.value, "l2_normalize": cat.normalize, "leaves_to_search": leaves,
            "device_metadata": mode}
    return json.dumps(info, sort_keys=True, separators=(",", ":")).encode()


def builder_arrays(snap: LoadedSnapshot) -> dict:
    """What tflite-support's builder takes besides the config: flat databases, the leaf of each row."""
    m = snap.model
    arrays = {"partition_assignment": snap.leaves.astype(np.uint32)}
    if m.kind == "ah":
        arrays.update(embedding_dim=m.num_subspaces, hashed_database=np.ascontiguousarray(snap.codes).reshape(-1))
    else:
        arrays.update(embedding_dim=m.dim,
                      float_database=np.ascontiguousarray(snap.vectors, dtype=np.float32).reshape(-1))
    return arrays


def manifest_path_for(out: Path) -> Path:
    """``BUNDLE.tflite`` -> ``BUNDLE.manifest.json`` (likewise for a bare ``.ldb``)."""
    return out.with_suffix(".manifest.json")


def delta_base(cat: Catalog, snap: LoadedSnapshot, path: Path, index_only: bool) -> DeltaBase:
    """Check ``--delta-from``: a file this catalog exported, unchanged since, of the same kind."""
    path = Path(path)
    what = f"--delta-from {path.name}"
    if not path.is_file():
        raise InvalidInput(f"cannot read --delta-from {path}: no such file")
    data = path.read_bytes()
    digest = sha256(data)
    mpath = manifest_path_for(path)
    if not mpath.is_file():
        raise InvalidInput(f"{what}: no {mpath.name} beside it; the base must be a bundle scannlite exported")
    try:
        manifest = json.loads(mpath.read_text())
        recorded, version = manifest["sha256"]["file"], int(manifest["snapshot"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{what}: its manifest {mpath.name} is corrupt") from None
    if recorded != digest:
        raise InvalidInput(f"{what} differs from its manifest (sha256 {digest[:12]}..., manifest "
                           f"{str(recorded)[:12]}...): it was changed after export")
    if digest not in {e["sha256"] for e in cat.exports()}:
        raise InvalidInput(f"{what} was not exported from catalog {cat.path} (no export of it is recorded there)")
    if (manifest.get("kind") == "index") != index_only:
        kind = "a bare index" if manifest.get("kind") == "index" else "a bundle"
        raise InvalidInput(f"{what} is {kind}; a patch joins two files of the same kind "
                           f"({'drop' if index_only else 'add'} --index-only)")
    try:
        from .ondevice.bundle_file import read_bundle
        from .ondevice.index_file import read_index

        offsets = read_index(data if index_only else read_bundle(data).require_index()).offsets
    except IndexFormatError as exc:
        raise InvalidInput(f"{what} is not a valid bundle: {exc}") from None
    with cat.reading():
        try:
            old_model = get_snapshot(cat, version).model_id
        except ScannliteError:
            old_model = None  # gc forgot it: nothing says the leaves are the same
    return DeltaBase(path, data, digest, version, old_model != snap.info.model_id, offsets)


# ---- plan ------------------------------------------------------------------------------------

def plan_export(cat: Catalog, *, out: Path, embedder: Path | None, version: int | None = None,
                leaves_to_search: int | None = None, index_only: bool = False, verify_bundle: bool = True,
                device_metadata: str = "id", device_metadata_limit: int = DEFAULT_DEVICE_METADATA_LIMIT,
                probe: Path | None = None, progress: Progress = SILENT, delta_from: Path | None = None,
                layout: str = DEFAULT_LAYOUT) -> ExportPlan:
    out = Path(out)
    if layout not in LAYOUTS:
        raise InvalidInput(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not out.parent.is_dir():
        raise InvalidInput(f"cannot write {out}: directory {out.parent} does not exist")
    if embedder is None and not index_only:
        raise InvalidInput("--embedder MODEL.tflite is required (or --index-only for a bare .ldb)")
    model = facts = None
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
    base = delta_base(cat, snap, delta_from, index_only) if delta_from is not None else None
    if base is not None and Path(delta_from).resolve() == out.resolve():
        raise InvalidInput(f"--delta-from {Path(delta_from).name} is the output; export to another --out")
    offsets = moved = None
    if LAYOUTS[layout] is not None:
        sizes = np.diff(snap.offsets).astype(int).tolist()
        keep = base.offsets if base is not None and not base.retrained and LAYOUTS[layout]["slots"] else None
        offsets, moved = slotted_offsets(sizes, keep, slack=LAYOUTS[layout]["slots"])
    texts = images = None
    if verify_bundle and not index_only and facts is not None:
        texts, images = parity.probe_inputs(facts.kind, facts.description["inputs"][0]["shape"],
                                            probe_candidates(cat, snap) if facts.kind == "text" else [], probe)
    return ExportPlan(cat=cat, snap=snap, out=out, index_only=index_only, model=model, facts=facts,
                      embedder_name=None if embedder is None else Path(embedder).name, leaves=leaves,
                      device_metadata=device_metadata, labels=labels,
                      user_info=user_info(cat, snap, leaves, device_metadata),
                      texts=texts if verify_bundle else None, images=images if verify_bundle else None,
                      layout=layout, offsets=offsets, ids_moved_from_leaf=moved, base=base)


# ---- compute ---------------------------------------------------------------------------------

def write_index_file(plan: ExportPlan, path: Path, device: DeviceSide, progress: Progress = SILENT) -> None:
    """The on-device index, streamed to ``path`` by scannlite's writer from the snapshot's own
    leaves and codes (layout "builder": tflite-support's builder in a device process)."""
    snap, m = plan.snap, plan.snap.model
    try:
        config = scann_config(distance=plan.cat.distance, centroids=m.centroids, leaves_to_search=plan.leaves,
                              codebooks=m.codebooks if m.kind == "ah" else None,
                              lookup_type=snap.info.lookup_type or "FLOAT")
        with progress.task(f"writing the on-device index ({snap.count} items, {m.num_leaves} leaves)"):
            if LAYOUTS[plan.layout] is None:
                path.write_bytes(device.builder_index(serialized_config=config, metadata=plan.labels,
                                                      user_info=plan.user_info, **builder_arrays(snap)))
                return
            database = snap.codes if m.kind == "ah" else np.asarray(snap.vectors, dtype=np.float32)
            with open(path, "wb") as f:
                write_index(f, config=config, database=database, sizes=np.diff(snap.offsets), labels=plan.labels,
                            user_info=plan.user_info, offsets=plan.offsets, **LAYOUTS[plan.layout]["blocks"])
    except ValueError as exc:  # a snapshot the device would mis-serve (codes beyond a codebook...)
        raise ScannliteError(f"cannot write the on-device index of snapshot {snap.info.version}: {exc}") from None


def verify_export(plan: ExportPlan, device: DeviceSide, index: Path, bundle: Path | None,
                  progress: Progress = SILENT) -> parity.ParityReport:
    cat, snap = plan.cat, plan.snap
    rep = parity.verify(device, index=index, bundle=bundle, reference=snap.device_index(), labels=plan.labels,
                        count=snap.count, vectors_of=lambda rows: cat.vectors_for(snap.items[rows]),
                        l2_normalize=cat.normalize, leaves=plan.leaves, texts=plan.texts, images=plan.images,
                        progress=progress)
    if rep.problems:
        raise VerificationFailed(f"the bundle failed verification and was not written: {rep.problems[0]}"
                                 + (f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""))
    return rep


def file_facts(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file, read in chunks: an index may be larger than is worth holding."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return path.stat().st_size, h.hexdigest()


def manifest_for(plan: ExportPlan, index: Path, payload: Path, rep: parity.ParityReport | None) -> dict:
    cat, snap, m = plan.cat, plan.snap, plan.snap.model
    index_size, index_sha = file_facts(index)
    file_size, file_sha = (index_size, index_sha) if payload == index else file_facts(payload)
    floor = {
        "codes": int(snap.codes.nbytes) if snap.codes is not None else int(snap.count * cat.dim * 4),
        "centroids": int(m.centroids.nbytes),
        "codebooks": int(sum(b.nbytes for b in m.codebooks)) if m.codebooks else 0,
        "metadata": int(sum(len(x) for x in plan.labels)),
        "model": 0 if plan.index_only else len(plan.model),
    }
    facts = plan.facts
    return {
        "format": "scannlite-bundle-manifest/1",
        "file": plan.out.name,
        "kind": "index" if plan.index_only else "bundle",
        "snapshot": snap.info.version,
        "items": snap.count,
        "dim": cat.dim,
        "distance": cat.distance.value,
        "l2_normalize": cat.normalize,
        "device_distance": "negative dot product" if cat.distance is Distance.DOT else "squared L2",
        "index_type": "asymmetric hashing (uint8 codes)" if m.kind == "ah" else "float",
        "lookup_type": snap.info.lookup_type,
        "leaves": m.num_leaves,
        "leaves_searched": plan.leaves,
        "dims_per_block": m.dims_per_block,
        "device_metadata": plan.device_metadata,
        "embedder": None if facts is None else {"file": plan.embedder_name, "kind": facts.kind, "route": facts.route,
                                                 "output_dim": facts.output_dim, "sha256": sha256(plan.model)},
        "sizes": {"file": file_size, "index": index_size, "floor": sum(floor.values()),
                  **{f"floor_{k}": v for k, v in floor.items()}},
        "sha256": {"file": file_sha, "index": index_sha},
        "index_file_name": None if plan.index_only else INDEX_NAME,
        "layout": {"name": plan.layout, "ids_moved_from_leaf": plan.ids_moved_from_leaf,
                   "partition_offsets": "builder" if plan.offsets is None else
                   "slotted" if LAYOUTS[plan.layout]["slots"] else "dense",
                   "writer": "tflite-support index_builder" if plan.offsets is None else "scannlite"},
        "verified": rep is not None,
        "parity": {"queries": rep.queries, "exact_order": rep.exact_order} if rep is not None else None,
        "device_latency_ms": rep.latency_ms if rep is not None else None,
        "recall": recall_summary(snap, plan.leaves),
        "versions": {"scannlite": _version("scannlite"), "tflite-support": _version("tflite-support")},
    }


def recall_summary(snap: LoadedSnapshot, leaves: int) -> dict | None:
    """The snapshot's recall estimate, with the figure at the leaves this bundle searches."""
    est = RecallEstimate.from_json(snap.info.build.get("recall"))
    return None if est is None else {**est.to_json(), "at_leaves_searched": est.at(leaves)}


def make_delta(plan: ExportPlan, payload: bytes, manifest: dict, progress: Progress = SILENT) -> bytes:
    """The patch from ``plan.base`` to ``payload``; its entry goes into ``manifest["patches"]``."""
    from .delta import make_patch, patch_path_for

    base = plan.base
    name = patch_path_for(plan.out, base.sha256).name
    with progress.task(f"making the patch from {base.path.name} (zstd patch-from)"):
        patch, entry = make_patch(base.data, payload, {
            "file": name, "base": {"file": base.path.name, "snapshot": base.snapshot},
            "result": {"file": plan.out.name, "snapshot": plan.snap.info.version}})
    entry = {**entry, "bytes": len(patch), "sha256": sha256(patch), "share_of_result": round(len(patch) / max(len(payload), 1), 6),
             "retrained": base.retrained}
    if base.retrained:
        entry["warning"] = (f"the delta is large ({len(patch):,} bytes, {100 * entry['share_of_result']:.0f}% of the "
                            f"bundle): snapshot {plan.snap.info.version} has a retrained partition model, unlike "
                            f"snapshot {base.snapshot}, and retraining moves every item to new leaves and codes")
        progress.note(f"warning: {entry['warning']}")
    manifest["patches"] = [entry]
    return patch


# ---- the whole export ------------------------------------------------------------------------

def export(cat: Catalog, *, device: DeviceSide, out: Path, embedder: Path | None, version: int | None = None,
           leaves_to_search: int | None = None, index_only: bool = False, verify_bundle: bool = True,
           device_metadata: str = "id", device_metadata_limit: int = DEFAULT_DEVICE_METADATA_LIMIT,
           probe: Path | None = None, progress: Progress = SILENT, delta_from: Path | None = None,
           layout: str = DEFAULT_LAYOUT) -> ExportResult:
    """Plan (every check), then compute into temporary files beside ``out`` (the index, the
    bundle in a device process, the verification in a second one that opens them cold by path,
    the manifest, the patch from ``delta_from``); only then do the files appear, whole or not at
    all, and the catalog remembers the export. Nothing that grows with the catalog crosses a
    process boundary: device processes read and write the index and bundle files themselves."""
    plan = plan_export(cat, out=out, embedder=embedder, version=version, leaves_to_search=leaves_to_search,
                       index_only=index_only, verify_bundle=verify_bundle, device_metadata=device_metadata,
                       device_metadata_limit=device_metadata_limit, probe=probe, progress=progress,
                       delta_from=delta_from, layout=layout)
    from scannlite.store.oserrors import export_floor, require_free

    require_free(plan.out.parent, export_floor(plan, LAYOUTS), f"exporting snapshot {plan.snap.info.version} to {plan.out.name}")
    manifest_path = manifest_path_for(plan.out)
    targets = [plan.out, manifest_path]
    if plan.base is not None:
        from .delta import patch_path_for

        targets.append(patch_path_for(plan.out, plan.base.sha256))
    with replacing(*targets) as tmps, scratch_beside(plan.out) as index_tmp:
        # Absolute: a warm device worker may have started in another directory.
        payload, index_tmp = tmps[0].absolute(), index_tmp.absolute()
        index = payload if plan.index_only else index_tmp
        write_index_file(plan, index, device, progress)
        if not plan.index_only:
            with progress.task("packing the index into the embedder in a device process"):
                device.write_bundle(model=plan.model, index=str(index), index_name=INDEX_NAME, out=str(payload))
        rep = verify_export(plan, device, index, None if plan.index_only else payload,
                            progress) if verify_bundle else None
        manifest = manifest_for(plan, index, payload, rep)
        if plan.base is not None:
            tmps[2].write_bytes(make_delta(plan, payload.read_bytes(), manifest, progress))
        tmps[1].write_bytes((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    from scannlite.store.oserrors import StorageError

    try:
        plan.cat.record_export(plan.snap.info.version, plan.out, manifest["sha256"]["file"], manifest)
    except StorageError as exc:  # the files are in place, whole: say so rather than "nothing was committed"
        raise StorageError(exc.path, exc.cause, "recording the export in",
                           f"{plan.out.name} and its manifest were written whole, but the catalog does not list "
                           "the export; run the same export again once there is space", exc.errno) from None
    return ExportResult(plan.out, manifest_path, manifest, manifest["verified"], manifest["parity"] or {},
                        targets[2] if plan.base is not None else None)
