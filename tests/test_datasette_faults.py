"""The Datasette plugin answers damaged uploads and damaged catalogs with an error page or a
one-line JSON error, never a 500: truncated and mutated images and .npy files posted to a real
server, and catalogs whose catalog.db or segment was damaged, served by it."""

from __future__ import annotations

import re
import shutil
import sqlite3
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.build import build
from tests.support.datasette_site import DatasetteServer, build_photo_catalog, multipart, npy_bytes, request
from tests.support.fuzz_readers import Image as ImageCases
from tests.support.fuzz_readers import mutations

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.usefixtures("fixtures_dir")]

UPLOADS = 48
DAMAGED_DBS = 16


def _servable(db: Path) -> bool:
    """Datasette itself refuses to start on a file SQLite cannot list tables of; such a file is
    Datasette's to refuse, not the plugin's, so it is left out."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            conn.execute("SELECT name FROM sqlite_master").fetchall()
            return True
        finally:
            conn.close()
    except sqlite3.Error:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("datasette-faults")
    photos, _, _ = build_photo_catalog(tmp)
    good = tmp / "good"
    rng = np.random.default_rng(8)
    with Catalog.create(good, 8) as cat:
        cat.add([f"v{i}" for i in range(300)], rng.standard_normal((300, 8)), [f"item {i}" for i in range(300)])
        build(cat)
        cat._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pristine = (good / "catalog.db").read_bytes()
    damaged = []
    for i, (what, bad) in enumerate(mutations(pristine, np.random.default_rng(31), 400)):
        if i < 20 or i % 19:
            continue  # the short truncations (files SQLite cannot open at all) and most of the rest
        d = tmp / f"damaged{i:03d}"
        shutil.copytree(good, d)
        (d / "catalog.db").write_bytes(bad)
        if _servable(d / "catalog.db"):
            damaged.append((what, d))
        else:
            shutil.rmtree(d)
        if len(damaged) == DAMAGED_DBS:
            break
    seg_damaged = tmp / "segment-damaged"
    shutil.copytree(good, seg_damaged)
    seg = next((seg_damaged / "segments").glob("*.parquet"))
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])
    damaged.append(("half a segment", seg_damaged))
    files = [photos / "catalog.db"] + [d / "catalog.db" for _, d in damaged]
    with DatasetteServer(*files, log=tmp / "datasette.log") as server:
        names = server.database_names()
        yield {
            "url": server.url,
            "photos": names[str((photos / "catalog.db").resolve())],
            "damaged": [(what, names[str((d / "catalog.db").resolve())]) for what, d in damaged],
            "log": tmp / "datasette.log",
        }


def _assert_no_500(status: int, body: bytes, what: str) -> None:
    text = body.decode("utf-8", "replace")
    assert status != 500 and status < 500, f"{what}: status {status}:\n{text[:2000]}"
    assert "Traceback" not in text, f"{what}: a traceback in the page"


def test_damaged_image_uploads_are_one_line_errors(site):
    cases = ImageCases(Path("."))
    cases.pristine()
    rng = np.random.default_rng(41)
    url = f"{site['url']}/-/scannlite/{site['photos']}/search.json"
    answered = {200: 0, 400: 0}
    for fmt, good in cases.originals.items():
        for what, bad in mutations(good, rng, UPLOADS // len(cases.originals)):
            body, headers = multipart({"k": "3"}, {"image": (f"q.{fmt.lower()}", bad)})
            status, _, raw = request(url, data=body, headers=headers)
            _assert_no_500(status, raw, f"image {fmt} {what}")
            data = __import__("json").loads(raw)
            assert status in (200, 400), (status, data)
            if status == 400:
                assert data["ok"] is False and "\n" not in data["error"], data
                assert data["error"].startswith(("the uploaded file is", "give a query")), data  # an empty file: none
            else:
                assert len(data["results"]) == 3
            answered[status] += 1
    assert answered[400] > 0


def test_damaged_npy_uploads_are_one_line_errors(site):
    good = npy_bytes(np.arange(8, dtype=np.float32))
    url = f"{site['url']}/-/scannlite/{site['photos']}/search.json"
    refused = 0
    for what, bad in mutations(good, np.random.default_rng(42), UPLOADS):
        body, headers = multipart({"k": "3"}, {"npy": ("q.npy", bad)})
        status, _, raw = request(url, data=body, headers=headers)
        _assert_no_500(status, raw, f"npy {what}")
        data = __import__("json").loads(raw)
        if status == 400:
            assert data["ok"] is False and "\n" not in data["error"], data
            refused += 1
        else:
            assert status == 200 and data["ok"], data
    # The HTML page shows the same refusal above the form.
    body, headers = multipart({}, {"npy": ("q.npy", good[:40])})
    status, _, raw = request(f"{site['url']}/-/scannlite/{site['photos']}", data=body, headers=headers)
    _assert_no_500(status, raw, "npy page")
    assert status == 400 and b"not a valid .npy file" in raw
    assert refused > 0


def test_damaged_catalogs_get_an_error_page(site):
    vector = ",".join(["0.5"] * 8)
    errors = 0
    for what, name in site["damaged"]:
        base = f"{site['url']}/-/scannlite/{urllib.parse.quote(name)}"
        for url in (
            base,
            base + "?" + urllib.parse.urlencode({"q": vector, "k": 3}),
            base + "/search.json?" + urllib.parse.urlencode({"vector": vector, "k": 3}),
            base + "/snapshots",
        ):
            status, _, raw = request(url)
            _assert_no_500(status, raw, f"catalog.db {what}: {url}")
            errors += status != 200
    assert errors > 0  # the damage was seen
    # Datasette logs each 404 page it renders with a traceback; any other exception is a bug.
    log = Path(site["log"]).read_text(errors="replace")
    raised = re.findall(r"^([\w.]+(?:Error|Exception|Found|Exit))\b", log, flags=re.M)
    assert set(raised) <= {"NotFound"}, (sorted(set(raised)), log[-3000:])
