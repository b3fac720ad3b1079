"""scannlite.wasm against the host C library: the same vector sets give the same lines, bit for bit.

libscannlite is built twice from the same sources (the host CLI by libscannlite/Makefile, the
WebAssembly module by libscannlite/wasm/Makefile); Node's test runner searches every vector set of
tests/support/native_vectors.py through scannlite.mjs (plain and filtered, at three leaf counts,
and with l2-normalised queries),
and its lines must equal scannlite-cli's (ids, distances as %a, metadata), its errors the
library's messages. A Chromium check loads the same module from a static folder. Why a browser
build can match the host bit for bit: docs/web.md.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.datasette_site import CHROMIUM, CHROMIUM_ARGS
from tests.support.native_vectors import make_vectors
from tests.support.static_folder import StaticFolder

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "libscannlite"
WASM_DIR = LIB / "wasm"
NODE_TEST = WASM_DIR / "test" / "scannlite.test.mjs"
NODE_OWN_TESTS = 10  # the tests scannlite.test.mjs runs without a manifest
ALL_LEAVES = 0xFFFFFFFF

pytestmark = [pytest.mark.usefixtures("fixtures_dir")]  # the vectors and the Node test read Google's fixtures


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


def checked(cmd: list, **kw) -> subprocess.CompletedProcess:
    proc = run(cmd, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def cli_open_error(cli: Path, path: Path, queries, k) -> str:
    """The CLI's one-line error for a file it cannot open, less its "error: PATH: " prefix: the
    library's own message."""
    proc = run([cli, "search", path, queries, k])
    lines = proc.stderr.splitlines()
    prefix = f"error: {path}: "
    assert proc.returncode == 1 and proc.stdout == "" and len(lines) == 1 and lines[0].startswith(prefix), (
        f"scannlite-cli search {path}: {proc.returncode} {proc.stdout!r} {proc.stderr!r}"
    )
    return lines[0][len(prefix) :]


def library_search_error(so: Path, path, query: np.ndarray, k: int) -> str:
    """The host library's one-line message for a search it refuses (the CLI checks k itself)."""
    lib = ctypes.CDLL(str(so))
    lib.scannlite_open.argtypes = (
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_char_p,
        ctypes.c_size_t,
    )
    lib.scannlite_search.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_size_t,
        ctypes.c_int32,
        ctypes.c_uint32,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int32),
        ctypes.c_char_p,
        ctypes.c_size_t,
    )
    lib.scannlite_close.argtypes = (ctypes.c_void_p,)
    lib.scannlite_close.restype = None
    data = Path(path).read_bytes()
    err = ctypes.create_string_buffer(512)
    handle = ctypes.c_void_p()
    assert lib.scannlite_open(data, len(data), ctypes.byref(handle), err, 512) == 0, err.value
    q = np.ascontiguousarray(query, dtype=np.float32)
    results = (ctypes.c_byte * (24 * max(k, 1)))()
    count = ctypes.c_int32()
    status = lib.scannlite_search(
        handle, q.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), len(q), k, 0, results, ctypes.byref(count), err, 512
    )
    lib.scannlite_close(handle)
    assert status != 0, f"the library accepted k={k} with {len(q)} floats"
    return err.value.decode()


def host_l2_normalize(so: Path, queries: np.ndarray) -> np.ndarray:
    """Each row through the host library's scannlite_l2_normalize."""
    lib = ctypes.CDLL(str(so))
    lib.scannlite_l2_normalize.argtypes = (ctypes.POINTER(ctypes.c_float), ctypes.c_size_t)
    lib.scannlite_l2_normalize.restype = None
    out = np.array(queries, dtype=np.float32, copy=True)
    for row in out:
        lib.scannlite_l2_normalize(row.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), row.size)
    return out


def cli_info(cli: Path, path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in checked([cli, "info", path]).stdout.splitlines())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The host CLI and library, and the wasm module, built from libscannlite/src into a fresh folder."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install it (make wasm-deps)", pytrace=False)
    tmp = tmp_path_factory.mktemp("native-wasm")
    checked(["make", "-s", "-C", LIB, f"BUILD={tmp / 'native'}"])
    checked(["make", "-s", "-f", WASM_DIR / "Makefile", f"WASM_BUILD={tmp / 'wasm'}"])
    out = {
        "tmp": tmp,
        "node": node,
        "cli": tmp / "native" / "scannlite-cli",
        "so": tmp / "native" / "libscannlite.so",
        "wasm": tmp / "wasm" / "scannlite.wasm",
    }
    assert all(out[k].is_file() for k in ("cli", "so", "wasm"))
    return out


@pytest.fixture(scope="module")
def cases(built):
    """Every vector set at its own leaves, one leaf and all leaves, and filtered, with the CLI's
    lines; and bad inputs with the library's messages."""
    tmp, cli = built["tmp"], built["cli"]
    vectors = make_vectors(tmp / "vectors")
    assert len(vectors) >= 10, "native_vectors made too few vector sets"
    searches = []

    def add(v, leaves, allow=None, normalized=None):
        name = (
            f"{v['name']}-k{v['k']}-leaves{leaves or 'default'}{'-allow' if allow else ''}"
            f"{'-l2normalized' if normalized else ''}"
        )
        expected = tmp / f"{name}.cli.txt"
        queries = normalized or v["queries"]  # the CLI searches queries as given
        if allow is None:
            args = ["search", v["path"], queries, v["k"], *([leaves] if leaves else [])]
        else:
            args = ["filter", v["path"], queries, v["k"], leaves, allow]
        expected.write_text(checked([cli, *args]).stdout)
        assert expected.read_text().strip(), f"the CLI found nothing for {name}"
        searches.append(
            {
                "name": name,
                "path": str(v["path"]),
                "queries": str(v["queries"]),
                "dim": v["dim"],
                "k": v["k"],
                "leaves": leaves,
                "allow": str(allow) if allow else None,
                "normalized": str(normalized) if normalized else None,
                "expected": str(expected),
                "output": str(tmp / f"{name}.wasm.txt"),
            }
        )

    for v in vectors:
        for leaves in dict.fromkeys((v.get("leaves", 0), 1, ALL_LEAVES)):
            add(v, leaves)
        # As an app that sets l2_normalize: the module normalises (l2Normalize), the CLI is given
        # the host library's normalised queries; both the vectors and the results must agree.
        normalized = tmp / f"{v['name']}.l2normalized.f32"
        raw = np.fromfile(v["queries"], dtype="<f4").reshape(-1, v["dim"])
        host_l2_normalize(built["so"], raw).astype("<f4").tofile(normalized)
        add(v, v.get("leaves", 0), normalized=normalized)
        # Every third id from 1: the k nearest allowed items among the searched leaves.
        allow = tmp / f"{v['name']}.allow.txt"
        allow.write_text("".join(f"{i}\n" for i in range(1, int(cli_info(cli, v["path"])["size"]), 3)))
        for leaves in dict.fromkeys((v.get("leaves", 0), ALL_LEAVES)):
            add(v, leaves, allow)

    first = vectors[0]
    data = Path(first["path"]).read_bytes()
    bundle = Path(next(v["path"] for v in vectors if v["path"].endswith(".tflite"))).read_bytes()
    corrupt = bytearray(data)
    corrupt[len(data) // 3] ^= 0x40  # inside a data block: its CRC no longer matches
    bad = tmp / "bad"
    bad.mkdir()
    files = {
        "truncated": data[: len(data) // 2],
        "truncated-footer": data[:-1],
        "bundle-truncated": bundle[:-100],
        "bundle-half": bundle[: len(bundle) // 2],
        "corrupt": bytes(corrupt),
        "foreign": built["wasm"].read_bytes(),
        "text": b"not an index\n" * 100,
        "empty": b"",
    }
    errors = []
    for name, content in files.items():
        (bad / name).write_bytes(content)
        errors.append(
            {
                "name": name,
                "path": str(bad / name),
                "message": cli_open_error(cli, bad / name, first["queries"], first["k"]),
            }
        )
    query = np.fromfile(first["queries"], dtype="<f4")[: first["dim"] + 1]
    for name, q, k in (
        ("k=0", query[:-1], 0),
        ("k=-1", query[:-1], -1),
        ("dimension-1", query[:-2], first["k"]),
        ("dimension+1", query, first["k"]),
    ):
        errors.append(
            {
                "name": name,
                "path": str(first["path"]),
                "queries": str(first["queries"]),
                "k": k,
                "dim_delta": len(q) - first["dim"],
                "message": library_search_error(built["so"], first["path"], q, k),
            }
        )
    manifest = tmp / "cases.json"
    manifest.write_text(json.dumps({"searches": searches, "errors": errors}, indent=1))
    return {"manifest": manifest, "searches": searches, "errors": errors}


def test_wasm_gives_the_host_cli_lines_on_every_vector_set(built, cases):
    env = {**os.environ, "SCANNLITE_WASM": str(built["wasm"]), "SCANNLITE_WASM_CASES": str(cases["manifest"])}
    proc = run([built["node"], "--test", "--test-reporter=spec", NODE_TEST], env=env, cwd=ROOT)
    assert proc.returncode == 0, f"node --test failed:\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    n_tests = NODE_OWN_TESTS + len(cases["searches"]) + len(cases["errors"])
    counts = dict(re.findall(r"^\S* ?(tests|pass|fail) (\d+)$", proc.stdout, re.M))
    assert counts == {"tests": str(n_tests), "pass": str(n_tests), "fail": "0"}, proc.stdout[-3000:]
    # The Node test compares too; this is the same comparison from this side, on the files it wrote.
    for c in cases["searches"]:
        want = Path(c["expected"]).read_text().splitlines()
        got = Path(c["output"]).read_text().splitlines()
        assert got == want, c["name"]
        assert all(len(line.split(" ")) == 5 for line in got), c["name"]
    # Every lookup type and distance of the vectors went through the module.
    kinds = {tuple(cli_info(built["cli"], c["path"])[f] for f in ("lookup", "distance")) for c in cases["searches"]}
    assert {
        ("FLOAT", "dot"),
        ("FLOAT", "l2"),
        ("INT16", "dot"),
        ("INT16", "l2"),
        ("INT8", "dot"),
        ("INT8", "l2"),
        ("NONE", "dot"),
        ("NONE", "l2"),
    } <= kinds


def test_errors_are_one_line_and_name_the_cause(cases):
    by_name = {e["name"]: e["message"] for e in cases["errors"]}
    assert all(m and "\n" not in m for m in by_name.values())
    # Distinct causes, distinct messages (a cut .ldb has no footer, so it is as foreign as a text file).
    assert len({by_name[n] for n in ("foreign", "empty", "corrupt", "k=0", "dimension-1", "bundle-half")}) == 6


def test_module_is_small_and_self_contained(built):
    wasm = built["wasm"].read_bytes()
    assert wasm[:8] == b"\0asm\x01\0\0\0"
    assert len(wasm) < 100_000, f"scannlite.wasm is {len(wasm)} bytes"
    assert b"producers" not in wasm and b"scannlite_search_filtered" in wasm  # stripped, but exports kept


@pytest.mark.browser
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
    # Each vector set at its own leaves (raw and l2-normalised), one of them filtered, plus a truncated file.
    chosen = [c for c in cases["searches"] if c["leaves"] == 0 and c["allow"] is None]
    chosen.append(next(c for c in cases["searches"] if c["allow"] is not None))
    jobs = []
    for i, c in enumerate(chosen):
        shutil.copy(c["path"], site / f"index{i}.bin")
        shutil.copy(c["queries"], site / f"queries{i}.f32")
        allow = [int(x) for x in Path(c["allow"]).read_text().split()] if c["allow"] else None
        jobs.append(
            {
                "bundle": f"index{i}.bin",
                "queries": f"queries{i}.f32",
                "dim": c["dim"],
                "k": c["k"],
                "leaves": c["leaves"],
                "allow": allow,
                "normalize": c["normalized"] is not None,
            }
        )
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
        const options = job.allow ? { leaves: job.leaves, allow: job.allow } : { leaves: job.leaves };
        for (let q = 0; q * job.dim < all.length; q++) {
          let query = all.subarray(q * job.dim, (q + 1) * job.dim);
          if (job.normalize) query = index.l2Normalize(query.slice());
          lines.push(...formatResults(q, index.search(query, job.k, options)));
        }
        index.close();
        out.push(lines);
      }
      let error = null;
      try { await open(await bytes("truncated.bin")); } catch (e) { error = e.message; }
      return { out, error, agent: navigator.userAgent };
    }"""
    console = []
    with StaticFolder(site) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{server.url}/index.html")
            got = page.evaluate(script, jobs)
        finally:
            browser.close()
    assert "Chrome/" in got["agent"]
    assert len(got["out"]) == len(chosen)
    for c, lines in zip(chosen, got["out"]):
        assert lines == Path(c["expected"]).read_text().splitlines(), c["name"]
    assert got["error"] == bad["message"], console
