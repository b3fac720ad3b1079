"""make demo's job, end to end (one training epoch to keep it short), and its fast re-run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow, pytest.mark.device]

SCANNLITE = str(Path(sys.executable).with_name("scannlite"))
# Time limits (s) of the demo processes. Measured on this 2-core machine while other test runs
# shared it: the first OpenMoji run (one epoch) and its re-run took 160-190 s together, the synthetic
# demo 31-36 s. Each process gets a generous limit of its own, so a hang fails naming that step;
# pytest-timeout (`timeout = 900` in pyproject.toml, for every test) must never fire first, as it
# would stop the test without saying which step hung: the OpenMoji test raises it to its two
# limits plus a minute, the synthetic one stays under the 900 s default.
FIRST_RUN, RERUN, SYNTHETIC = 900, 300, 600


@pytest.mark.timeout(FIRST_RUN + RERUN + 60)
def test_openmoji_demo_end_to_end_then_rerun_reuses_everything(tmp_path):
    out = tmp_path / "demo"
    first = subprocess.run(
        [SCANNLITE, "demo", "--out", str(out), "--epochs", "1"], capture_output=True, text=True, timeout=FIRST_RUN
    )
    assert first.returncode == 0, first.stderr[-3000:]
    text = first.stdout
    assert "trained the dual encoder on OpenMoji" in text and "Task Library vs Keras cosine" in text
    assert "added 4024" in text and "the Task Library matched scannlite" in text
    for name in ("emoji_text_searcher", "emoji_image_searcher"):
        manifest = json.loads((out / f"{name}.manifest.json").read_text())
        assert manifest["verified"] and manifest["items"] == 4024 and manifest["dim"] == 128
    page = (out / "index.html").read_text()
    assert page.count("<section>") == 9 and 'src="openmoji/' in page
    assert (out / "contact_sheet.png").stat().st_size > 10_000
    again = subprocess.run([SCANNLITE, "demo", "--out", str(out)], capture_output=True, text=True, timeout=RERUN)
    assert again.returncode == 0, again.stderr[-3000:]
    for phrase in (
        "reusing the dual encoder",
        "reusing the converted towers",
        "unchanged 4024",
        "up to date",
        "reusing emoji_text_searcher.tflite",
        "reusing emoji_image_searcher.tflite",
    ):
        assert phrase in again.stdout, phrase


def test_synthetic_demo(tmp_path):
    proc = subprocess.run(
        [SCANNLITE, "demo", "--synthetic", "--out", str(tmp_path)], capture_output=True, text=True, timeout=SYNTHETIC
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "incremental build" in proc.stdout and "recall@10" in proc.stdout
    assert (tmp_path / "synthetic.ldb").is_file() and (tmp_path / "synthetic.manifest.json").is_file()
