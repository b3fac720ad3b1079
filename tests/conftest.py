import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "tflite-support"

# Worker processes (device / tensorflow) must import test-support modules too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.fail(f"Google's tflite-support fixtures are missing at {FIXTURES}")
    return FIXTURES
