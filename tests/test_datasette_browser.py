"""The search page in a real browser: Datasette on a loopback port, Debian's headless Chromium
driven by Playwright, queries typed and files uploaded as a person would, screenshots saved.

Chromium comes from Debian (``apt-get install -y chromium``), never from ``playwright install``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index import snapshot
from scannlite.store.workers.boundary import run_in
from tests.support.datasette_site import (
    CHROMIUM,
    CHROMIUM_ARGS,
    XSS,
    XSS_TEXT,
    DatasetteServer,
    build_photo_catalog,
    build_review_catalog,
    embed_texts,
    image_embedder,
)

pytestmark = [pytest.mark.browser, pytest.mark.device, pytest.mark.slow, pytest.mark.usefixtures("fixtures_dir")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    tmp = tmp_path_factory.mktemp("browser")
    reviews = build_review_catalog(tmp / "reviews", export_to=tmp / "bundles" / "reviews.tflite")
    photos, images, photos_x = build_photo_catalog(tmp)
    with DatasetteServer(reviews / "catalog.db", photos / "catalog.db", log=tmp / "datasette.log") as server:
        names = server.database_names()
        yield {
            "url": server.url,
            "reviews": reviews,
            "photos": photos,
            "images": images,
            "photos_x": photos_x,
            "bundle": tmp / "bundles" / "reviews.tflite",
            "name": {k: names[str((tmp / k / "catalog.db").resolve())] for k in ("reviews", "photos")},
        }


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))  # an alert() would mean injected script
    yield pg
    context.close()


def shown_results(pg) -> list[dict]:
    rows = pg.locator("table.scannlite-results tbody tr")
    return [
        {
            "rank": int(rows.nth(i).locator("td.rank").inner_text()),
            "id": rows.nth(i).locator("td.id").inner_text(),
            "distance": float(rows.nth(i).locator("td.distance").inner_text()),
            "metadata": rows.nth(i).locator("td.metadata").inner_text(),
        }
        for i in range(rows.count())
    ]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 400


def test_typed_text_query_shows_the_ranked_results(served, page, tmp_path):
    name = served["name"]["reviews"]
    # From Datasette's own database page, through the action the plugin adds.
    page.goto(f"{served['url']}/{name}")
    page.click("details.actions-menu-links summary")
    with page.expect_navigation():
        page.click("text=Semantic search (scannlite)")
    assert page.url.endswith(f"/-/scannlite/{name}")

    query = "a funny film with a great cast"
    page.fill("#q", query)
    with page.expect_navigation():
        page.press("#q", "Enter")
    shown = shown_results(page)
    with Catalog.open(served["reviews"]) as cat:
        want = snapshot.search(cat, embed_texts([query]), k=10)[0]
    assert [r["id"] for r in shown] == [h["id"] for h in want]
    assert [r["rank"] for r in shown] == list(range(1, 11))
    np.testing.assert_allclose([r["distance"] for r in shown], [h["distance"] for h in want], atol=1e-6)
    assert [r["metadata"] for r in shown] == [h["metadata"] for h in want]
    assert "text embedded by regex_one_embedding_with_metadata.tflite" in page.inner_text("#scannlite-query")
    assert page.input_value("#q") == query
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    assert_png(tmp_path / "search.png")

    # Metadata holding markup is shown as text and never runs.
    page.fill("#q", XSS_TEXT)
    with page.expect_navigation():
        page.click("#search")
    first = shown_results(page)[0]
    assert first["id"] == "xss" and first["metadata"] == XSS
    assert page.locator("table.scannlite-results script").count() == 0
    assert page.dialogs == []


def test_snapshot_picker_and_exact_toggle(served, page):
    name = served["name"]["reviews"]
    page.goto(f"{served['url']}/-/scannlite/{name}")
    gone = embed_texts(["the worst movie of the year"])  # its item (r01) was deleted in snapshot 2
    page.fill("#q", "the worst movie of the year")
    page.select_option("#snapshot", "1")
    page.check("#exact")
    with page.expect_navigation():
        page.click("#search")
    shown = shown_results(page)
    with Catalog.open(served["reviews"]) as cat:
        want = snapshot.search(cat, gone, k=10, exact=True, version=1)[0]
    assert [r["id"] for r in shown] == [h["id"] for h in want] and shown[0]["id"] == "r01"
    assert "results from snapshot 1, exact search" in page.inner_text("#scannlite-query")
    assert page.locator("#snapshot").input_value() == "1" and page.is_checked("#exact")


def test_vector_in_the_text_box_with_one_leaf(served, page):
    """The photo catalog has no text embedder: the text box takes a vector; leaves is honoured."""
    name = served["name"]["photos"]
    q = served["photos_x"][200] + 0.2 * np.random.default_rng(1).standard_normal(8).astype(np.float32)
    page.goto(f"{served['url']}/-/scannlite/{name}")
    page.fill("#q", ", ".join(repr(float(v)) for v in q))
    page.fill("#leaves", "1")
    page.fill("#k", "7")
    with page.expect_navigation():
        page.click("#search")
    with Catalog.open(served["photos"]) as cat:
        want = snapshot.search(cat, q, k=7, leaves_to_search=1)[0]
    assert [r["id"] for r in shown_results(page)] == [h["id"] for h in want]
    assert "1 of 8 leaves searched" in page.inner_text("#scannlite-query")


def test_uploaded_image_finds_itself_with_thumbnails(served, page, tmp_path):
    name = served["name"]["photos"]
    page.goto(f"{served['url']}/-/scannlite/{name}")
    page.set_input_files("#image", str(served["images"] / "img" / "05.png"))
    page.fill("#k", "5")
    with page.expect_navigation():
        page.click("#search")
    shown = shown_results(page)
    with Image.open(served["images"] / "img" / "05.png") as im:
        vector = run_in(
            "device",
            "scannlite.plugin.device.runtime:image_embed",
            image_embedder(),
            [np.asarray(im.convert("RGB"))],
            l2_normalize=True,
        )
    with Catalog.open(served["photos"]) as cat:
        want = snapshot.search(cat, vector, k=5)[0]  # as a phone: hashed distances, 2 of 8 leaves
    assert shown[0]["id"] == "img/05.png" and [r["id"] for r in shown] == [h["id"] for h in want]
    np.testing.assert_allclose([r["distance"] for r in shown], [h["distance"] for h in want], atol=1e-6)
    img = page.locator("table.scannlite-results tbody tr").first.locator("td.thumb img")
    img.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    page.screenshot(path=str(tmp_path / "image-search.png"), full_page=True)
    assert_png(tmp_path / "image-search.png")


def test_snapshot_page_and_bundle_download(served, page, tmp_path):
    name = served["name"]["reviews"]
    page.goto(f"{served['url']}/-/scannlite/{name}")
    with page.expect_navigation():
        page.click("text=Snapshots and bundles")
    assert page.locator("table.scannlite-snapshots tbody tr").count() == 2
    assert "6 added, 2 removed, 1 changed" in page.inner_text("#change-counts")
    with page.expect_download() as info:
        page.click("tr[data-version='2'] td.bundle a[download]")
    info.value.save_as(tmp_path / "downloaded.tflite")
    assert (tmp_path / "downloaded.tflite").read_bytes() == served["bundle"].read_bytes()
    page.screenshot(path=str(tmp_path / "snapshots.png"), full_page=True)
    assert_png(tmp_path / "snapshots.png")
