"""The demo's text tower in weight-only int8 keeps its retrieval quality through the bundle.

The quality rule of issue 23 (docs/quality.md): against the float32 text tower of the same model,
the quantized tower may lose at most 0.01 caption -> image recall@10 through a verified bundle
searched by the Task Library's TextSearcher, on OpenMoji's held-out emoji and on the novel ones.
The model is trained here for a few epochs (the rule compares two conversions of one model), with
bench/quality.py's own measurement, so the test and the documented figures cannot drift apart."""

from __future__ import annotations

import pytest

from bench import quality
from scannlite.plugin.dual_encoder import jobs
from scannlite.plugin.dual_encoder.demo_openmoji import IMAGE_TOWER, TEXT_QUANTIZATION

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow, pytest.mark.device, pytest.mark.task_library]


@pytest.mark.timeout(2400)
def test_int8_text_tower_loses_at_most_001_recall_at_10_through_the_bundle(tmp_path):
    assert TEXT_QUANTIZATION == quality.QUANT_MODES[-1]  # the demo ships what is measured
    jobs.train("openmoji", tmp_path / "model", show_progress=False, **{**IMAGE_TOWER, "epochs": 5})
    base, quant = quality.quantization_rows(tmp_path)
    assert base["mode"] == "none" and quant["mode"] == "int8-weights"
    assert quant["text_bytes"] * 3.5 < base["text_bytes"]  # about 4x smaller
    assert quant["parity"] >= jobs.INT8_WEIGHTS_PARITY_THRESHOLD
    for subset in ("all", "novel"):
        lost = base["bundle"][subset][10] - quant["bundle"][subset][10]
        assert lost <= quality.MAX_RECALL_LOSS, (subset, base["bundle"][subset], quant["bundle"][subset])
    assert base["bundle"]["all"][10] > 0.2  # a trained tower, not a collapsed one
