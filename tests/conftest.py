import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.shared_fixtures import require_fixtures

ROOT = Path(__file__).resolve().parent.parent

# Worker processes (device / tensorflow) must import test-support modules too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def fixtures_dir():
    """../shared/fixtures/tflite-support, with every file the tests read; else the test fails
    with one message naming the missing files (tests/support/shared_fixtures.py: the one policy)."""
    return require_fixtures()


@pytest.fixture
def embedder(tmp_path):
    """A tiny uint8 image tower (24-d, 8x8 inputs) the Task Library's ImageEmbedder runs; tests that need
    another embedder define their own fixture of this name."""
    from tests.support.model_builders import image_model

    w = np.random.default_rng(3).standard_normal((24, 8 * 8 * 3)).astype(np.float32) / 30
    path = tmp_path / "image_embedder.tflite"
    path.write_bytes(image_model(w, 8, 8, "uint8"))
    return path


def pytest_collection_modifyitems(config, items):
    """Tests marked ``task_library`` need tflite-support (wheels for Python 3.11 only): where it cannot
    install they are skipped, saying so; everything else runs on every Python (docs/python-versions.md)."""
    from scannlite.store.bundle.ondevice.tflite_modules import task_library_installed

    if task_library_installed():
        return
    skip = pytest.mark.skip(reason="needs the Task Library: tflite-support has no wheels for this Python")
    for item in items:
        if "task_library" in item.keywords:
            item.add_marker(skip)
