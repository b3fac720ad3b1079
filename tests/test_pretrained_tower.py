"""The pretrained image tower: EfficientNet-Lite0's weights read without PyTorch, rebuilt in Keras
and checked against a reference output, frozen features cached, a trained projection, and a
Task Library ImageEmbedder that matches Keras (with the float16 fallback when int8 bends it).

The reference: ImageNet's class 652, "military uniform", for the Grace Hopper photograph that
matplotlib ships (the standard test image of TensorFlow's label_image example, which MobileNet
and Inception also label "military uniform"); the runners-up must be clothing classes too.
"""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from scannlite.plugin.dual_encoder import efficientnet_files, jobs, modeldir
from scannlite.plugin.dual_encoder.settings import TrainSettings
from scannlite.plugin.dual_encoder.torch_legacy import load_state_dict
from scannlite.plugin.embedders.errors import EncoderError
from scannlite.store.workers.boundary import run_in
from tests.support.tiny_coco import make_tiny_coco

MILITARY_UNIFORM = 652
CLOTHING = {
    652,
    834,
    906,
    457,
    465,
    400,
    617,
    667,
}  # uniform, suit, Windsor tie, bow tie, vest, gown, lab coat, mortarboard


def test_legacy_reader_reads_every_packaged_tensor_with_numpy():
    state = load_state_dict(efficientnet_files.weights_path())
    assert len(state) == 296  # 49 conv+BN groups, the classifier, BN batch counters
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in state.values())
    assert (state["_bn1.running_var"] > 0).all()  # real trained statistics, not zeros or garbage


def test_legacy_reader_refuses_bad_files_in_one_line(tmp_path):
    real = efficientnet_files.weights_path().read_bytes()
    cases = {
        "missing.pth": None,
        "random.pth": os.urandom(4096),
        "truncated.pth": real[: len(real) // 2],
        "zip.pth": b"PK\x03\x04" + bytes(100),
        "magic.pth": pickle.dumps(12345) + real[20:],
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(EncoderError) as info:
            load_state_dict(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value), name


def test_legacy_reader_runs_no_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    magic, protocol = 0x1950A86A20F9469CFC6C, 1001
    path = tmp_path / "evil.pth"
    path.write_bytes(
        pickle.dumps(magic)
        + pickle.dumps(protocol)
        + pickle.dumps({"little_endian": True})
        + pickle.dumps({"x": Evil()})
        + pickle.dumps([])
    )
    with pytest.raises(EncoderError, match="refusing to load"):
        load_state_dict(path)
    assert not marker.exists()


def test_packaged_backbone_takes_no_weights_file(tmp_path):
    f = tmp_path / "w.h5"
    f.write_bytes(b"x")
    with pytest.raises(EncoderError, match="reads its weights from its package"):
        TrainSettings(image_backbone="efficientnet_lite0", image_backbone_weights=str(f)).validate()
    TrainSettings(image_backbone="efficientnet_lite0").validate()


@pytest.mark.tensorflow
def test_keras_rebuild_labels_the_reference_photo_military_uniform():
    import matplotlib

    photo = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    top5 = run_in("tensorflow", "tests.support.selfcheck:efficientnet_lite0_top5", str(photo))
    assert top5[0][0] == MILITARY_UNIFORM and top5[0][1] > 0.3, top5
    assert sum(c in CLOTHING for c, _ in top5) >= 4, top5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    coco = make_tiny_coco(root / "coco", n=36, seed=5)
    cache = root / "cache"
    old = os.environ.get("SCANNLITE_CACHE_DIR")
    os.environ["SCANNLITE_CACHE_DIR"] = str(cache)
    try:
        first = jobs.train(
            f"coco:{coco}",
            root / "model",
            text_tower="words",
            epochs=2,
            image_size=64,
            batch_size=12,
            image_backbone="efficientnet_lite0",
            show_progress=False,
        )
        again = jobs.train(
            f"coco:{coco}",
            root / "model2",
            text_tower="words",
            epochs=1,
            image_size=64,
            batch_size=12,
            image_backbone="efficientnet_lite0",
            show_progress=False,
        )
    finally:
        if old is None:
            os.environ.pop("SCANNLITE_CACHE_DIR", None)
        else:
            os.environ["SCANNLITE_CACHE_DIR"] = old
    return root, first, again, cache


@pytest.mark.tensorflow
@pytest.mark.device
@pytest.mark.slow
def test_features_are_computed_once_and_the_head_trains(trained):
    root, first, again, cache = trained
    assert first["timings"]["image_features_cached"] is False
    assert again["timings"]["image_features_cached"] is True
    assert len(list(cache.glob("features-efficientnet_lite0-*.npz"))) == 1
    assert first["settings"]["image_backbone"] == "efficientnet_lite0"
    assert all(np.isfinite(h["loss"]) and "collapsed" not in h for h in first["history"])
    assert first["history"][-1]["loss"] < first["history"][0]["loss"] + 1e-6 or first["final"]["recall@1"] > 0


@pytest.mark.tensorflow
@pytest.mark.device
@pytest.mark.slow
def test_image_embedder_matches_keras_and_int8_falls_back_to_float16(trained, tmp_path):
    from scannlite.plugin.embedders.tflite_signature import check_image_embedder

    root = trained[0]
    result = jobs.convert(root / "model", tmp_path / "float")
    assert result["parity"]["image"] >= jobs.PARITY_THRESHOLD and result["image_quantization"] == "none"
    info = check_image_embedder(result["image_embedder"])  # the acceptance policy export uses
    assert [tuple(t[2]) for t in info["inputs"]] == [(1, 64, 64, 3)] and info["outputs"][0][2][-1] == 128, info
    assert result["image_bytes"] > 13_000_000  # the backbone ships inside the embedder

    quant = jobs.convert(root / "model", tmp_path / "quant", quantize=True)
    # Dynamic int8 bends this backbone's vectors; the conversion says so and ships float16.
    assert "fallback" in quant and "float16" in quant["fallback"], quant.get("fallback")
    assert quant["image_quantization"] == "float16"
    assert quant["parity"]["image"] >= jobs.FLOAT16_PARITY_THRESHOLD
    assert quant["image_bytes"] < 0.6 * result["image_bytes"]
    sample = np.load(root / "model" / modeldir.HELDOUT_SAMPLE)
    assert len(sample["images"]) >= 1
