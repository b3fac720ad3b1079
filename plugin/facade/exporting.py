"""``export`` for the Python API: which embedder a snapshot's bundle is packed into, and the export itself in a
device process (the Task Library verifies it; docs/ondevice-format.md).

Without an ``embedder``, the catalog's configured text embedder's ``.tflite`` model is used, else its image
embedder's; an embedder that names no TFLite model is no bundle's embedder.
"""

from __future__ import annotations

from pathlib import Path

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.progress import Progress


def export_snapshot(
    cat: Catalog,
    out: str | Path,
    *,
    embedder: str | Path | None,
    snapshot: int | None,
    leaves_to_search: int | None,
    index_only: bool,
    verify: bool,
    probe: str | Path | None,
    progress: Progress,
) -> dict:
    """Write a snapshot as a verified bundle, or its bare index; returns the manifest with ``path`` and
    ``manifest_path``."""
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.bundle.export import export

    if embedder is None and not index_only:
        embedder = configured_tflite_embedder(cat)
    r = export(
        cat,
        device=DeviceProcesses(),
        out=Path(out),
        embedder=_bundle_model(embedder) if embedder else None,
        version=snapshot,
        leaves_to_search=leaves_to_search,
        index_only=index_only,
        verify_bundle=verify,
        probe=Path(probe) if probe else None,
        progress=progress,
    )
    return {**r.manifest, "path": str(r.path), "manifest_path": str(r.manifest_path)}


def _bundle_model(embedder: str | Path) -> Path:
    from scannlite.plugin.embedders.registry import bundle_model

    return bundle_model(embedder)


def configured_tflite_embedder(cat: Catalog) -> str:
    """The ``.tflite`` file of the catalog's text embedder, else of its image embedder."""
    from scannlite.plugin.embedders import registry as embedders

    for kind in ("text", "image"):
        value = cat.settings.get(f"{kind}_embedder")
        if value:
            path = embedders.tflite_file(value, kind)
            if path:
                return path
    raise InvalidInput(
        "name the .tflite embedder to pack the index into (embedder=...); the catalog has no TFLite embedder configured"
    )
