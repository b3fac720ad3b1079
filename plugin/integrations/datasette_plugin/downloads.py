"""Downloads of what a snapshot exported: its bundle, its manifest and its patch from an older bundle.

A file is served only while its bytes still hash to what the export recorded (the export verified that file with
the Task Library); otherwise the page answers 409 and says to export again (docs/ecosystem.md).
"""

from __future__ import annotations

import asyncio

from datasette.utils.asgi import AsgiFileDownload, NotFound, Response

from scannlite.plugin.integrations.datasette_plugin.catalogs import (
    CatalogDb,
    newest_exports,
    open_catalog,
    requested_catalog,
)
from scannlite.store.digests import sha256_file


def _export_of(cdb: CatalogDb, version: int) -> dict:
    with open_catalog(cdb) as cat:
        export = newest_exports(cat).get(version)
    if export is None:
        raise NotFound(
            f"snapshot {version} has no exported bundle whose file still exists "
            f"(export one with `scannlite export CATALOG --snapshot {version} ...`)"
        )
    return export


async def bundle_download(datasette, request):
    """The newest bundle exported from a snapshot, served only if its bytes still hash to what
    the export recorded (the export verified that file with the Task Library)."""
    cdb = await requested_catalog(datasette, request)
    version = int(request.url_vars["version"])
    export = await asyncio.to_thread(_export_of, cdb, version)
    return await _download_if_unchanged(export)


async def patch_download(datasette, request):
    """The patch to a snapshot's bundle from an older one, served only if its bytes still hash to
    what the export recorded (``bundle patch`` checks the result's hash again on the phone side)."""
    cdb = await requested_catalog(datasette, request)
    version = int(request.url_vars["version"])
    export = await asyncio.to_thread(_export_of, cdb, version)
    patch = export["patch"]
    if patch is None:
        raise NotFound(f"the bundle of snapshot {version} has no patch (export it with --delta-from OLD.tflite)")
    return await _download_if_unchanged(patch)


async def _download_if_unchanged(exported: dict):
    """``exported`` (a bundle or patch the export recorded: path, name, sha256) as a download,
    or a 409 when its bytes no longer hash to what was recorded."""
    actual = await asyncio.to_thread(sha256_file, exported["path"])
    if actual != exported["sha256"]:
        return Response.text(
            f"error: {exported['name']} changed after it was exported (sha256 {actual[:12]}..., "
            f"recorded {str(exported['sha256'])[:12]}...); export the snapshot again",
            status=409,
        )
    return AsgiFileDownload(
        exported["path"],
        filename=exported["name"],
        content_type="application/octet-stream",
        headers={"x-scannlite-sha256": actual, "x-content-type-options": "nosniff"},
    )


async def bundle_manifest(datasette, request):
    cdb = await requested_catalog(datasette, request)
    export = await asyncio.to_thread(_export_of, cdb, int(request.url_vars["version"]))
    return Response.json(export["manifest"])
