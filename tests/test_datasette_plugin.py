"""The Datasette plugin against a real Datasette server on a loopback port, real catalogs, and
Google's regex text embedder run by the Task Library in device processes.

The server and the catalogs are built by tests/support/datasette_site.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index import snapshot
from scannlite.store.index.build import build
from scannlite.store.workers.boundary import run_in
from tests.support.datasette_site import (
    ENTRY_POINT_HINT,
    REGEX_MODEL,
    SENTENCES,
    XSS,
    XSS_TEXT,
    DatasetteServer,
    build_photo_catalog,
    build_review_catalog,
    embed_texts,
    file_state,
    get_json,
    image_embedder,
    multipart,
    npy_bytes,
    request,
    run_cli,
    same_hits,
)

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.usefixtures("fixtures_dir")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One server for the module: the review catalog, a photo catalog with thumbnails and 8
    leaves, a catalog that changes while served, and a plain SQLite file that is no catalog."""
    tmp = tmp_path_factory.mktemp("datasette")
    reviews = build_review_catalog(tmp / "reviews", export_to=tmp / "bundles" / "reviews.tflite")

    photos, images, photos_x = build_photo_catalog(tmp)
    rng = np.random.default_rng(12)
    with Catalog.create(tmp / "live", 4) as cat:
        cat.add(["a", "b"], rng.standard_normal((2, 4)))
        build(cat)

    plain = tmp / "plain.db"
    sqlite3.connect(plain).executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")

    with DatasetteServer(
        reviews / "catalog.db", photos / "catalog.db", tmp / "live" / "catalog.db", plain, log=tmp / "datasette.log"
    ) as server:
        plugins = get_json(server.url + "/-/plugins.json")[1]
        if not any(p["name"] == "scannlite" and "register_routes" in p["hooks"] for p in plugins):
            pytest.fail(ENTRY_POINT_HINT)
        names = server.database_names()
        yield {
            "url": server.url,
            "tmp": tmp,
            "reviews": reviews,
            "photos": tmp / "photos",
            "live": tmp / "live",
            "images": images,
            "photos_x": photos_x,
            "bundle": tmp / "bundles" / "reviews.tflite",
            "name": {key: names[str((tmp / key / "catalog.db").resolve())] for key in ("reviews", "photos", "live")},
            "plain": names[str(plain.resolve())],
        }


def api(site, which: str, **params):
    return get_json(f"{site['url']}/-/scannlite/{site['name'][which]}/search.json?" + urllib.parse.urlencode(params))


def page(site, which: str, tail: str = "", **params) -> tuple[int, str]:
    status, _, body = request(
        f"{site['url']}/-/scannlite/{site['name'][which]}{tail}?" + urllib.parse.urlencode(params)
    )
    return status, body.decode()


def expected(cat_path: Path, vector, **kw) -> list[dict]:
    with Catalog.open(cat_path) as cat:
        return snapshot.search(cat, vector, **kw)[0]


# ---- tests -------------------------------------------------------------------------------------


def test_catalogs_are_detected_and_linked(site):
    for key in ("reviews", "photos"):
        status, _, body = request(f"{site['url']}/{site['name'][key]}")
        html = body.decode()
        assert status == 200
        assert f'href="/-/scannlite/{site["name"][key]}"' in html and "Semantic search (scannlite)" in html
        assert f'href="/-/scannlite/{site["name"][key]}/snapshots"' in html
    _, _, body = request(f"{site['url']}/{site['plain']}")
    assert "Semantic search (scannlite)" not in body.decode()
    status, index = page(site, "reviews")[0], request(site["url"] + "/-/scannlite")[2].decode()
    assert status == 200 and all(f"/-/scannlite/{site['name'][k]}" in index for k in ("reviews", "photos", "live"))
    assert f'/-/scannlite/{site["plain"]}"' not in index
    assert request(f"{site['url']}/-/scannlite/{site['plain']}")[0] == 404
    assert request(f"{site['url']}/-/scannlite/no-such-db/search.json?q=x")[0] == 404


def test_text_query_is_embedded_by_the_configured_embedder(site):
    query = "a funny comedy with a great cast"
    status, data = api(site, "reviews", q=query, k=8)
    assert status == 200, data
    assert data["query"]["kind"] == "text" and data["query"]["embedder"] == REGEX_MODEL.name
    assert data["snapshot"] == 2 and data["count"] == 35
    same_hits(data["results"], expected(site["reviews"], embed_texts([query]), k=8))
    # The same text posted as a form gives the same answer.
    status, posted = get_json(
        f"{site['url']}/-/scannlite/{site['name']['reviews']}/search.json",
        data=urllib.parse.urlencode({"q": query, "k": 8}).encode(),
    )
    assert status == 200 and posted["results"] == data["results"]


def test_vector_queries_match_the_scannlite_cli(site, tmp_path):
    """GET vector=, POST .npy and JSON bodies give exactly what `scannlite search --json` prints,
    for the default leaves, one leaf, and exact search."""
    q = site["photos_x"][5] + 0.3 * np.random.default_rng(3).standard_normal(8).astype(np.float32)
    np.save(tmp_path / "q.npy", q)
    name = site["name"]["photos"]
    for params, cli in (({}, []), ({"leaves": 1}, ["--leaves-to-search", "1"]), ({"exact": "true"}, ["--exact"])):
        want = json.loads(
            run_cli("search", site["photos"], "--vector-file", tmp_path / "q.npy", "-k", 6, "--json", *cli).stdout
        )[0]
        status, data = api(site, "photos", vector=",".join(repr(float(v)) for v in q), k=6, **params)
        assert status == 200, data
        same_hits(data["results"], want)
        body, headers = multipart(
            {"k": "6", **{k: str(v) for k, v in params.items()}}, {"npy": ("q.npy", npy_bytes(q))}
        )
        status, posted = get_json(f"{site['url']}/-/scannlite/{name}/search.json", data=body, headers=headers)
        assert status == 200 and posted["results"] == data["results"], posted
        status, as_json = get_json(
            f"{site['url']}/-/scannlite/{name}/search.json",
            data=json.dumps({"vector": q.tolist(), "k": 6, **params}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 200 and as_json["results"] == data["results"]
    assert api(site, "photos", vector=",".join(map(str, q)), leaves=1)[1]["leaves_to_search"] == 1
    assert api(site, "photos", vector=",".join(map(str, q)))[1]["leaves_to_search"] == 2
    assert api(site, "photos", vector=",".join(map(str, q)), leaves=99)[1]["leaves_to_search"] == 8


def test_snapshot_picker_searches_older_snapshots(site):
    gone = embed_texts([SENTENCES[1]])[0]  # r01 was deleted in snapshot 2
    vector = ",".join(repr(float(v)) for v in gone)
    old = api(site, "reviews", vector=vector, snapshot=1, k=3, exact=1)[1]
    new = api(site, "reviews", vector=vector, snapshot=2, k=3, exact=1)[1]
    assert old["snapshot"] == 1 and old["results"][0]["id"] == "r01"
    assert new["snapshot"] == 2 and "r01" not in [h["id"] for h in new["results"]]
    status, html = page(site, "reviews", snapshot=1)
    assert status == 200 and '<option value="1" selected>' in html


def test_metadata_is_escaped_on_the_page(site):
    status, html = page(site, "reviews", q=XSS_TEXT, k=5)
    assert status == 200
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<tr data-rank="1">' in html and '<td class="id">xss</td>' in html.split('<tr data-rank="2">')[0]
    data = api(site, "reviews", q=XSS_TEXT, k=1)[1]
    assert data["results"][0]["metadata"] == XSS  # JSON carries the value itself


def test_bad_input_is_one_clear_line(site):
    cases = [
        ({"q": "x", "k": 0}, "k must be between 1 and 1000"),
        ({"q": "x", "exact": "maybe"}, "exact must be true or false"),
        ({"vector": "1,2,3"}, "the vector has 3 numbers, the catalog has 16-d vectors"),
        ({"vector": "1,two"}, "vector value 2 ('two') is not a number"),
        ({"q": "x", "snapshot": 9}, "has no snapshot 9"),
        ({"q": "x", "vector": "1"}, "give one query, not both text and vector"),
        ({}, "give a query"),
    ]
    for params, message in cases:
        status, data = api(site, "reviews", **params)
        assert status == 400 and data["ok"] is False and message in data["error"], (params, data)
        assert "\n" not in data["error"]
    body, headers = multipart({}, {"image": ("cat.png", b"\x89PNG not really")})
    status, data = get_json(
        f"{site['url']}/-/scannlite/{site['name']['reviews']}/search.json", data=body, headers=headers
    )
    assert status == 400 and "no image embedder" in data["error"]
    body, headers = multipart({}, {"npy": ("q.npy", b"garbage")})
    status, data = get_json(
        f"{site['url']}/-/scannlite/{site['name']['reviews']}/search.json", data=body, headers=headers
    )
    assert status == 400 and data["error"] == "the uploaded file is not a valid .npy file"
    # The page shows the error above the form, with status 400.
    status, html = page(site, "reviews", q="x", k="ten")
    assert status == 400 and "k must be a whole number, got &#39;ten&#39;" in html and 'id="scannlite-search"' in html


def test_a_catalog_without_text_embedder_takes_vectors_in_the_text_box(site):
    status, html = page(site, "photos")
    assert status == 200 and "No text embedder is configured" in html and 'name="image" accept="image/*">' in html
    q = site["photos_x"][40]
    status, data = api(site, "photos", q=", ".join(map(str, q)), k=3)
    assert status == 200 and data["results"][0]["id"] == "v40"
    status, data = api(site, "photos", q="red sunset", k=3)
    assert status == 400 and "has no text embedder" in data["error"] and "8 comma-separated numbers" in data["error"]


def test_image_query_goes_through_the_image_embedder(site):
    photo = (site["images"] / "img" / "07.png").read_bytes()
    body, headers = multipart({"k": "5", "exact": "1"}, {"image": ("07.png", photo)})
    status, data = get_json(
        f"{site['url']}/-/scannlite/{site['name']['photos']}/search.json", data=body, headers=headers
    )
    assert status == 200, data
    assert data["query"]["kind"] == "image" and data["query"]["file"] == "07.png"
    assert data["results"][0]["id"] == "img/07.png" and data["results"][0]["distance"] == pytest.approx(-1.0, abs=1e-5)
    from PIL import Image

    with Image.open(io.BytesIO(photo)) as im:
        vector = run_in(
            "device",
            "scannlite.plugin.device.runtime:image_embed",
            image_embedder(),
            [np.asarray(im.convert("RGB"))],
            l2_normalize=True,
        )
    same_hits(data["results"], expected(site["photos"], vector, k=5, exact=True))
    # The page shows the thumbnails of image results.
    status, _, html = request(f"{site['url']}/-/scannlite/{site['name']['photos']}", data=body, headers=headers)
    html = html.decode()
    assert status == 200 and '<td class="thumb"><img src="/-/scannlite/' in html and "image 07.png embedded by" in html
    body, headers = multipart({}, {"image": ("x.png", b"\x89PNG not really")})
    status, data = get_json(
        f"{site['url']}/-/scannlite/{site['name']['photos']}/search.json", data=body, headers=headers
    )
    assert status == 400 and data["error"] == "the uploaded file is not an image Pillow can read (unknown image format)"


def test_thumbnails_are_served_only_from_the_root(site):
    data = api(site, "photos", vector=",".join(map(str, site["photos_x"][3])), k=20, exact=1)[1]
    by_id = {h["id"]: h for h in data["results"]}
    thumb = by_id["img/03.png"]["thumbnail"]
    assert thumb and "path=img%2F03.png" in thumb
    status, headers, body = request(site["url"] + thumb)
    assert status == 200 and headers["content-type"] in ("image/jpeg", "image/png")
    from PIL import Image

    with Image.open(io.BytesIO(body)) as im:
        assert max(im.size) <= 160
    for i in (12, 13, 14):  # metadata naming files outside the root never becomes a thumbnail
        hit = api(site, "photos", vector=",".join(map(str, site["photos_x"][i])), k=1, exact=1)[1]["results"][0]
        assert hit["id"] == f"v{i}" and hit["metadata"] in ("../secret.png", "img/link.png", "/etc/passwd")
        assert hit["thumbnail"] is None
    base = f"{site['url']}/-/scannlite/{site['name']['photos']}/thumbnail?path="
    for rel, code in (
        ("../secret.png", 403),
        ("img/../../secret.png", 403),
        ("/etc/passwd", 403),
        ("img/link.png", 403),
        ("..%2Fphotos%2Fcatalog.db", 403),
        ("img/99.png", 404),
        ("img/00.txt", 404),
        ("", 403),
    ):
        status, _, body = request(base + (rel if "%" in rel else urllib.parse.quote(rel, safe="")))
        assert status == code, (rel, status, body)
        assert body.startswith(b"error: ")
    status, _, _ = request(f"{site['url']}/-/scannlite/{site['name']['reviews']}/thumbnail?path=x.png")
    assert status == 404  # no thumbnails root configured


def test_snapshot_page_shows_builds_changes_and_the_bundle(site):
    status, html = page(site, "reviews", "/snapshots")
    assert status == 200
    assert '<tr data-version="2" class="chosen">' in html and '<tr data-version="1">' in html
    v1_row = html.split('<tr data-version="1">')[1].split("</tr>")[0]
    v2_row = html.split('<tr data-version="2" class="chosen">')[1].split("</tr>")[0]
    assert "retrained: no partition model yet" in v1_row and "not exported" in v1_row
    assert "incremental: 7 vectors encoded" in v2_row
    with Catalog.open(site["reviews"]) as cat:
        d = snapshot.diff(cat, 1, 2)
    assert (d["added"], d["removed"], d["changed"]) == ([f"r{i}" for i in range(30, 36)], ["r01", "r02"], ["r03"])
    assert "6 added, 2 removed, 1 changed" in html
    for ident in d["added"] + d["removed"] + d["changed"]:
        assert f"<li>{ident}</li>" in html
    # The bundle `scannlite export` wrote and verified, byte for byte.
    assert (
        f'href="/-/scannlite/{site["name"]["reviews"]}/bundle/2"' in v2_row and "verified by the Task Library" in v2_row
    )
    status, headers, body = request(f"{site['url']}/-/scannlite/{site['name']['reviews']}/bundle/2")
    assert status == 200 and body == site["bundle"].read_bytes()
    assert headers["content-disposition"] == 'attachment; filename="reviews.tflite"'
    assert headers["x-scannlite-sha256"] == hashlib.sha256(body).hexdigest()
    status, manifest = get_json(f"{site['url']}/-/scannlite/{site['name']['reviews']}/bundle/2/manifest.json")
    assert status == 200 and manifest == json.loads((site["bundle"].parent / "reviews.manifest.json").read_text())
    assert request(f"{site['url']}/-/scannlite/{site['name']['reviews']}/bundle/1")[0] == 404
    status, html = page(site, "reviews", "/snapshots", version=1)
    assert "Snapshot 1: first snapshot" in html and "31 added, 0 removed, 0 changed" in html
    # The build's recall estimate, as figures and as a curve (an inline SVG image).
    with Catalog.open(site["reviews"]) as cat:
        est = snapshot.get_snapshot(cat, 1).build["recall"]
    assert f"recall@{est['k']} {est['recall'][-1]:.3f} at" in html and "<svg" in html
    assert html.count("<circle") == len(est["ladder"])


def test_only_an_intact_existing_bundle_is_offered(site):
    """Exports of snapshot 1 to two files: the newer is deleted, so the older is offered; once
    its bytes change, the download is refused (it is no longer the verified file)."""
    tmp = site["tmp"]
    older, newer = tmp / "bundles" / "v1-a.tflite", tmp / "bundles" / "v1-b.tflite"
    for out in (older, newer):
        run_cli("export", site["reviews"], "--snapshot", 1, "--embedder", REGEX_MODEL, "--out", out)
    newer.unlink()
    status, html = page(site, "reviews", "/snapshots")
    assert "v1-a.tflite" in html and "v1-b.tflite" not in html
    url = f"{site['url']}/-/scannlite/{site['name']['reviews']}/bundle/1"
    status, _, body = request(url)
    assert status == 200 and body == older.read_bytes()
    with open(older, "ab") as f:
        f.write(b"tampered")
    status, _, body = request(url)
    assert status == 409 and b"changed after it was exported" in body


def test_new_snapshots_appear_without_restarting(site, rng):
    name = site["name"]["live"]
    assert get_json(f"{site['url']}/-/scannlite/{name}/search.json?vector=1,0,0,0&exact=1")[1]["snapshot"] == 1
    with Catalog.open(site["live"]) as cat:  # a writer working while Datasette serves the catalog
        cat.add(["c"], np.asarray([[1.0, 0, 0, 0]]))
        build(cat)
    data = get_json(f"{site['url']}/-/scannlite/{name}/search.json?vector=1,0,0,0&exact=1")[1]
    assert data["snapshot"] == 2 and data["results"][0]["id"] == "c"
    assert '<tr data-version="2" class="chosen">' in page(site, "live", "/snapshots")[1]


def test_the_plugin_never_writes_to_the_catalog(tmp_path):
    """A whole session (pages, text and vector searches, snapshots, bundle, thumbnails, errors)
    leaves catalog.db byte for byte and mtime for mtime as it was, and no new files but SQLite's
    own empty -wal/-shm side files."""
    cat = build_review_catalog(tmp_path / "cat", export_to=tmp_path / "b.tflite")
    db = cat / "catalog.db"
    before = file_state(db)
    files_before = {p.name for p in cat.rglob("*")}
    with DatasetteServer(db) as server:
        base = f"{server.url}/-/scannlite/catalog"
        for url in (
            server.url + "/catalog",
            base,
            base + "?q=a+funny+film",
            base + "/snapshots",
            base + "/snapshots?version=1",
            base + "/search.json?q=boring&exact=1",
            base + "/search.json?vector=" + ",".join(["0.25"] * 16) + "&snapshot=1",
            base + "/bundle/2",
            base + "/bundle/2/manifest.json",
            base + "/search.json?k=0",
            server.url + "/catalog/items.json",
            base + "/thumbnail?path=x.png",
        ):
            assert request(url)[0] in (200, 400, 404)
        assert file_state(db) == before
    assert file_state(db) == before
    created = {p.name for p in cat.rglob("*")} - files_before
    assert created <= {"catalog.db-wal", "catalog.db-shm"}
    for name in created & {"catalog.db-wal"}:
        assert (cat / name).stat().st_size == 0


def test_plugin_connections_are_read_only(site):
    from scannlite.plugin.integrations.datasette_plugin.catalogs import CatalogDb, open_catalog

    cdb = CatalogDb("x", (site["live"] / "catalog.db").resolve(), immutable=False)
    with open_catalog(cdb) as cat:
        assert cat.count() >= 2
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
            cat._conn.execute("INSERT INTO commits(seq, kind, created_at, summary) VALUES (99, 'x', 'now', '{}')")


def test_the_datasette_process_loads_neither_tensorflow_nor_the_task_library(site):
    """Embedding happens in device processes; the serving process only parses model files."""
    script = f"""
import json, sys
from pathlib import Path
from scannlite.plugin.integrations.datasette_plugin.catalogs import CatalogDb, open_catalog
from scannlite.plugin.integrations.datasette_plugin.queries import SearchParams, query_vector
cdb = CatalogDb("reviews", Path({str((site["reviews"] / "catalog.db").resolve())!r}), immutable=False)
with open_catalog(cdb) as cat:
    vector, how = query_vector(cat, SearchParams("a funny film", None, None, None, None, None, 10, None, False))
loaded = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tflite_support", "tflite_runtime")
          or m.startswith("tensorflow_lite_support.python")]
print(json.dumps({{"kind": how["kind"], "dim": len(vector), "loaded": loaded}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"kind": "text", "dim": 16, "loaded": []}


def test_concurrent_text_queries_all_get_the_sequential_answer(site):
    """16 text queries at once over HTTP (four texts, four times each): every answer is the
    one the same query got alone, and each is what the embedder's vector searches to."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [
        "a funny comedy with a great cast",
        "the worst movie of the year",
        "a moving story about love",
        "boring , slow and far too long",
    ]
    alone = {}
    for text in texts:
        status, data = api(site, "reviews", q=text, k=8)
        assert status == 200, data
        alone[text] = data["results"]
        same_hits(data["results"], expected(site["reviews"], embed_texts([text]), k=8))
    queries = texts * 4
    with ThreadPoolExecutor(len(queries)) as pool:
        answers = list(pool.map(lambda text: api(site, "reviews", q=text, k=8), queries))
    for text, (status, data) in zip(queries, answers):
        assert status == 200, data
        assert data["results"] == alone[text]


def test_embedding_runs_off_the_event_loop(site, monkeypatch):
    """Embedding blocks (a worker process answers), so it runs in a thread: while eight slowed
    text, image and .npy queries are served at once, the event loop keeps ticking, and they
    overlap instead of queueing."""
    import asyncio

    from datasette.app import Datasette

    from scannlite.plugin.integrations.datasette_plugin import views

    real = views.query_vector
    sleeps: list[tuple[float, float]] = []  # (start, end) of each slowed query's 0.5 s

    def slow(cat, params):
        start = time.perf_counter()
        time.sleep(0.5)
        sleeps.append((start, time.perf_counter()))
        return real(cat, params)

    monkeypatch.setattr(views, "query_vector", slow)
    reviews, photos = site["reviews"] / "catalog.db", site["photos"] / "catalog.db"
    photo = (site["images"] / "img" / "07.png").read_bytes()
    npy_body, npy_headers = multipart({"k": "3"}, {"npy": ("q.npy", npy_bytes(site["photos_x"][3]))})
    image_body, image_headers = multipart({"k": "3"}, {"image": ("07.png", photo)})

    async def session():
        ds = Datasette([str(reviews), str(photos)])
        await ds.invoke_startup()
        names = {Path(db.path).resolve(): name for name, db in ds.databases.items() if db.path}
        r, p = names[reviews.resolve()], names[photos.resolve()]
        gaps, ticking = [], True

        async def heartbeat():
            last = time.perf_counter()
            while ticking:
                await asyncio.sleep(0.02)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        # Warm up first (the workers start and load the models), then measure.
        await ds.client.get(f"/-/scannlite/{r}/search.json?q=warm&k=1")
        await ds.client.post(f"/-/scannlite/{p}/search.json", content=image_body, headers=image_headers)
        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        calls = [ds.client.get(f"/-/scannlite/{r}/search.json?q=a+funny+film&k=3") for _ in range(4)]
        calls += [
            ds.client.post(f"/-/scannlite/{p}/search.json", content=npy_body, headers=npy_headers) for _ in range(2)
        ]
        calls += [
            ds.client.post(f"/-/scannlite/{p}/search.json", content=image_body, headers=image_headers) for _ in range(2)
        ]
        responses = await asyncio.gather(*calls)
        took = time.perf_counter() - started
        ticking = False
        await beat
        return responses, took, gaps

    responses, took, gaps = asyncio.run(session())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    kinds = [r.json()["query"]["kind"] for r in responses]
    assert kinds == ["text"] * 4 + ["vector"] * 2 + ["image"] * 2
    # They overlap: some moment falls inside several queries' sleeps at once (one after another,
    # never more than one). Counted from the sleeps themselves, not the wall time, which a loaded
    # machine stretches.
    most_at_once = max(sum(a <= start < b for a, b in sleeps) for start, _ in sleeps)
    assert len(sleeps) >= 8 and most_at_once >= 4, (most_at_once, took)
    assert max(gaps) < 0.4, max(gaps)  # the loop never stalled for a query's 0.5 s


def test_query_recording_is_off_by_default_and_records_served_queries_when_on(tmp_path):
    """The owner's switch (``scannlite queries CATALOG record on``): off, a served query leaves the sample empty;
    on, each served text or vector query is offered to it (text kept, source ``datasette``)."""
    from scannlite.store.catalog import query_sample

    path = build_review_catalog(tmp_path / "cat")
    with DatasetteServer(path / "catalog.db") as server:
        base = f"{server.url}/-/scannlite/catalog"
        assert get_json(base + "/search.json?q=a+funny+film")[0] == 200
        with Catalog.open(path) as cat:
            assert query_sample.summary(cat)["size"] == 0 and not query_sample.summary(cat)["recording"]
        run_cli("queries", path, "record", "on")
        with Catalog.open(path) as cat:
            head = cat.head_seq
        assert get_json(base + "/search.json?q=a+boring+drama")[0] == 200
        assert get_json(base + "/search.json?vector=" + ",".join(["0.25"] * 16))[0] == 200
        with Catalog.open(path) as cat:
            assert cat.head_seq == head  # recorded queries make no commit
            rows = query_sample.rows(cat)
            assert [(r["text"], r["source"]) for r in rows] == [("a boring drama", "datasette"), (None, "datasette")]
            stored = query_sample.vectors(cat)
        assert np.allclose(stored[1], np.full(16, 0.25) / np.linalg.norm(np.full(16, 0.25)), atol=1e-6)
        assert np.allclose(stored[0], embed_texts(["a boring drama"])[0], atol=1e-5)
        run_cli("queries", path, "record", "off")
        assert get_json(base + "/search.json?q=the+music+is+great")[0] == 200
        with Catalog.open(path) as cat:
            assert query_sample.size(cat) == 2
        # The next build states recall for them beside the leave-one-out figure, on the snapshot page too.
        run_cli("build", path)
        status, _, body = request(base + "/snapshots")
        assert status == 200 and 'id="recall-queries"' in body.decode() and "2 queries" in body.decode()
