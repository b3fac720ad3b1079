import os
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_fixtures import require_fixtures

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
    with one message naming the missing files (tests/shared_fixtures.py: the one policy)."""
    return require_fixtures()
