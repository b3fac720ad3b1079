"""``scannlite export``: a snapshot as a verified TFLite Searcher bundle.

The on-device index is written from the snapshot's own partitions and codes (never retrained)
by scannlite's streamed writer (:mod:`.ondevice.index_writer`), packed into the embedder as its
SCANN_INDEX_FILE in a device process, then checked in a *second* device process, cold, as an
app would open it: the Task Library's answers must equal scannlite's device-equivalent search
(:mod:`scannlite.store.bundle.parity`). Only then are the bundle and its manifest moved into place;
a failure leaves the output path untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scannlite.store.atomic import replacing, scratch_beside
from scannlite.store.bundle import parity
from scannlite.store.bundle.device_side import DeviceSide
from scannlite.store.bundle.embedder_checks import EmbedderFacts, check_against_index, inspect_embedder
from scannlite.store.bundle.manifest import DeltaBase, delta_base, make_delta, manifest_for, manifest_path_for
from scannlite.store.bundle.ondevice.bundle_file import INDEX_FILE_NAME as INDEX_NAME
from scannlite.store.bundle.ondevice.index_writer import scann_config, write_index
from scannlite.store.bundle.ondevice.layout import DEFAULT_LAYOUT, LAYOUTS, slotted_offsets
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput, ScannliteError
from scannlite.store.index.snapshot import LoadedSnapshot, load_snapshot, metadata_of
from scannlite.store.oserrors import StorageError, export_floor, require_free
from scannlite.store.progress import SILENT, Progress

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

    @property
    def embedder_bytes(self) -> bytes:
        """The embedder the index is packed into; an index-only export has none (check :attr:`index_only`)."""
        if self.model is None:
            raise InvalidInput("an index-only export has no embedder")
        return self.model


def device_labels(cat: Catalog, snap: LoadedSnapshot, mode: str, limit: int) -> list[bytes]:
    """What each result carries on the device (``M_j``): the id, or the item's metadata."""
    if mode == "id":
        labels = [i.encode("utf-8") for i in snap.ids]
    elif mode == "metadata":
        meta = metadata_of(cat, snap.items)
        labels = []
        for item in snap.items.tolist():
            value: Any = meta.get(item)  # text, or bytes in a bytes catalog
            labels.append(b"" if value is None else value.encode("utf-8") if isinstance(value, str) else bytes(value))
    else:
        raise InvalidInput(f"--device-metadata must be 'id' or 'metadata', got {mode!r}")
    for ident, label in zip(snap.ids, labels):
        if len(label) > limit:
            raise InvalidInput(
                f"item {ident!r}: its device {mode} is {len(label)} bytes, over the limit of {limit} "
                "(raise --device-metadata-limit or use --device-metadata id)"
            )
    return labels


def probe_candidates(cat: Catalog, snap: LoadedSnapshot) -> list[str]:
    """Texts a text embedder is probed with: evenly spread items' text metadata, else their ids."""
    pick = parity.evenly(snap.items.tolist(), parity.PROBE_INPUTS)
    texts = [v for v in metadata_of(cat, pick).values() if isinstance(v, str) and v.strip()]
    return texts or parity.evenly(list(snap.ids), parity.PROBE_INPUTS)


def user_info(cat: Catalog, snap: LoadedSnapshot, leaves: int, mode: str) -> bytes:
    """USER_INFO: UTF-8 JSON (the Python Task Library cannot return non-UTF-8 user info)."""
    info = {
        "scannlite": 1,
        "snapshot": snap.info.version,
        "count": snap.count,
        "dim": cat.dim,
        "distance": cat.distance.value,
        "l2_normalize": cat.normalize,
        "leaves_to_search": leaves,
        "device_metadata": mode,
    }
    return json.dumps(info, sort_keys=True, separators=(",", ":")).encode()


def builder_arrays(snap: LoadedSnapshot) -> dict:
    """What tflite-support's builder takes besides the config: flat databases, the leaf of each row."""
    m = snap.partitions
    arrays: dict[str, Any] = {"partition_assignment": snap.leaves.astype(np.uint32)}
    if m.kind == "ah":
        arrays.update(embedding_dim=m.num_subspaces, hashed_database=np.ascontiguousarray(snap.codes).reshape(-1))
    else:
        arrays.update(
            embedding_dim=m.dim, float_database=np.ascontiguousarray(snap.vectors, dtype=np.float32).reshape(-1)
        )
    return arrays


# ---- plan ------------------------------------------------------------------------------------


def plan_export(
    cat: Catalog,
    *,
    out: Path,
    embedder: Path | None,
    version: int | None = None,
    leaves_to_search: int | None = None,
    index_only: bool = False,
    verify_bundle: bool = True,
    device_metadata: str = "id",
    device_metadata_limit: int = DEFAULT_DEVICE_METADATA_LIMIT,
    probe: Path | None = None,
    progress: Progress = SILENT,
    delta_from: Path | None = None,
    layout: str = DEFAULT_LAYOUT,
) -> ExportPlan:
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
    if leaves is None or not 1 <= leaves <= snap.partitions.num_leaves:
        raise InvalidInput(f"--leaves-to-search must be between 1 and {snap.partitions.num_leaves}, got {leaves}")
    labels = device_labels(cat, snap, device_metadata, device_metadata_limit)
    base = None
    if delta_from is not None:
        base = delta_base(cat, snap, delta_from, index_only)
        if base is not None and Path(delta_from).resolve() == out.resolve():
            raise InvalidInput(f"--delta-from {Path(delta_from).name} is the output; export to another --out")
    offsets = moved = None
    spec = LAYOUTS[layout]
    if spec is not None:
        sizes = np.diff(snap.offsets).astype(int).tolist()
        keep = base.offsets if base is not None and not base.retrained and spec["slots"] else None
        offsets, moved = slotted_offsets(sizes, keep, slack=spec["slots"])
    texts = images = None
    if verify_bundle and not index_only and facts is not None:
        texts, images = parity.probe_inputs(
            facts.kind,
            facts.description["inputs"][0]["shape"],
            probe_candidates(cat, snap) if facts.kind == "text" else [],
            probe,
        )
    return ExportPlan(
        cat=cat,
        snap=snap,
        out=out,
        index_only=index_only,
        model=model,
        facts=facts,
        embedder_name=None if embedder is None else Path(embedder).name,
        leaves=leaves,
        device_metadata=device_metadata,
        labels=labels,
        user_info=user_info(cat, snap, leaves, device_metadata),
        texts=texts if verify_bundle else None,
        images=images if verify_bundle else None,
        layout=layout,
        offsets=offsets,
        ids_moved_from_leaf=moved,
        base=base,
    )


# ---- compute ---------------------------------------------------------------------------------


def write_index_file(plan: ExportPlan, path: Path, device: DeviceSide, progress: Progress = SILENT) -> None:
    """The on-device index, streamed to ``path`` by scannlite's writer from the snapshot's own
    leaves and codes (layout "builder": tflite-support's builder in a device process)."""
    snap, m = plan.snap, plan.snap.partitions
    try:
        config = scann_config(
            distance=plan.cat.distance,
            centroids=m.centroids,
            leaves_to_search=plan.leaves,
            codebooks=m.codebooks if m.kind == "ah" else None,
            lookup_type=snap.info.lookup_type or "FLOAT",
        )
        with progress.task(f"writing the on-device index ({snap.count} items, {m.num_leaves} leaves)"):
            spec = LAYOUTS[plan.layout]
            if spec is None:
                path.write_bytes(
                    device.builder_index(
                        serialized_config=config, metadata=plan.labels, user_info=plan.user_info, **builder_arrays(snap)
                    )
                )
                return
            database = snap.codes if m.kind == "ah" else np.asarray(snap.vectors, dtype=np.float32)
            if database is None:
                raise ValueError("its codes were not loaded")
            with open(path, "wb") as f:
                write_index(
                    f,
                    config=config,
                    database=database,
                    sizes=np.diff(snap.offsets),
                    labels=plan.labels,
                    user_info=plan.user_info,
                    offsets=plan.offsets,
                    **spec["blocks"],
                )
    except ValueError as exc:  # a snapshot the device would mis-serve (codes beyond a codebook...)
        raise ScannliteError(f"cannot write the on-device index of snapshot {snap.info.version}: {exc}") from None


def verify_export(
    plan: ExportPlan, device: DeviceSide, index: Path, bundle: Path | None, progress: Progress = SILENT
) -> parity.ParityReport:
    cat, snap = plan.cat, plan.snap
    rep = parity.verify(
        device,
        index=index,
        bundle=bundle,
        reference=snap.device_index(),
        labels=plan.labels,
        count=snap.count,
        vectors_of=lambda rows: cat.vectors_for(snap.items[rows]),
        l2_normalize=cat.normalize,
        leaves=plan.leaves,
        texts=plan.texts,
        images=plan.images,
        progress=progress,
    )
    if rep.problems:
        raise VerificationFailed(
            f"the bundle failed verification and was not written: {rep.problems[0]}"
            + (f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else "")
        )
    return rep


# ---- the whole export ------------------------------------------------------------------------


def export(
    cat: Catalog,
    *,
    device: DeviceSide,
    out: Path,
    embedder: Path | None,
    version: int | None = None,
    leaves_to_search: int | None = None,
    index_only: bool = False,
    verify_bundle: bool = True,
    device_metadata: str = "id",
    device_metadata_limit: int = DEFAULT_DEVICE_METADATA_LIMIT,
    probe: Path | None = None,
    progress: Progress = SILENT,
    delta_from: Path | None = None,
    layout: str = DEFAULT_LAYOUT,
) -> ExportResult:
    """Plan (every check), then compute into temporary files beside ``out`` (the index, the
    bundle in a device process, the verification in a second one that opens them cold by path,
    the manifest, the patch from ``delta_from``); only then do the files appear, whole or not at
    all, and the catalog remembers the export. Nothing that grows with the catalog crosses a
    process boundary: device processes read and write the index and bundle files themselves."""
    plan = plan_export(
        cat,
        out=out,
        embedder=embedder,
        version=version,
        leaves_to_search=leaves_to_search,
        index_only=index_only,
        verify_bundle=verify_bundle,
        device_metadata=device_metadata,
        device_metadata_limit=device_metadata_limit,
        probe=probe,
        progress=progress,
        delta_from=delta_from,
        layout=layout,
    )
    require_free(
        plan.out.parent, export_floor(plan, LAYOUTS), f"exporting snapshot {plan.snap.info.version} to {plan.out.name}"
    )
    manifest_path = manifest_path_for(plan.out)
    targets = [plan.out, manifest_path]
    if plan.base is not None:
        from scannlite.store.bundle.delta import patch_path_for

        targets.append(patch_path_for(plan.out, plan.base.sha256))
    with replacing(*targets) as tmps, scratch_beside(plan.out) as index_tmp:
        # Absolute: a warm device worker may have started in another directory.
        payload, index_tmp = tmps[0].absolute(), index_tmp.absolute()
        index = payload if plan.index_only else index_tmp
        write_index_file(plan, index, device, progress)
        if not plan.index_only:
            with progress.task("packing the index into the embedder in a device process"):
                device.write_bundle(
                    model=plan.embedder_bytes, index=str(index), index_name=INDEX_NAME, out=str(payload)
                )
        rep = (
            verify_export(plan, device, index, None if plan.index_only else payload, progress)
            if verify_bundle
            else None
        )
        manifest = manifest_for(plan, index, payload, rep)
        if plan.base is not None:
            tmps[2].write_bytes(make_delta(plan, payload.read_bytes(), manifest, progress))
        tmps[1].write_bytes((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    try:
        plan.cat.record_export(plan.snap.info.version, plan.out, manifest["sha256"]["file"], manifest)
    except StorageError as exc:  # the files are in place, whole: say so rather than "nothing was committed"
        raise StorageError(
            exc.path,
            exc.cause,
            "recording the export in",
            f"{plan.out.name} and its manifest were written whole, but the catalog does not list "
            "the export; run the same export again once there is space",
            exc.errno,
        ) from None
    return ExportResult(
        plan.out,
        manifest_path,
        manifest,
        manifest["verified"],
        manifest["parity"] or {},
        targets[2] if plan.base is not None else None,
    )
