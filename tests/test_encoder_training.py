"""Training through the CLI: progress, per-epoch recall@5, the model directory, and refusals."""

import json

import pytest
from typer.testing import CliRunner

from scannlite.cli.app import app
from scannlite.plugin.dual_encoder import jobs, modeldir
from scannlite.plugin.embedders.errors import EncoderError
from tests.support.tiny_coco import make_tiny_coco

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

runner = CliRunner()


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return make_tiny_coco(tmp_path_factory.mktemp("coco"), n=40, missing=1, truncated=1)


def test_cli_trains_word_tower_with_progress_and_recall(coco, tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNLITE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            f"coco:{coco}",
            "--out",
            str(out),
            "--text-tower",
            "words",
            "--epochs",
            "2",
            "--image-size",
            "32",
            "--batch-size",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "epoch   1/2" in result.output and "epoch   2/2" in result.output and "recall@5" in result.output
    assert "skipped 2 image(s)" in result.output and "missing file" in result.output
    marker = modeldir.read_marker(out)
    assert [h["epoch"] for h in marker["history"]] == [1, 2]
    assert 0.0 <= marker["final"]["recall@5"] <= 1.0
    assert marker["settings"]["text_tower"] == "words" and marker["images"]["skipped"] == 2
    names = {p.name for p in out.iterdir()}
    assert {
        modeldir.MARKER,
        modeldir.IMAGE_WEIGHTS,
        modeldir.TEXT_HEAD_WEIGHTS,
        modeldir.WORDS_VOCAB,
        modeldir.HELDOUT_SAMPLE,
    } <= names
    vocab = (out / modeldir.WORDS_VOCAB).read_text().splitlines()
    assert vocab[:3] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2"] and "RED 3" not in vocab  # built from captions, cased
    assert any(line.startswith("RED ") for line in vocab)
    assert not list(tmp_path.glob(".model.*"))  # no staging leftovers


def test_minilm_tower_trains_on_cached_caption_vectors(coco, tmp_path, monkeypatch):
    monkeypatch.setenv("SCANNLITE_CACHE_DIR", str(tmp_path / "cache"))
    summary = jobs.train(
        f"coco:{coco}", tmp_path / "m", text_tower="minilm", epochs=1, image_size=32, batch_size=16, show_progress=False
    )
    assert summary["timings"]["caption_vectors_cached"] is False
    assert list((tmp_path / "cache").glob("minilm-captions-*.npz"))
    assert not (tmp_path / "m" / modeldir.MINILM_WEIGHTS).exists()  # frozen: MiniLM comes from the package


def test_bad_inputs_are_refused_with_one_line(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "saved_model.pb").write_bytes(b"\0")
    r = runner.invoke(app, ["convert", str(foreign), "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "is not a scannlite dual-encoder model directory" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--dataset", "openmoji", "--out", str(foreign)])
    assert r.exit_code == 1 and "not a scannlite model directory" in r.output
    empty = tmp_path / "captions_empty.json"
    empty.write_text(json.dumps({"images": [], "annotations": []}))
    r = runner.invoke(app, ["train", "--dataset", f"coco:{empty}", "--out", str(tmp_path / "m"), "--epochs", "1"])
    assert r.exit_code == 1 and "has no captions" in r.output and "Traceback" not in r.output
    r = runner.invoke(
        app, ["train", "--dataset", "openmoji", "--out", str(tmp_path / "m"), "--image-backbone", "mobilenet_v2"]
    )
    assert r.exit_code == 1 and "never downloads" in r.output
    bad_marker = tmp_path / "bad"
    bad_marker.mkdir()
    (bad_marker / modeldir.MARKER).write_text(
        '{"format": "scannlite-dual-encoder", "format_version": 1, "settings": {}}'
    )
    with pytest.raises(EncoderError, match="incomplete"):
        modeldir.read_marker(bad_marker)


def test_every_command_help_has_an_example():
    for command in ("train", "convert", "embedders"):
        r = runner.invoke(app, [command, "--help"])
        assert r.exit_code == 0 and "Example: scannlite " + command in r.output


def test_keras_applications_backbone_only_from_local_weights(coco, tmp_path, monkeypatch):
    from scannlite.store.workers.boundary import run_in

    monkeypatch.setenv("SCANNLITE_CACHE_DIR", str(tmp_path / "cache"))
    weights = run_in(
        "tensorflow",
        "tests.support.selfcheck:save_backbone_weights",
        "mobilenet_v3_small",
        str(tmp_path / "local.weights.h5"),
    )
    summary = jobs.train(
        f"coco:{coco}",
        tmp_path / "m",
        text_tower="words",
        epochs=1,
        image_size=32,
        batch_size=16,
        show_progress=False,
        image_backbone="mobilenet_v3_small",
        image_backbone_weights=weights,
    )
    assert summary["settings"]["image_backbone"] == "mobilenet_v3_small"
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            f"coco:{coco}",
            "--out",
            str(tmp_path / "m2"),
            "--epochs",
            "1",
            "--image-backbone",
            "mobilenet_v2",
            "--image-weights",
            weights,
            "--text-tower",
            "words",
        ],
    )
    assert r.exit_code == 1 and "not weights of this architecture" in r.output and "Traceback" not in r.output


def test_finetuned_minilm_is_saved_and_reloaded(coco, tmp_path):
    from scannlite.store.workers.boundary import run_in

    jobs.train(
        f"coco:{coco}",
        tmp_path / "ft",
        text_tower="minilm",
        epochs=1,
        image_size=32,
        batch_size=8,
        finetune_minilm=True,
        finetune_learning_rate=1e-3,
        show_progress=False,
    )
    assert (tmp_path / "ft" / modeldir.MINILM_WEIGHTS).is_file()
    cosines = run_in(
        "tensorflow",
        "tests.support.selfcheck:finetuned_minilm_cosines",
        str(tmp_path / "ft"),
        ["a red circle", "a blue square"],
    )
    assert cosines.max() < 0.9999  # the reloaded MiniLM is the fine-tuned one, not the package's
