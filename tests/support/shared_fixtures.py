"""Google's tflite-support test data in ../shared/fixtures/tflite-support: one policy when it is missing.

The files are an independent reference (made by Google, not by this project), so a test that
needs them never skips: it fails with one message naming every missing file. Tests take the
``fixtures_dir`` fixture (tests/conftest.py) or call :func:`tflite_fixture`; modules whose helpers
read the files mark all their tests with ``pytest.mark.usefixtures("fixtures_dir")``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "tflite-support"

# Every file of that directory the tests read.
FIXTURE_FILES = (
    "regex_one_embedding_with_metadata.tflite",
    "regex_searcher.tflite",
    "regex_index.ldb",
    "mobilebert_index.ldb",
    "universal_sentence_encoder_index.ldb",
    "searcher_index.ldb",
    "dummy_index.ldb",
    "burger_jpg_embedding.pbtxt",
)


def require_fixtures(*names: str) -> Path:
    """Return FIXTURES if every named file is there (all of FIXTURE_FILES by default); else fail."""
    wanted = names or FIXTURE_FILES
    if any(not (FIXTURES / name).is_file() for name in wanted):
        missing = [name for name in dict.fromkeys((*FIXTURE_FILES, *wanted)) if not (FIXTURES / name).is_file()]
        pytest.fail(
            f"Google's tflite-support test fixtures are missing from {FIXTURES}: {', '.join(missing)} "
            "(tests that need them fail, never skip; see ../shared/fixtures/tflite-support/README.md)",
            pytrace=False,
        )
    return FIXTURES


def tflite_fixture(name: str) -> Path:
    """The path of one fixture file, failing the test (naming every missing file) if it is absent."""
    return require_fixtures(name) / name
