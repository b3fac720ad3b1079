"""The snapshots page (``/-/scannlite/<database>/snapshots``): every snapshot with its size, how it was built and
its recall estimate; what changed in the chosen one; the verified bundles and patches ``scannlite export`` wrote,
with their download links and the offline search page (docs/web.md).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from datasette.utils.asgi import NotFound, Response

from scannlite.plugin.integrations import search_page as web_page
from scannlite.plugin.integrations.datasette_plugin.catalogs import (
    CatalogDb,
    newest_exports,
    num_leaves,
    open_catalog,
    requested_catalog,
)
from scannlite.plugin.integrations.datasette_plugin.recall_chart import recall_svg
from scannlite.plugin.integrations.datasette_plugin.urls import PREFIX, base_path
from scannlite.store.errors import ScannliteError
from scannlite.store.index.recall_estimate import RecallEstimate
from scannlite.store.index.snapshot import diff, get_snapshot, list_snapshots

CHANGES_SHOWN = 200


def _build_text(build: dict) -> str:
    """Why a snapshot was built the way it was, in the words `scannlite build` prints."""
    if build.get("retrained"):
        reasons = build.get("reasons") or []
        return "retrained: " + ("; ".join(reasons) if reasons else "no reason recorded")
    h = build.get("health") or {}
    text = f"incremental: {build.get('encoded', 0)} vectors encoded"
    if h:
        text += (
            f"; not retrained: {h.get('untrained', 0)} of {h.get('live', 0)} vectors added since training, "
            f"imbalance {h.get('imbalance', 1.0):.2f}, every health check passed"
        )
    return text


def snapshots_state(datasette, cdb: CatalogDb, version: int | None) -> dict:
    with open_catalog(cdb) as cat:
        with cat.reading():
            snaps = list_snapshots(cat)
            exports = newest_exports(cat)
            leaves = {s.model_id: num_leaves(cat, s.model_id) for s in snaps}
        chosen = get_snapshot(cat, version) if snaps else None
        changes = None
        if chosen is not None:
            earlier = [s for s in snaps if s.version < chosen.version]
            if earlier:
                d = diff(cat, earlier[-1].version, chosen.version)
            else:
                with cat.reading():
                    d = {
                        "from": None,
                        "to": chosen.version,
                        "added": cat.ids_at(chosen.seq),
                        "removed": [],
                        "changed": [],
                    }
            changes = {
                key: {"count": len(d[key]), "shown": d[key][:CHANGES_SHOWN]} for key in ("added", "removed", "changed")
            }
            changes.update({"from": d["from"], "to": d["to"]})
    rows = []
    previous = None
    for s in snaps:
        export = exports.get(s.version)
        rows.append(
            {
                "version": s.version,
                "seq": s.seq,
                "count": s.count,
                "created_at": s.created_at,
                "delta": None if previous is None else s.count - previous.count,
                "retrained": bool(s.build.get("retrained")),
                "build": _build_text(s.build),
                "leaves": leaves.get(s.model_id),
                "leaves_to_search": s.leaves_to_search,
                "lookup_type": s.lookup_type,
                "recall": _recall_at(s),
                "changes_url": base_path(datasette, cdb.name, "/snapshots") + f"?version={s.version}",
                "search_url": base_path(datasette, cdb.name) + f"?snapshot={s.version}",
                "bundle": None
                if export is None
                else {
                    **{k: export[k] for k in ("name", "sha256", "bytes", "created_at", "verified")},
                    "url": base_path(datasette, cdb.name, f"/bundle/{s.version}"),
                    "manifest_url": base_path(datasette, cdb.name, f"/bundle/{s.version}/manifest.json"),
                    "page_url": _page_url(datasette, cdb, s.version, export),
                    "patch": None
                    if export["patch"] is None
                    else {
                        **{k: export["patch"][k] for k in ("name", "bytes", "base_snapshot", "base_sha256", "warning")},
                        "share": export["patch"]["bytes"] / max(export["bytes"], 1),
                        "url": base_path(datasette, cdb.name, f"/bundle/{s.version}/patch"),
                    },
                },
            }
        )
        previous = s
    return {
        "snapshots": list(reversed(rows)),
        "chosen": chosen.version if chosen else None,
        "changes": changes,
        "recall": _recall_state(chosen),
    }


def _page_url(datasette, cdb: CatalogDb, version: int, export: dict) -> str | None:
    """The offline search page for a text bundle (docs/web.md), when its parts are built (`make web`)."""
    embedder = (export.get("manifest") or {}).get("embedder")
    if not isinstance(embedder, dict) or embedder.get("kind") != "text" or web_page.missing():
        return None
    bundle = base_path(datasette, cdb.name, f"/bundle/{version}")
    return datasette.urls.path(f"{PREFIX}/-/web/{web_page.PAGE}") + "?" + urlencode({"bundle": bundle})


def _recall_at(info) -> float | None:
    est = RecallEstimate.from_json(info.build.get("recall"))
    return est.at(info.leaves_to_search) if est is not None and info.leaves_to_search else None


def _recall_state(info) -> dict | None:
    """The chosen snapshot's recall estimate, as figures and as a curve."""
    est = RecallEstimate.from_json(info.build.get("recall")) if info is not None else None
    if est is None:
        return None
    target = info.build.get("recall_target")
    q = RecallEstimate.from_json(info.build.get("query_recall"))
    if q is not None and q.ladder != est.ladder:
        q = None  # made for other partitions: not drawn on this ladder
    return {
        "k": est.k,
        "sample": est.sample,
        "reused_from": est.reused_from,
        "leaves": info.leaves_to_search,
        "at": est.at(info.leaves_to_search) if info.leaves_to_search else None,
        "note": info.build.get("leaves_note"),
        "points": list(zip(est.ladder, est.recall)),
        "queries": None
        if q is None
        else {
            "sample": q.sample,
            "at": q.at(info.leaves_to_search) if info.leaves_to_search else None,
            "stderr": q.stderr,
            "points": list(zip(q.ladder, q.recall)),
            "target_on_them": info.build.get("recall_on") == "queries",
        },
        "svg": recall_svg(
            est.ladder, est.recall, info.leaves_to_search, target, est.k, q.recall if q is not None else None
        ),
    }


async def snapshots_page(datasette, request):
    cdb = await requested_catalog(datasette, request)
    raw = request.args.get("version", "").strip()
    if raw and not raw.isdigit():
        raise NotFound(f"version must be a snapshot number, got {raw[:40]!r}")
    try:
        state = await asyncio.to_thread(snapshots_state, datasette, cdb, int(raw) if raw else None)
    except ScannliteError as exc:
        raise NotFound(str(exc)) from None
    context = {
        **state,
        "database": cdb.name,
        "search_url": base_path(datasette, cdb.name),
        "database_url": datasette.urls.database(cdb.name),
    }
    html = await datasette.render_template("scannlite_snapshots.html", context, request=request)
    return Response.html(html)
