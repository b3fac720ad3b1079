"""scannlite on Pythons without tflite-support (3.12, 3.13): nothing it imports needs the Task Library,
MediaPipe's embedders give the Task Library's vectors (bit for bit where measured so: Google's regex model, uint8 image
towers at every size; within ulps on float32 image towers), and the metadata parser version
scannlite computes for MediaPipe's populator is the one tflite-support's compiled helper stamps.

The first test runs everywhere: on 3.13 as is, on 3.11 with ``SCANNLITE_TASK_LIBRARY=off`` and the
Task Library's modules blocked, so it fails on either if a module reaches for tflite-support. The
comparisons with the Task Library run where it is installed (3.11). docs/python-versions.md.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.bundle.ondevice.tflite_modules import task_library_installed
from scannlite.store.workers.boundary import run_in

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "tflite-support"

needs_task_library = pytest.mark.skipif(
    not task_library_installed(), reason="tflite-support is not installed (it has wheels for Python 3.11 only)"
)

NO_TASK_LIBRARY = r"""
import importlib, importlib.abc, pkgutil, sys
import numpy as np

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tflite_support", "tensorflow_lite_support"):
            raise ImportError(f"{name} is blocked: this process stands for Python 3.13, where tflite-support cannot install")
        return None

sys.meta_path.insert(0, Block())
import scannlite, scannlite.store, scannlite.plugin, scannlite.cli

names = []
for package in (scannlite.store, scannlite.plugin, scannlite.cli):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        names.append(info.name)
for name in names:
    importlib.import_module(name)

# What needs the schemas and metadata tools: read a bundle, write a probe model, pack an index.
from scannlite.plugin.device import runtime
from scannlite.store.bundle.ondevice import read_bundle
from scannlite.store.bundle.ondevice.tflite_modules import metadata_module, schemas

schemas(); metadata_module()
bundle = read_bundle(open(sys.argv[1], "rb").read())
assert bundle.index_file is not None
probe = runtime.make_probe_model(np.eye(16, dtype=np.float32))
packed = runtime.attach_index(probe, bundle.index_file)
assert read_bundle(packed).index_file == bundle.index_file
assert read_bundle(packed).min_parser_version == "1.4.0", read_bundle(packed).min_parser_version
loaded = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("tflite_support", "tensorflow_lite_support")})
assert not loaded, loaded
print(len(names), "modules")
"""


def test_no_module_needs_tflite_support(tmp_path):
    env = dict(os.environ, SCANNLITE_TASK_LIBRARY="off", PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    done = subprocess.run(
        [sys.executable, "-c", NO_TASK_LIBRARY, str(FIXTURES / "regex_searcher.tflite")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-2]) > 50


PROBE_BUNDLE = r"""
import sys
import numpy as np
from scannlite.store.workers.boundary import run_in

index = open(sys.argv[1], "rb").read()
vectors = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
model = run_in("device", "scannlite.plugin.device.runtime:make_probe_model", vectors)
open(sys.argv[2], "wb").write(run_in("device", "scannlite.plugin.device.runtime:attach_index", model, index))
"""


def test_bundle_of_probe_model_without_task_library_is_searched_by_libscannlite(tmp_path):
    """MediaPipe's populator packs an index the C searcher reads, in a device process without tflite-support
    (a process of its own: device workers stay warm, and this one must not serve other tests)."""
    from scannlite.store.bundle.ondevice import read_bundle
    from scannlite.store.searcher import NativeSearcher

    index = (FIXTURES / "regex_index.ldb").read_bytes()
    path = tmp_path / "bundle.tflite"
    env = dict(os.environ, SCANNLITE_TASK_LIBRARY="off")
    done = subprocess.run(
        [sys.executable, "-c", PROBE_BUNDLE, str(FIXTURES / "regex_index.ldb"), str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_bundle(path.read_bytes()).index_file == index
    query = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    with NativeSearcher(str(path)) as s:
        packed = s.search(query, 3)
    with NativeSearcher(index) as s:
        alone = s.search(query, 3)
    assert list(packed.metadata) == list(alone.metadata) and len(packed.metadata) == 3


@needs_task_library
def test_min_parser_version_equals_tflite_supports(tmp_path):
    """tflite-support's populator stamps its compiled helper's version; ours must compute the same."""
    import flatbuffers

    from scannlite.plugin.device import tflite_zip
    from scannlite.store.bundle.ondevice.bundle_file import read_metadata
    from scannlite.store.bundle.ondevice.tflite_modules import min_parser_version

    index = (FIXTURES / "regex_index.ldb").read_bytes()
    probe = run_in("device", "scannlite.plugin.device.runtime:make_probe_model", np.eye(16, dtype=np.float32))
    bundle = run_in("device", "scannlite.plugin.device.runtime:attach_index", probe, index)
    models = {
        "probe": probe,
        "bundle": bundle,
        **{p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*.tflite"))},
    }
    seen = set()
    for name, model in models.items():
        md = read_metadata(tflite_zip.split(model)[0])
        assert md is not None, name
        md.minParserVersion = None
        builder = flatbuffers.Builder(0)
        builder.Finish(md.Pack(builder), b"M001")
        real = run_in("device", "tests.support.metadata_version:real_min_parser_version", bytes(builder.Output()))
        assert min_parser_version(builder.Output()) == real, name
        seen.add(real)
    assert {"1.2.1", "1.4.0"} <= seen, seen  # a regex tokenizer and a packed ScaNN index


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@needs_task_library
def test_mediapipe_embeddings_equal_task_librarys():
    texts = ["hello world", "It's a Test, isn't it?", "", "café crème"]
    model = str(FIXTURES / "regex_one_embedding_with_metadata.tflite")
    got = {
        engine: run_in("device", "scannlite.plugin.device.runtime:text_embed", model, texts, engine=engine)
        for engine in ("task-library", "mediapipe")
    }
    assert np.array_equal(_bits(got["task-library"]), _bits(got["mediapipe"]))


BUNDLE_STEPS = r"""
import hashlib, sys
import numpy as np
from scannlite.store.workers.boundary import run_in
from tests.support.model_builders import image_model

index = open(sys.argv[1], "rb").read()
vectors = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
probe = run_in("device", "scannlite.plugin.device.runtime:make_probe_model", vectors)
w = np.random.default_rng(3).standard_normal((16, 8 * 8 * 3)).astype(np.float32) / 30
image = run_in("device", "tests.support.model_builders:with_image_metadata", image_model(w, 8, 8, "float32"))
made = [probe, image] + [run_in("device", "scannlite.plugin.device.runtime:attach_index", m, index) for m in (probe, image)]
print(" ".join(hashlib.sha256(m).hexdigest() for m in made))
"""


@needs_task_library
def test_mediapipe_populator_writes_tflite_supports_bytes():
    """Probe models, image metadata and packed indexes: the same bytes from either populator, so a
    bundle written on 3.13 is the one 3.11 writes."""
    out = {}
    for setting in ("on", "off"):
        env = dict(os.environ, SCANNLITE_TASK_LIBRARY=setting)
        done = subprocess.run(
            [sys.executable, "-c", BUNDLE_STEPS, str(FIXTURES / "regex_index.ldb")],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        out[setting] = done.stdout.split()
    assert len(out["on"]) == 4 and out["on"] == out["off"]


# Sizes that take each of the Task Library's resize paths: general up and down, width unchanged,
# even and odd integer factors, extreme aspect ratios, and the tower's own size.
SIZES = [
    (13, 20),
    (31, 9),
    (5, 6),
    (16, 16),
    (4, 8),
    (96, 96),
    (24, 24),
    (24, 40),
    (8, 20),
    (8, 8),
    (200, 300),
    (3, 1000),
]


@needs_task_library
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_mediapipe_image_embeddings_equal_task_librarys_at_every_size(dtype):
    """uint8 towers: bit for bit at every size. float32 towers: within a few ulps."""
    from tests.support.model_builders import image_model

    w = np.random.default_rng(3).standard_normal((24, 8 * 8 * 3)).astype(np.float32) / 30
    model = image_model(w, 8, 8, dtype)
    if dtype == "float32":
        model = run_in("device", "tests.support.model_builders:with_image_metadata", model)
    images = [np.random.default_rng(i).integers(0, 256, (*s, 3), dtype=np.uint8) for i, s in enumerate(SIZES)]
    got = [
        run_in("device", "scannlite.plugin.device.runtime:image_embed", model, images, engine=engine)
        for engine in ("task-library", "mediapipe")
    ]
    if dtype == "uint8":
        same = (_bits(got[0]) == _bits(got[1])).all(axis=1)
        assert same.all(), [SIZES[i] for i in np.flatnonzero(~same)]
    else:
        # A float input is normalised as pixel * (2 / 255) - 1 by MediaPipe and (pixel - 127.5) / 127.5
        # by the Task Library: the same resize, then values an ulp or two apart (docs/python-versions.md).
        np.testing.assert_allclose(got[1], got[0], rtol=0, atol=5e-7)
        assert not np.array_equal(got[0], got[1])  # if this starts to hold, the docs must say so


def test_the_benchmarks_refuse_in_one_line_without_the_task_library(tmp_path):
    """`make bench` times the Task Library as the reference device: where tflite-support cannot install
    the benchmarks say so in one line and exit non-zero before making any data."""
    env = dict(os.environ, SCANNLITE_TASK_LIBRARY="off", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "tflite-support is not installed" in proc.stderr
    assert not (tmp_path / "work").exists()


def test_asking_for_the_task_library_where_it_cannot_install_is_one_line(tmp_path):
    """`bundle query --runtime task-library` on a Python without tflite-support names why, before
    reading the bundle (not an ImportError from a device process)."""
    bundle = tmp_path / "b.tflite"
    bundle.write_bytes(b"not read")
    scannlite = Path(sys.executable).with_name("scannlite")
    env = dict(os.environ, SCANNLITE_TASK_LIBRARY="off")
    proc = subprocess.run(
        [str(scannlite), "bundle", "query", str(bundle), "--text", "cat", "--runtime", "task-library"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    assert (
        proc.stderr
        == "error: --runtime task-library: tflite-support is not installed (the Task Library runs only where it is)\n"
    )
