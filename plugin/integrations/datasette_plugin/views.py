"""The plugin's routes, its search page and API, the search page's files, thumbnails and the index of catalogs
(the snapshots page is :mod:`.snapshots`). Catalog work (embedding, searching, hashing) runs in a
thread so that Datasette's event loop keeps serving other requests meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import NotFound, Response

from scannlite.plugin.integrations import search_page as web_page
from scannlite.plugin.integrations.datasette_plugin import thumbnails
from scannlite.plugin.integrations.datasette_plugin.catalogs import (
    CatalogDb,
    cached_snapshot,
    catalog_dbs,
    num_leaves,
    open_catalog,
    requested_catalog,
)
from scannlite.plugin.integrations.datasette_plugin.downloads import bundle_download, bundle_manifest, patch_download
from scannlite.plugin.integrations.datasette_plugin.forms import BadForm, read_fields
from scannlite.plugin.integrations.datasette_plugin.queries import BadQuery, SearchParams, parse_params, query_vector
from scannlite.plugin.integrations.datasette_plugin.snapshots import snapshots_page
from scannlite.plugin.integrations.datasette_plugin.urls import PREFIX, base_path
from scannlite.store.errors import ScannliteError
from scannlite.store.index.snapshot import get_snapshot, jsonable_metadata, list_snapshots, search

#: How long a recorded query waits for the catalog's writer lock before it is skipped (a build holds it for minutes).
RECORD_LOCK_TIMEOUT = 0.2


# ---- searching ---------------------------------------------------------------------------


def catalog_state(cat, version: int | None) -> dict:
    """What the search form needs: settings, snapshots for the picker, the chosen snapshot."""
    with cat.reading():
        snaps = list_snapshots(cat)
        chosen = get_snapshot(cat, version) if snaps else None
        leaves_total = num_leaves(cat, chosen.model_id) if chosen else None
        count = cat.count()
    return {
        "dim": cat.dim,
        "distance": cat.distance,
        "normalize": cat.normalize,
        "live_count": count,
        "text_embedder": cat.settings.get("text_embedder"),
        "image_embedder": cat.settings.get("image_embedder"),
        "thumbnails_root": cat.settings.get("thumbnails_root"),
        "snapshots": [{"version": s.version, "count": s.count, "created_at": s.created_at} for s in reversed(snaps)],
        "snapshot": chosen.version if chosen else None,
        "snapshot_count": chosen.count if chosen else None,
        "default_leaves": chosen.leaves_to_search if chosen else None,
        "num_leaves": leaves_total,
    }


def run_search(datasette, cdb: CatalogDb, params: SearchParams | None) -> dict:
    """Catalog state plus, when a query was given, the ranked results (blocking)."""
    with open_catalog(cdb) as cat:
        state = catalog_state(cat, params.snapshot if params else None)
        if params is None or not params.has_query:
            return state
        if state["snapshot"] is None:
            raise BadQuery("the catalog has no snapshot yet; run `scannlite build`")
        vector, how = query_vector(cat, params)
        snap = cached_snapshot(cat, state["snapshot"])
        leaves = None
        if not params.exact and snap.model is not None:
            leaves = min(params.leaves or snap.info.leaves_to_search or 1, snap.model.num_leaves)
        started = time.perf_counter()
        hits = search(cat, vector, k=params.k, leaves_to_search=leaves, exact=params.exact, snapshot=snap)[0]
        took = time.perf_counter() - started
        recorded = record_query(cdb, cat, vector, how)
        root = state["thumbnails_root"]
        results = []
        for rank, hit in enumerate(hits, 1):
            meta = jsonable_metadata(hit["metadata"])
            image = thumbnails.image_path_of(root, hit["id"], meta)
            thumb = (base_path(datasette, cdb.name, "/thumbnail") + "?" + urlencode({"path": image})) if image else None
            results.append(
                {"rank": rank, "id": hit["id"], "distance": hit["distance"], "metadata": meta, "thumbnail": thumb}
            )
    state.update(
        {
            "query": how,
            "k": params.k,
            "exact": params.exact,
            "leaves_to_search": leaves,
            "search_ms": round(took * 1000, 3),
            "results": results,
            "recorded": recorded,
        }
    )
    return state


def record_query(cdb: CatalogDb, cat, vector, how: dict) -> bool:
    """Offer a served query to the catalog's query sample when its owner turned recording on
    (``scannlite queries CATALOG record on``; off by default: it keeps what people typed, see
    docs/queries.md, "Privacy"). The page's own connection is read-only, so this opens the catalog
    for one short write; a busy writer or a read-only file skips the query (a sample may miss some)
    rather than failing the search."""
    from scannlite.store.catalog import query_sample
    from scannlite.store.catalog.catalog import Catalog

    if not cat.settings.get(query_sample.RECORD_SETTING) or cdb.immutable:
        return False
    try:
        with Catalog.open(cdb.directory, lock_timeout=RECORD_LOCK_TIMEOUT) as writable:
            text = how.get("text") if how.get("kind") == "text" else None
            query_sample.add(writable, vector, texts=[text], source="datasette")
    except (ScannliteError, OSError, sqlite3.Error):
        return False
    return True


def _api_payload(cdb: CatalogDb, state: dict) -> dict:
    return {
        "ok": True,
        "database": cdb.name,
        "snapshot": state["snapshot"],
        "count": state["snapshot_count"],
        "k": state["k"],
        "leaves_to_search": state["leaves_to_search"],
        "num_leaves": state["num_leaves"],
        "exact": state["exact"],
        "query": state["query"],
        "search_ms": state["search_ms"],
        "results": state["results"],
    }


async def search_api(datasette, request):
    """GET or POST q= (text), vector=, image/npy uploads, snapshot=, k=, leaves=, exact=."""
    cdb = await requested_catalog(datasette, request)
    try:
        params = parse_params(await read_fields(request))
        if not params.has_query:
            raise BadQuery("give a query: text (q=), a vector (vector=), an image or a .npy file")
        state = await asyncio.to_thread(run_search, datasette, cdb, params)
    except BadForm as exc:
        return Response.json({"ok": False, "error": str(exc)}, status=exc.status)
    except (BadQuery, ScannliteError) as exc:
        return Response.json({"ok": False, "error": str(exc)}, status=400)
    return Response.json(_api_payload(cdb, state))


def _api_link(datasette, cdb: CatalogDb, params: SearchParams | None) -> str | None:
    if params is None or not (params.text or isinstance(params.vector, str)):
        return None  # uploads cannot be repeated by a link
    args: dict[str, Any] = {"q": params.text} if params.text else {"vector": params.vector}
    args.update({"k": params.k, "exact": "1" if params.exact else "0"})
    if params.snapshot:
        args["snapshot"] = params.snapshot
    if params.leaves:
        args["leaves"] = params.leaves
    return base_path(datasette, cdb.name, "/search.json") + "?" + urlencode(args)


async def search_page(datasette, request):
    cdb = await requested_catalog(datasette, request)
    error, params, status, state = None, None, 200, None
    try:
        params = parse_params(await read_fields(request))
        state = await asyncio.to_thread(run_search, datasette, cdb, params)
    except (BadForm, BadQuery, ScannliteError) as exc:
        error, status = str(exc), getattr(exc, "status", 400)
    if state is None:  # show the form again, with the error, for the snapshot asked for if it exists
        try:
            state = await asyncio.to_thread(run_search, datasette, cdb, None)
        except ScannliteError as exc:
            raise NotFound(str(exc)) from None
    context = {
        **state,
        "database": cdb.name,
        "error": error,
        "params": params,
        "search_url": base_path(datasette, cdb.name),
        "snapshots_url": base_path(datasette, cdb.name, "/snapshots"),
        "api_url": _api_link(datasette, cdb, params) if state.get("results") is not None else None,
        "database_url": datasette.urls.database(cdb.name),
    }
    html = await datasette.render_template("scannlite_search.html", context, request=request)
    return Response.html(html, status=status)


# ---- the search page's files, thumbnails and the index ------------------------------------------


async def web_page_file(datasette, request):
    """The search page's own files (search.html, search-page/...), and nothing else from disk."""
    source = web_page.sources().get(request.url_vars["path"])
    if source is None or not source.is_file():
        raise NotFound("no such file of the search page (run `make web` to build its parts)")
    kind = {".html": "text/html; charset=utf-8", ".mjs": "text/javascript", ".js": "text/javascript"}
    media = kind.get(source.suffix, "application/wasm" if source.suffix == ".wasm" else "application/json")
    return Response(await asyncio.to_thread(source.read_bytes), content_type=media)


def _thumbnail(cdb: CatalogDb, rel: str) -> tuple[bytes, str]:
    with open_catalog(cdb) as cat:
        root = cat.settings.get("thumbnails_root")
    return thumbnails.render_thumbnail(thumbnails.resolve(root, rel))


async def thumbnail(datasette, request):
    cdb = await requested_catalog(datasette, request)
    try:
        data, content_type = await asyncio.to_thread(_thumbnail, cdb, request.args.get("path", ""))
    except thumbnails.Refused as exc:
        return Response.text(f"error: {exc}", status=exc.status)
    return Response(
        data, content_type=content_type, headers={"cache-control": "max-age=300", "x-content-type-options": "nosniff"}
    )


async def index(datasette, request):
    await datasette.ensure_permissions(request.actor, ["view-instance"])
    found = []
    for cdb in await catalog_dbs(datasette):
        if await datasette.permission_allowed(request.actor, "view-database", cdb.name, default=True):
            found.append(
                {
                    "name": cdb.name,
                    "search_url": base_path(datasette, cdb.name),
                    "snapshots_url": base_path(datasette, cdb.name, "/snapshots"),
                    "directory": str(cdb.directory),
                }
            )
    html = await datasette.render_template("scannlite_index.html", {"catalogs": found}, request=request)
    return Response.html(html)


ROUTES = [
    (rf"^{PREFIX}$", index),
    (rf"^{PREFIX}/-/web/(?P<path>[\w./-]+)$", web_page_file),
    (rf"^{PREFIX}/(?P<database>[^/]+)$", search_page),
    (rf"^{PREFIX}/(?P<database>[^/]+)/search\.json$", search_api),
    (rf"^{PREFIX}/(?P<database>[^/]+)/snapshots$", snapshots_page),
    (rf"^{PREFIX}/(?P<database>[^/]+)/thumbnail$", thumbnail),
    (rf"^{PREFIX}/(?P<database>[^/]+)/bundle/(?P<version>\d+)$", bundle_download),
    (rf"^{PREFIX}/(?P<database>[^/]+)/bundle/(?P<version>\d+)/manifest\.json$", bundle_manifest),
    (rf"^{PREFIX}/(?P<database>[^/]+)/bundle/(?P<version>\d+)/patch$", patch_download),
]
