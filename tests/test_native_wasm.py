"""scannlite.wasm against the host C library: the same vector sets give the same lines, bit for bit.

libscannlite is built twice from the same sources (the host CLI by libscannlite/Makefile, the
WebAssembly module by libscannlite/wasm/Makefile); Node's test runner searches every vector set of
tests/support/native_vectors.py through scannlite.mjs, and its lines must equal scannlite-cli's
(ids, distances as %a, metadata), its errors the CLI's. A Chromium check loads the same module
from a static folder. What a browser build must match and why: docs/web.md.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support.native_vectors import make_vectors

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "libscannlite"
WASM_DIR = LIB / "wasm"
NODE_TEST = WASM_DIR / "test" / "scannlite.test.mjs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Per vector set: the index's own leaves (None), one leaf, and every leaf (clamped by the library).
LEAVES = (None, 1, 1 << 20)

pytestmark = [pytest.mark.usefixtures("fixtures_dir")]  # the Node test also reads Google's fixtures


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


def checked(cmd: list, **kw) -> subprocess.CompletedProcess:
    proc = run(cmd, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def cli_error(cli: Path, *args) -> str:
    """The CLI's one-line error for a bad input, without its "error: " prefix."""
    proc = run([cli, "search", *args])
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and proc.stdout == "" and len(lines) == 1 and lines[0].startswith("error: "), \
        f"scannlite-cli search {args}: {proc.returncode} {proc.stdout!r} {proc.stderr!r}"
    return lines[0][len("error: "):]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The host CLI and the wasm module, built from libscannlite/src into a fresh folder."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Debian's nodejs (Node 20)", pytrace=False)
    tmp = tmp_path_factory.mktemp("native-wasm")
    checked(["make", "-s", "-C", LIB, f"BUILD={tmp / 'native'}"])
    checked(["make", "-s", "-f", WASM_DIR / "Makefile", f"WASM_BUILD={tmp / 'wasm'}"])
    cli, wasm = tmp / "native" / "scannlite-cli", tmp / "wasm" / "scannlite.wasm"
    assert cli.is_file() and wasm.is_file()
    return {"tmp": tmp, "node": node, "cli": cli, "wasm": wasm}


@pytest.fixture(scope="module")
def cases(built):
    """Every vector set at three leaf counts with the CLI's lines, and the bad inputs with its errors."""
    tmp, cli = built["tmp"], built["cli"]
    vectors = make_vectors(tmp / "vectors")
    assert vectors, "native_vectors made no vector sets"
    searches = []
    for i, v in enumerate(vectors):
        for leaves in LEAVES:
            name = f"{Path(v['path']).name}-k{v['k']}-leaves{leaves or 'default'}"
            expected = tmp / f"{i}-{leaves}.cli.txt"
            args = [v["path"], v["queries"], v["k"], *([leaves] if leaves else [])]
            expected.write_text(checked([cli, "search", *args]).stdout)
            assert expected.read_text().strip(), f"the CLI found nothing for {name}"
            searches.append({"name": name, "path": str(v["path"]), "queries": str(v["queries"]), "dim": v["dim"],
                             "k": v["k"], "leaves": leaves or 0, "expected": str(expected),
                             "output": str(tmp / f"{i}-{leaves}.wasm.txt")})
    first = vectors[0]
    data = Path(first["path"]).read_bytes()
    bad = tmp / "bad"
    bad.mkdir()
    files = {"truncated": data[: len(data) // 2], "truncated-footer": data[:-1], "foreign": built["wasm"].read_bytes(),
             "text": b"not an index\n" * 100}
    errors = []
    for name, content in files.items():
        (bad / name).write_bytes(content)
        errors.append({"name": name, "path": str(bad / name),
                       "message": cli_error(cli, bad / name, first["queries"], first["k"])})
    for k in (0, -1):
        errors.append({"name": f"k={k}", "path": str(first["path"]), "queries": str(first["queries"]), "k": k,
                       "message": cli_error(cli, first["path"], first["queries"], k)})
    manifest = tmp / "cases.json"
    manifest.write_text(json.dumps({"searches": searches, "errors": errors}, indent=1))
    return {"manifest": manifest, "searches": searches, "errors": errors}


def test_wasm_gives_the_host_cli_lines_on_every_vector_set(built, cases):
    env = {**os.environ, "SCANNLITE_WASM": str(built["wasm"]), "SCANNLITE_WASM_CASES": str(cases["manifest"])}
    proc = run([built["node"], "--test", "--test-reporter=spec", NODE_TEST], env=env, cwd=ROOT)
    assert proc.returncode == 0, f"node --test failed:\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    n_tests = 9 + len(cases["searches"]) + len(cases["errors"])  # the file's own tests, then one per case
    counts = dict(re.findall(r"^\S* ?(tests|pass|fail) (\d+)$", proc.stdout, re.M))
    assert counts == {"tests": str(n_tests), "pass": str(n_tests), "fail": "0"}, proc.stdout[-3000:]
    # The Node test compares too; this is the same comparison from this side, on the files it wrote.
    for c in cases["searches"]:
        want = Path(c["expected"]).read_text().splitlines()
        got = Path(c["output"]).read_text().splitlines()
        assert got == want, c["name"]
        assert all(len(line.split(" ")) == 5 for line in got), c["name"]


def test_errors_are_one_line_and_name_the_cause(cases):
    messages = [e["message"] for e in cases["errors"]]
    assert all(m and "\n" not in m for m in messages)
    # Distinct causes, distinct messages: a truncated file is not reported as a foreign one.
    by_name = {e["name"]: e["message"] for e in cases["errors"]}
    assert by_name["foreign"] != by_name["truncated"]
    assert by_name["k=0"] != by_name["foreign"]


def test_module_is_small_and_self_contained(built):
    wasm = built["wasm"].read_bytes()
    assert wasm[:8] == b"\0asm\x01\0\0\0"
    assert len(wasm) < 100_000, f"scannlite.wasm is {len(wasm)} bytes"
    assert b"\0name" not in wasm[-4096:] and b"producers" not in wasm, "not stripped"


class _StaticFolder:
    """A loopback HTTP server over one folder, serving .mjs as JavaScript and .wasm as wasm."""

    def __init__(self, folder: Path):
        handler = functools.partial(_Handler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


@pytest.mark.browser
@pytest.mark.slow
def test_chromium_gives_the_same_lines_from_a_static_folder(built, cases, tmp_path):
    """scannlite.mjs and scannlite.wasm side by side in a static folder, as a demo page serves them."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps)", pytrace=False)
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(WASM_DIR / "scannlite.mjs", site)
    shutil.copy(WASM_DIR / "test" / "lines.mjs", site)
    shutil.copy(built["wasm"], site / "scannlite.wasm")
    (site / "index.html").write_text("<!doctype html><title>scannlite.wasm</title>\n")
    # One search case per vector set (the index's own leaves), plus one bad file.
    chosen = [c for c in cases["searches"] if c["leaves"] == 0]
    jobs = []
    for i, c in enumerate(chosen):
        shutil.copy(c["path"], site / f"index{i}.bin")
        shutil.copy(c["queries"], site / f"queries{i}.f32")
        jobs.append({"bundle": f"index{i}.bin", "queries": f"queries{i}.f32", "dim": c["dim"], "k": c["k"]})
    bad = next(e for e in cases["errors"] if e["name"] == "truncated")
    shutil.copy(bad["path"], site / "truncated.bin")
    script = """async (jobs) => {
      const { open } = await import("/scannlite.mjs");
      const { formatResults } = await import("/lines.mjs");
      const bytes = async (name) => (await fetch(name)).arrayBuffer();
      const out = [];
      for (const job of jobs) {
        const index = await open(await bytes(job.bundle));  // scannlite.wasm: the default, next to the .mjs
        const all = new Float32Array(await bytes(job.queries));
        const lines = [];
        for (let q = 0; q * job.dim < all.length; q++) {
          lines.push(...formatResults(q, index.search(all.subarray(q * job.dim, (q + 1) * job.dim), job.k)));
        }
        index.close();
        out.push(lines);
      }
      let error = null;
      try { await open(await bytes("truncated.bin")); } catch (e) { error = e.message; }
      return { out, error };
    }"""
    with _StaticFolder(site) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            console = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{server.url}/index.html")
            got = page.evaluate(script, jobs)
        finally:
            browser.close()
    for c, lines in zip(chosen, got["out"]):
        assert lines == Path(c["expected"]).read_text().splitlines(), c["name"]
    assert got["error"] == bad["message"], console
