"""The offline search page (search.html) driven in Chromium, for tests/test_web_search_page.py and
tests/test_demo.py (docs/web.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.searcher.native import NativeSearcher
from tests.support.datasette_site import CHROMIUM, CHROMIUM_ARGS
from tests.support.static_folder import StaticFolder


def page_results(site: Path, query_string: str, queries: list[str], k: int) -> dict:
    """Load search.html from a loopback static server with every other host unreachable, and run the queries."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps)", pytrace=False)
    outside = []
    with StaticFolder(site) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def route(r):  # offline: only the page's own server answers
                if r.request.url.startswith(server.url):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{server.url}/search.html{query_string}")
            got = page.evaluate(
                """async ([queries, k]) => {
                  const state = window.scannlitePage;
                  const page = await state.ready;
                  const runs = queries.map((q) => {
                    const vector = page.embed(q);
                    const hits = page.searchVector(vector, k);
                    return { vector: Array.from(vector), raw: Array.from(page.embedRaw(q)), ids: hits.map((r) => r.id), distances: hits.map((r) => r.distance),
                             names: page.search(q, k).map((r) => new TextDecoder().decode(r.metadata)) };
                  });
                  // And the form, as a person uses it.
                  const input = document.getElementById("query");
                  input.value = queries[0];
                  document.getElementById("form").requestSubmit();
                  const shown = [...document.querySelectorAll("#results figure figcaption")].map((f) => f.firstChild.textContent);
                  return { runs, shown, error: state.error, l2: page.l2Normalize, loadMs: state.loadMs };
                }""",
                [queries, k],
            )
        finally:
            browser.close()
    assert not outside, f"the page fetched from outside its folder: {outside}"
    return got


def check_demo_page(out: Path, queries: list[str]) -> None:
    """The demo's search.html on its own text bundle (called by tests/test_demo.py, which makes the bundle):
    MediaPipe's vectors within 1e-6 of the Task Library's, and scannlite.wasm's results on them the C
    library's bit for bit. Top 10s are not compared: the vectors differ in the last bits, which can change
    the leaves searched (docs/web.md)."""
    from scannlite.plugin.embedders.registry import embed_texts

    assert (out / "search.html").is_file() and (out / "search-page" / "scannlite.wasm").is_file()
    labels = json.loads((out / "emoji_names.json").read_text())
    bundle = out / "emoji_text_searcher.tflite"
    got = page_results(out, "?images=openmoji/&labels=emoji_names.json", queries, 10)
    assert got["error"] is None and got["l2"] is True
    assert got["shown"] == [labels[name] for name in got["runs"][0]["names"]]
    task = embed_texts(bundle, queries)
    with NativeSearcher(bundle) as native:
        for run, vector in zip(got["runs"], task):
            raw = np.asarray(run["raw"], np.float32)
            assert np.abs(raw - vector).max() < 1e-6
            r = native.search(np.asarray(run["vector"], np.float32), 10)
            assert r.ids.tolist() == run["ids"]
            assert np.asarray(run["distances"], np.float32).tobytes() == r.distances.astype(np.float32).tobytes()
