"""Screenshots of the Datasette plugin for docs/ecosystem.md, from a real run.

Builds the test suite's two catalogs (movie-review sentences embedded by Google's regex text
embedder; small images embedded by a tiny TFLite image embedder), serves them with Datasette
on a loopback port, and drives Debian's headless Chromium with Playwright:

    .venv/bin/python docs/datasette_screenshots.py            # writes docs/datasette-*.png

Needs /usr/bin/chromium (apt-get install -y chromium) and Google's fixtures in
../shared/fixtures/tflite-support/.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))  # the catalog builders and the server live in tests/support/
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from tests.support.datasette_site import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DatasetteServer,
    build_photo_catalog,
    build_review_catalog,
)


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="scannlite-shots-") as tmp:
        tmp = Path(tmp)
        reviews = build_review_catalog(tmp / "reviews", export_to=tmp / "bundles" / "reviews.tflite")
        photos, images, _ = build_photo_catalog(tmp)
        with DatasetteServer(reviews / "catalog.db", photos / "catalog.db") as server, sync_playwright() as p:
            names = server.database_names()
            reviews_db = names[str((reviews / "catalog.db").resolve())]
            photos_db = names[str((photos / "catalog.db").resolve())]
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 700})

            page.goto(f"{server.url}/-/scannlite/{reviews_db}")
            page.fill("#q", "a funny film with a great cast")
            page.fill("#k", "8")
            with page.expect_navigation():
                page.press("#q", "Enter")
            page.screenshot(path=str(DOCS / "datasette-search.png"), full_page=True)

            page.goto(f"{server.url}/-/scannlite/{photos_db}")
            page.set_input_files("#image", str(images / "img" / "05.png"))
            page.fill("#k", "5")
            with page.expect_navigation():
                page.click("#search")
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(DOCS / "datasette-image-search.png"), full_page=True)

            page.goto(f"{server.url}/-/scannlite/{reviews_db}/snapshots")
            page.screenshot(path=str(DOCS / "datasette-snapshots.png"), full_page=True)
            browser.close()
    for name in ("datasette-search.png", "datasette-image-search.png", "datasette-snapshots.png"):
        print(f"wrote {DOCS / name}")


if __name__ == "__main__":
    main()
