"""The suite's markers are registered, and pytest refuses unregistered ones (so a typo such as
``@pytest.mark.tensorflw`` cannot silently put a test into `make test-quick`)."""

import subprocess
import sys
import textwrap

MARKERS = {"slow", "tensorflow", "device", "browser"}


def test_markers_are_registered_and_strict(pytestconfig):
    registered = {line.split(":", 1)[0].strip() for line in pytestconfig.getini("markers")}
    assert MARKERS <= registered
    assert "--strict-markers" in pytestconfig.getini("addopts")


def test_an_unregistered_marker_fails_the_run(tmp_path, pytestconfig):
    (tmp_path / "test_typo.py").write_text(
        textwrap.dedent("""
        import pytest

        @pytest.mark.tensorflw
        def test_x():
            pass
    """)
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(pytestconfig.inipath),
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "'tensorflw' not found in `markers` configuration option" in proc.stdout
