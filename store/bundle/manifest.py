"""What an export writes beside its bundle: the manifest (BUNDLE.manifest.json) and, with --delta-from, the patch.

The manifest records what the bundle holds and how it was checked (docs/ecosystem.md); the patch turns the base
bundle into the new one (docs/delta-bundles.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata as pkg_metadata
from pathlib import Path
from typing import TYPE_CHECKING

from scannlite.store.bundle import parity
from scannlite.store.bundle.ondevice.bundle_file import INDEX_FILE_NAME as INDEX_NAME
from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.layout import LAYOUTS
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.digests import sha256, sha256_file
from scannlite.store.errors import InvalidInput, ScannliteError
from scannlite.store.index.recall_estimate import RecallEstimate
from scannlite.store.index.snapshot import LoadedSnapshot, get_snapshot
from scannlite.store.progress import SILENT, Progress
from scannlite.store.vocabulary import Distance

if TYPE_CHECKING:
    from scannlite.store.bundle.export import ExportPlan


@dataclass
class DeltaBase:
    """The bundle a patch starts from (``--delta-from``): checked, and what the layout keeps of it."""

    path: Path
    data: bytes
    sha256: str
    snapshot: int
    retrained: bool  # the new snapshot has another partition model: every item moved
    offsets: list[int]  # its index's global_partition_offsets


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
        raise InvalidInput(
            f"{what} differs from its manifest (sha256 {digest[:12]}..., manifest "
            f"{str(recorded)[:12]}...): it was changed after export"
        )
    if digest not in {e["sha256"] for e in cat.exports()}:
        raise InvalidInput(f"{what} was not exported from catalog {cat.path} (no export of it is recorded there)")
    if (manifest.get("kind") == "index") != index_only:
        kind = "a bare index" if manifest.get("kind") == "index" else "a bundle"
        raise InvalidInput(
            f"{what} is {kind}; a patch joins two files of the same kind "
            f"({'drop' if index_only else 'add'} --index-only)"
        )
    try:
        from scannlite.store.bundle.ondevice.bundle_file import read_bundle
        from scannlite.store.bundle.ondevice.index_file import read_index

        offsets = read_index(data if index_only else read_bundle(data).require_index()).offsets
    except IndexFormatError as exc:
        raise InvalidInput(f"{what} is not a valid bundle: {exc}") from None
    with cat.reading():
        try:
            old_model = get_snapshot(cat, version).model_id
        except ScannliteError:
            old_model = None  # gc forgot it: nothing says the leaves are the same
    return DeltaBase(path, data, digest, version, old_model != snap.info.model_id, offsets)


def manifest_path_for(out: Path) -> Path:
    """``BUNDLE.tflite`` -> ``BUNDLE.manifest.json`` (likewise for a bare ``.ldb``)."""
    return out.with_suffix(".manifest.json")


def file_facts(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file, read as it streams: an index may be larger than is worth holding."""
    return path.stat().st_size, sha256_file(path)


def size_split(file_bytes: int, index_bytes: int, metadata_bytes: int, is_model: bool) -> dict:
    """What a bundle's bytes are for: ``model`` (the embedder and its packed tokenizer files),
    ``index`` (partitions, codes, config) and ``metadata`` (the per-item results' payload
    inside the index). Why: users see what they ship to a phone and which part to shrink."""
    return {
        "model": file_bytes - index_bytes if is_model else 0,
        "index": index_bytes - metadata_bytes,
        "metadata": metadata_bytes,
    }


def manifest_for(plan: ExportPlan, index: Path, payload: Path, rep: parity.ParityReport | None) -> dict:
    cat, snap, m = plan.cat, plan.snap, plan.snap.partitions
    index_size, index_sha = file_facts(index)
    file_size, file_sha = (index_size, index_sha) if payload == index else file_facts(payload)
    floor = {
        "codes": int(snap.codes.nbytes) if snap.codes is not None else int(snap.count * cat.dim * 4),
        "centroids": int(m.centroids.nbytes),
        "codebooks": int(sum(b.nbytes for b in m.codebooks)) if m.codebooks else 0,
        "metadata": int(sum(len(x) for x in plan.labels)),
        "model": 0 if plan.index_only else len(plan.embedder_bytes),
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
        "embedder": None
        if facts is None
        else {
            "file": plan.embedder_name,
            "kind": facts.kind,
            "route": facts.route,
            "output_dim": facts.output_dim,
            "sha256": sha256(plan.embedder_bytes),
        },
        "sizes": {
            "file": file_size,
            "index": index_size,
            "floor": sum(floor.values()),
            **{f"floor_{k}": v for k, v in floor.items()},
            "split": size_split(file_size, index_size, floor["metadata"], not plan.index_only),
        },
        "sha256": {"file": file_sha, "index": index_sha},
        "index_file_name": None if plan.index_only else INDEX_NAME,
        "layout": {
            "name": plan.layout,
            "ids_moved_from_leaf": plan.ids_moved_from_leaf,
            "partition_offsets": "builder"
            if plan.offsets is None
            else "slotted"
            if (LAYOUTS[plan.layout] or {}).get("slots")
            else "dense",
            "writer": "tflite-support index_builder" if plan.offsets is None else "scannlite",
        },
        "verified": rep is not None,
        "parity": rep.to_json() if rep is not None else None,
        "verified_by": rep.verified_by if rep is not None else [],
        "device_latency_ms": rep.latency_ms if rep is not None else None,
        "recall": recall_summary(snap, plan.leaves),
        "query_recall": recall_summary(snap, plan.leaves, "query_recall"),
        "recall_on": snap.info.build.get("recall_on"),
        "versions": {"scannlite": _version("scannlite"), "tflite-support": _version("tflite-support")},
    }


def recall_summary(snap: LoadedSnapshot, leaves: int, key: str = "recall") -> dict | None:
    """The snapshot's recall estimate (``recall``: leave-one-out, "queries like your items"; ``query_recall``: on
    the catalog's query sample, "your queries"), with the figure at the leaves this bundle searches."""
    est = RecallEstimate.from_json(snap.info.build.get(key))
    return None if est is None else {**est.to_json(), "at_leaves_searched": est.at(leaves)}


def make_delta(plan: ExportPlan, payload: bytes, manifest: dict, progress: Progress = SILENT) -> bytes:
    """The patch from ``plan.base`` to ``payload``; its entry goes into ``manifest["patches"]``."""
    from scannlite.store.bundle.delta import make_patch, patch_path_for

    base = plan.base
    if base is None:
        raise ValueError("a patch needs the export's base (--delta-from)")
    name = patch_path_for(plan.out, base.sha256).name
    with progress.task(f"making the patch from {base.path.name} (zstd patch-from)"):
        patch, entry = make_patch(
            base.data,
            payload,
            {
                "file": name,
                "base": {"file": base.path.name, "snapshot": base.snapshot},
                "result": {"file": plan.out.name, "snapshot": plan.snap.info.version},
            },
        )
    entry = {
        **entry,
        "bytes": len(patch),
        "sha256": sha256(patch),
        "share_of_result": round(len(patch) / max(len(payload), 1), 6),
        "retrained": base.retrained,
    }
    if base.retrained:
        entry["warning"] = (
            f"the delta is large ({len(patch):,} bytes, {100 * entry['share_of_result']:.0f}% of the "
            f"bundle): snapshot {plan.snap.info.version} has a retrained partition model, unlike "
            f"snapshot {base.snapshot}, and retraining moves every item to new leaves and codes"
        )
        progress.note(f"warning: {entry['warning']}")
    manifest["patches"] = [entry]
    return patch


def _version(dist: str) -> str | None:
    try:
        return pkg_metadata.version(dist)
    except pkg_metadata.PackageNotFoundError:
        return None


def manifest_beside(path: Path) -> dict | None:
    """The export manifest beside a bundle, if there is a readable one."""
    mpath = manifest_path_for(path)
    if mpath.is_file():
        try:
            return json.loads(mpath.read_text())
        except ValueError:
            return None
    return None


def scannlite_user_info(user_info: bytes) -> dict | None:
    """An index's USER_INFO as scannlite writes it (JSON with "scannlite"), else None."""
    try:
        info = json.loads(user_info.decode()) if user_info else None
    except (UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("scannlite") else None


def l2_normalize_said(user_info: dict | None, manifest: dict | None) -> bool:
    """Whether apps must set l2_normalize: the index's own word first, then its manifest's."""
    for said in (user_info, manifest):
        if said is not None:
            return bool(said.get("l2_normalize"))
    return False
