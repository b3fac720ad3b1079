"""The two on-device runtimes (store/bundle/runtimes.py; docs/native.md, "Two runtimes"): the Task
Library in a device process and libscannlite in the CLI's own process answer ``bundle query``
identically (ids, order, distances, metadata) on real exported bundles, text and image; export
and ``bundle verify`` run the probes through both and require identical answers, and record which
runtimes verified; without the library, one line says so and the Task Library verifies alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle import inspection, runtimes
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.workers.boundary import run_in
from tests.support.datasette_site import REGEX_MODEL, SENTENCES, embed_texts

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.task_library, pytest.mark.usefixtures("fixtures_dir")]

BIN = Path(sys.executable).parent
DEVICE = DeviceProcesses()
QUERIES = ["a funny film with a great cast", "the worst script of the year", "a touching love story", "zzz"]


def cli(*args, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "scannlite"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def query_json(bundle: Path, args: list, runtime: str, k: int, env: dict | None = None) -> list:
    return json.loads(cli("bundle", "query", bundle, *args, "-k", k, "--runtime", runtime, "--json", env=env).stdout)


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory) -> Path:
    """Review sentences and 1,500 vectors around them (normalised: the bundle says l2_normalize),
    16 leaves, 3 searched, asymmetric hashing; exported by the CLI."""
    tmp = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(7)
    base = embed_texts(SENTENCES)
    noise = base[rng.integers(0, len(base), 1500)] + 0.35 * rng.standard_normal((1500, base.shape[1]))
    path = tmp / "reviews"
    with Catalog.create(path, 16, normalize=True, index=IndexConfig(num_leaves=16, leaves_to_search=3)) as cat:
        cat.add(
            [f"r{i:02d}" for i in range(len(SENTENCES))] + [f"n{i:04d}" for i in range(len(noise))],
            np.vstack([base, noise]),
            SENTENCES + [f"near {i}" for i in range(len(noise))],
        )
        build(cat)
    bundle = tmp / "reviews.tflite"
    out = cli("export", path, "--embedder", REGEX_MODEL, "--out", bundle).stdout
    label = runtimes.label(runtimes.TASK_LIBRARY), runtimes.label(runtimes.SCANNLITE)
    # The export line says which runtimes verified, and that they agreed.
    assert f"verified by {label[0]} and {label[1]}" in out and "the runtimes' answers identical on" in out, out
    return bundle


def test_text_queries_are_identical_through_both_runtimes(text_bundle):
    args = [a for q in QUERIES for a in ("--text", q)]
    phone = query_json(text_bundle, args, "task-library", 10)
    ours = query_json(text_bundle, args, "scannlite", 10)
    assert all(len(row) == 10 for row in phone)
    assert ours == phone  # metadata (the ids here), order and distances, as JSON floats: exactly
    # The default is libscannlite where it is built; the text output names each query.
    assert json.loads(cli("bundle", "query", text_bundle, *args, "-k", 10, "--json").stdout) == phone
    assert QUERIES[0] in cli("bundle", "query", text_bundle, "--text", QUERIES[0], "-k", 2).stdout


def test_vector_queries_are_searched_as_the_embedder_would_be(text_bundle, tmp_path):
    """--vector-file: the raw embedder vectors, normalised as the bundle says, give the text answers."""
    raw = run_in("device", "scannlite.plugin.device.runtime:text_embed", REGEX_MODEL.read_bytes(), QUERIES)
    np.save(tmp_path / "q.npy", raw)
    by_text = query_json(text_bundle, [a for q in QUERIES for a in ("--text", q)], "scannlite", 7)
    assert query_json(text_bundle, ["--vector-file", tmp_path / "q.npy"], "scannlite", 7) == by_text
    np.save(tmp_path / "one.npy", raw[0])
    assert query_json(text_bundle, ["--vector-file", tmp_path / "one.npy"], "scannlite", 7) == by_text[:1]
    # Bad inputs: one line each, exit 1.
    np.save(tmp_path / "wide.npy", np.ones((2, 17), np.float32))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "nan.npy", np.full(16, np.nan, np.float32))
    for args, says in [
        (
            ["--vector-file", tmp_path / "q.npy", "--runtime", "task-library"],
            "the Task Library cannot search by vector",
        ),
        (["--vector-file", tmp_path / "wide.npy"], "17"),
        (["--vector-file", tmp_path / "junk.npy"], "not a valid .npy file"),
        (["--vector-file", tmp_path / "nan.npy"], "finite"),
        (["--vector-file", tmp_path / "gone.npy"], "no such file"),
        (["--text", "x", "--runtime", "tensorflow"], "unknown runtime 'tensorflow'"),
        (["--text", "x", "--vector-file", tmp_path / "q.npy"], "exactly one of"),
    ]:
        proc = cli("bundle", "query", text_bundle, *args, ok=False)
        assert proc.returncode == 1 and says in proc.stderr and "\n" not in proc.stderr.strip(), (args, proc.stderr)


def test_verify_and_info_name_both_runtimes(text_bundle):
    by = [runtimes.label(runtimes.TASK_LIBRARY), runtimes.label(runtimes.SCANNLITE)]
    manifest = json.loads(text_bundle.with_suffix(".manifest.json").read_text())
    assert manifest["verified_by"] == by and manifest["parity"]["identical"] == manifest["parity"]["queries"] > 200
    assert f"verified by {', '.join(by)}" in cli("bundle", "info", text_bundle).stdout
    out = cli("bundle", "verify", text_bundle).stdout
    assert out.startswith(f"ok: verified by {by[0]} and {by[1]}") and "identical on" in out, out
    # The runtimes are named, not hard-wired: libscannlite alone verifies (as where tflite-support is
    # absent) against the numpy device-equivalent search, on the same probes, the embedder's vectors
    # coming from the device side's embed_bundle.
    problems, rep = inspection.verify(text_bundle, device=DEVICE)
    assert not problems and rep.verified_by == by and rep.identical == rep.queries > 200
    problems, alone = inspection.verify(text_bundle, device=DEVICE, runtimes=(runtimes.SCANNLITE,))
    assert not problems and alone.verified_by == by[1:] and alone.queries == rep.queries and alone.identical == 0
    assert alone.latency_ms is None and not alone.notes


def test_a_one_ulp_difference_between_runtimes_is_a_problem(text_bundle):
    """The runtimes' comparison is exact: real answers, one distance moved by one float32 ulp."""
    raw = run_in("device", "scannlite.plugin.device.runtime:text_embed", REGEX_MODEL.read_bytes(), QUERIES)
    mine = runtimes.native_search(text_bundle, raw, 5, True)
    phone = DEVICE.query_bundle(bundle=str(text_bundle), texts=QUERIES, max_results=5, l2_normalize=True)
    assert runtimes.exact_problems(phone, mine, ("task-library", "scannlite"), "q") == []
    nudged = [list(row) for row in mine]
    m, d = nudged[2][3]
    nudged[2][3] = (m, float(np.nextafter(np.float32(d), np.float32(np.inf))))
    problems = runtimes.exact_problems(phone, nudged, ("task-library", "scannlite"), "q")
    assert len(problems) == 1 and "q query 2, rank 4" in problems[0]
    swapped = [list(row) for row in mine]
    swapped[1][0], swapped[1][1] = swapped[1][1], swapped[1][0]
    assert len(runtimes.exact_problems(phone, swapped, ("task-library", "scannlite"), "q")) == 1


def test_without_the_library_the_task_library_answers_and_verifies_alone(text_bundle, tmp_path):
    gone = {"SCANNLITE_NATIVE_LIB": str(tmp_path / "no-libscannlite.so")}
    proc = cli("bundle", "query", text_bundle, "--text", QUERIES[0], "-k", 4, "--json", env=gone)
    assert proc.stderr.strip().startswith("using the Task Library: libscannlite is not built")
    assert json.loads(proc.stdout) == query_json(text_bundle, ["--text", QUERIES[0]], "scannlite", 4)
    proc = cli("bundle", "query", text_bundle, "--text", "x", "--runtime", "scannlite", env=gone, ok=False)
    assert proc.returncode == 1 and "libscannlite is not built" in proc.stderr
    out = cli("bundle", "verify", text_bundle, env=gone).stdout
    label = runtimes.label(runtimes.TASK_LIBRARY)
    assert out.startswith(f"ok: verified by {label}: ") and "; not verified with libscannlite (" in out, out


def test_image_queries_are_identical_through_both_runtimes(tmp_path):
    from PIL import Image

    from scannlite.store.images import synthetic_images
    from tests.support.model_builders import image_model

    weights = np.random.default_rng(3).standard_normal((24, 8 * 8 * 3)).astype(np.float32) / 30
    model = tmp_path / "image_embedder.tflite"
    model.write_bytes(image_model(weights, 8, 8, "uint8"))
    images = synthetic_images(600, 8, 8, seed=11)
    vectors = run_in("device", "scannlite.plugin.device.runtime:image_embed", model.read_bytes(), images)
    path = tmp_path / "photos"
    index = IndexConfig(num_leaves=8, leaves_to_search=2, dims_per_block=2)
    with Catalog.create(path, 24, distance="l2", index=index) as cat:
        cat.add([f"img{i}" for i in range(len(images))], vectors)
        build(cat)
    bundle = tmp_path / "photos.tflite"
    cli("export", path, "--embedder", model, "--out", bundle)
    queries = []
    for i in (7, 123, 400, 401):
        noisy = np.clip(images[i].astype(int) + np.random.default_rng(i).integers(-40, 40, images[i].shape), 0, 255)
        queries.append(tmp_path / f"q{i}.png")
        Image.fromarray(noisy.astype(np.uint8)).save(queries[-1])
    args = [a for q in queries for a in ("--image", q)]
    phone = query_json(bundle, args, "task-library", 8)
    assert query_json(bundle, args, "scannlite", 8) == phone and all(len(r) == 8 for r in phone)
