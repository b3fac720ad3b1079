"""scannlite in Datasette: semantic search, snapshots and bundles for catalogs Datasette serves.

Run ``datasette CATALOG/catalog.db``; every served database that is a scannlite catalog gets

* ``/-/scannlite/<database>``: a search page (text through the catalog's text embedder or a
  vector, an uploaded image through its image embedder, snapshot, k, leaves, exact);
* ``/-/scannlite/<database>/search.json``: the same search as JSON (GET or POST);
* ``/-/scannlite/<database>/snapshots``: versions, counts, how each was built, what changed,
  and downloads of verified bundles that ``scannlite export`` wrote;

linked from the database page's actions and from the menu. The plugin only reads: see
:mod:`.catalogs`. Registered through the ``datasette`` entry-point group.
"""

from __future__ import annotations

from datasette import hookimpl

from scannlite.plugin.integrations.datasette_plugin.catalogs import catalog_db, catalog_dbs
from scannlite.plugin.integrations.datasette_plugin.urls import PREFIX, base_path
from scannlite.plugin.integrations.datasette_plugin.views import ROUTES


@hookimpl
def register_routes(datasette):
    return ROUTES


@hookimpl
def skip_csrf(datasette, scope):
    # Every endpoint here only reads, so a forged cross-site request can change nothing;
    # multipart uploads from the search form then need no token.
    return scope.get("path", "").startswith(PREFIX + "/")


@hookimpl
def database_actions(datasette, actor, database, request):
    async def links():
        cdb = await catalog_db(datasette, database)
        if cdb is None:
            return []
        return [
            {"href": base_path(datasette, database), "label": "Semantic search (scannlite)"},
            {"href": base_path(datasette, database, "/snapshots"), "label": "Snapshots and bundles (scannlite)"},
        ]

    return links


@hookimpl
def menu_links(datasette, actor, request):
    async def links():
        out = []
        for cdb in await catalog_dbs(datasette):
            if await datasette.permission_allowed(actor, "view-database", cdb.name, default=True):
                out.append({"href": base_path(datasette, cdb.name), "label": f"Semantic search: {cdb.name}"})
        return out

    return links
