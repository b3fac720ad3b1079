"""The offline search page (demo-output/search.html) in headless Chromium: MediaPipe's TextEmbedder
embeds the typed query and scannlite.wasm searches the bundle, and the page's top-10 ids must equal
`scannlite bundle query` (the TFLite Task Library) on the same bundle (docs/web.md).

The bundle here has a small BERT-route text tower (ids/mask/segment_ids inputs, a BertTokenizer
with a WordPiece vocabulary): the code path of the demo's MiniLM tower, without training it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scannlite
from scannlite.plugin.integrations import search_page
from scannlite.store.searcher.native import NativeSearcher
from scannlite.store.workers.boundary import run_in
from tests.support.datasette_site import CHROMIUM, CHROMIUM_ARGS
from tests.support.search_page import page_results
from tests.support.static_folder import StaticFolder

SCANNLITE = Path(sys.executable).with_name("scannlite")  # the environment running the tests (.venv or .venv-py313)

pytestmark = [pytest.mark.browser, pytest.mark.tensorflow, pytest.mark.device, pytest.mark.slow]

WORDS = (
    "red green blue yellow apple dog cat rain cloud sun moon happy sad car tree fish bird house fire water "
    "star heart night day snow cold hot small big face hand food cake tea boat train music book"
).split()
QUERIES = [
    "red apple",
    "a happy dog",
    "rain and clouds",
    "the moon at night",
    "Blue FISH!",
    "hot tea",
    "a big red car",
    "snow, cold day",
    "music book",
    "bird in a tree",
    "fire and water",
    "small cake",
    "sad face",
    "yellow star",
    "green house",
    "boat on water",
    "zebra",
    "train",
    "sun heart hand",
    "",
    "ünïcödé cat",
    "a cat and a dog and a bird",
]


def cli_results(bundle: Path, queries: list[str], k: int) -> list[list[dict]]:
    args = [str(SCANNLITE), "bundle", "query", str(bundle), "-k", str(k), "--json"]
    for q in queries:
        args += ["--text", q]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def bert_bundle(tmp_path_factory):
    missing = search_page.missing()
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `make web`", pytrace=False)
    tmp = tmp_path_factory.mktemp("web")
    tower = tmp / "text_embedder.tflite"
    run_in(
        "tensorflow",
        "tests.support.model_builders:write_bert_text_tower",
        str(tower),
        str(tmp / "vocab.txt"),
        WORDS,
        24,
        5,
    )
    db = scannlite.create(tmp / "words.catalog", dim=24)
    texts = {f"t{i:03d}": f"{a} {b}" for i, (a, b) in enumerate((a, b) for a in WORDS for b in WORDS[::5] if a != b)}
    db.add_texts(texts, embedder=tower)
    db.build()
    bundle = tmp / "site" / "words.tflite"
    bundle.parent.mkdir()
    assert db.export(bundle)["verified"]
    return bundle


def test_the_page_gives_the_task_librarys_top_10_for_every_query(bert_bundle):
    site = bert_bundle.parent
    assert search_page.write(site) == site / "search.html"
    got = page_results(site, f"?bundle={bert_bundle.name}", QUERIES, 10)
    assert got["error"] is None
    assert got["l2"] is True  # the catalog normalises, and the bundle's USER_INFO says so
    rows = cli_results(bert_bundle, QUERIES, 10)
    want = [[hit["metadata"] for hit in row] for row in rows]
    assert len(want) == len(QUERIES) >= 20 and all(len(row) == 10 for row in want)
    assert [run["names"] for run in got["runs"]] == want
    assert got["shown"] == want[0]
    # Distances too (normalised queries: a skipped l2_normalize would change them, not the order);
    # MediaPipe's embedding may differ from the Task Library's in the last bits.
    for run, row in zip(got["runs"], rows):
        np.testing.assert_allclose(run["distances"], [hit["distance"] for hit in row], rtol=0, atol=1e-5)
    # The same query vectors through the C library: bit for bit the page's ids and distances.
    with NativeSearcher(bert_bundle) as native:
        for run in got["runs"]:
            r = native.search(np.asarray(run["vector"], np.float32), 10)
            assert r.ids.tolist() == run["ids"]
            assert np.asarray(run["distances"], np.float32).tobytes() == r.distances.astype(np.float32).tobytes()


def test_a_missing_bundle_is_one_line_on_the_page(bert_bundle, tmp_path):
    site = tmp_path / "site"
    search_page.write(site)
    shutil.copy(bert_bundle, site / "b.tflite")
    from playwright.sync_api import sync_playwright

    with StaticFolder(site) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/search.html?bundle=nope.tflite")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('error')")
            status = page.text_content("#status")
        finally:
            browser.close()
    assert status == "error: cannot fetch " + f"{server.url}/nope.tflite: HTTP 404"


def test_datasettes_snapshot_page_links_to_the_page_for_its_text_bundle(bert_bundle, tmp_path):
    """The plugin serves the page's files and links each exported text bundle to it (?bundle=its download URL)."""
    from playwright.sync_api import sync_playwright

    from tests.support.datasette_site import DatasetteServer

    db = (bert_bundle.parent.parent / "words.catalog" / "catalog.db").resolve()
    want = [hit["metadata"] for hit in cli_results(bert_bundle, ["a happy dog"], 10)[0]]
    with DatasetteServer(db, log=tmp_path / "datasette.log") as server, sync_playwright() as p:
        name = server.database_names()[str(db)]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/-/scannlite/{name}/snapshots")
            link = page.locator("a.web")
            assert link.count() == 1
            assert f"bundle=%2F-%2Fscannlite%2F{name}%2Fbundle%2F1" in link.get_attribute("href")
            link.click()
            page.wait_for_function("!document.getElementById('query').disabled", timeout=120_000)
            page.fill("#query", "a happy dog")
            page.click("button")
            page.wait_for_function("document.querySelectorAll('#results figure').length > 0")
            shown = page.eval_on_selector_all("#results figcaption", "els => els.map((e) => e.firstChild.textContent)")
            # Only the page's own files: not another file of the repository, not a name outside the list.
            missing = [
                page.goto(f"{server.url}/-/scannlite/-/web/{n}").status for n in ("pyproject.toml", "search-page/x.js")
            ]
        finally:
            browser.close()
    assert shown == want
    assert missing == [404, 404]
