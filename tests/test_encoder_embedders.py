"""The embedder plugin interface and the built-in embedders, with bad inputs."""

import json
from importlib.metadata import version

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from scannlite.cli.app import app
from scannlite.plugin.dual_encoder import jobs
from scannlite.plugin.embedders import registry as embedders
from scannlite.plugin.embedders.hookspecs import EmbedderError, EmbedderType, hookimpl
from scannlite.plugin.embedders.registry import embed_images, embed_texts
from tests.support.tiny_coco import make_tiny_coco

pytestmark = [pytest.mark.tensorflow, pytest.mark.device, pytest.mark.slow]

BUILTINS = {
    "tflite-text": "text",
    "tflite-image": "image",
    "vectors": "vectors",
    "dual-encoder-text": "text",
    "dual-encoder-image": "image",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedders")
    coco = make_tiny_coco(root / "coco", n=24)
    jobs.train(
        f"coco:{coco}", root / "model", text_tower="words", epochs=1, image_size=32, batch_size=12, show_progress=False
    )
    jobs.convert(root / "model", root / "tflite")
    return root


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    Image.new("RGB", (50, 30), "red").save(d / "rgb.png")
    Image.new("L", (20, 20), 90).save(d / "grey.png")
    Image.new("RGBA", (16, 16), (0, 0, 255, 128)).save(d / "rgba.png")
    Image.new("CMYK", (24, 24), (255, 0, 0, 0)).save(d / "cmyk.jpg")
    Image.new("P", (12, 12), 5).save(d / "palette.gif")
    Image.new("RGB", (64, 64), "green").save(d / "whole.jpg")
    data = (d / "whole.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    Image.new("1", (9000, 9000)).save(d / "huge.png")
    Image.new("RGB", (1, 7), "blue").save(d / "thin.png")  # a skip, not a failed device batch
    good = ["rgb.png", "grey.png", "rgba.png", "cmyk.jpg", "palette.gif", "whole.jpg"]
    bad = ["truncated.jpg", "corrupt.png", "huge.png", "thin.png", "missing.png"]
    return [str(d / n) for n in good], [str(d / n) for n in bad]


def test_builtins_come_from_scannlites_own_entry_point():
    found = {e.name: e for e in embedders.list_embedders()}
    assert {name: found[name].kind for name in BUILTINS} == BUILTINS
    assert {found[name].source for name in BUILTINS} == {f"scannlite {version('scannlite')}"}
    assert embedders.registry().sources["builtin"] == f"scannlite {version('scannlite')}"
    assert embedders.registry().problems == []


def test_what_a_user_names_resolves_to_a_type_and_a_path(models, tmp_path):
    tflite = models / "tflite" / "text_embedder.tflite"
    assert embedders.resolve(tflite, "text") == (embedders.get_embedder_type("tflite-text"), str(tflite.resolve()))
    assert embedders.resolve(tflite, "image")[0].name == "tflite-image"  # a suffix both kinds open
    assert embedders.resolve(models / "model", "image")[0].name == "dual-encoder-image"
    named = embedders.resolve(f"dual-encoder-text:{models / 'model'}", "text")
    assert named == (embedders.get_embedder_type("dual-encoder-text"), str((models / "model").resolve()))
    assert embedders.setting(*named) == f"dual-encoder-text:{(models / 'model').resolve()}"
    assert embedders.label(*named) == "model"
    with pytest.raises(EmbedderError, match="no such file, and no installed embedder has that name"):
        embedders.resolve(tmp_path / "gone.tflite", "text")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(EmbedderError, match="no installed text embedder opens .txt files"):
        embedders.resolve(tmp_path / "notes.txt", "text")
    with pytest.raises(embedders.EmbedderKindError, match="vectors is a vectors embedder, not a text one"):
        embedders.resolve("vectors", "text")
    with pytest.raises(EmbedderError, match="tflite-text needs a .tflite model: name it as tflite-text:PATH"):
        embedders.open_for("tflite-text", "text")
    # A bare path that opens only as the other kind says so, with the caller's hint.
    with pytest.raises(embedders.EmbedderKindError, match="is a text embedder, not an image one; use --texts"):
        embedders.open_for(tflite, "image", {"text": "use --texts"})
    et, path, emb = embedders.open_for(tflite, "text")
    with pytest.raises(EmbedderError, match="outputs 128-d vectors but the catalog holds 16-d vectors"):
        embedders.check_dim(et, path, emb, 16)


def test_a_plugin_registers_an_embedder():
    class ThirdParty:
        @hookimpl
        def scannlite_embedders(self):
            return [EmbedderType("constant-text", "text", "every text to (1, 0)", lambda path: None)]

    pm = embedders.plugin_manager()
    plugin = ThirdParty()
    pm.register(plugin, name="thirdparty")
    try:
        found = {e.name: e for e in embedders.list_embedders()}
        assert found["constant-text"].source == "thirdparty" and found["constant-text"].kind == "text"
        r = CliRunner().invoke(app, ["embedders", "--json"])
        assert r.exit_code == 0
        assert {"constant-text", *BUILTINS} <= {e["name"] for e in json.loads(r.output)}
    finally:
        pm.unregister(plugin)
    with pytest.raises(EmbedderError, match="unknown embedder 'constant-text'"):
        embedders.get_embedder_type("constant-text")


def test_embed_images_decodes_here_batches_and_reports_skips(models, image_files):
    good, bad = image_files
    calls = []
    vectors, kept, skipped = embed_images(
        models / "tflite" / "image_embedder.tflite",
        good + bad,
        batch=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert vectors.shape == (len(good), 128) and vectors.dtype == np.float32 and kept == good
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    reasons = {p.rsplit("/", 1)[-1]: why for p, why in skipped}
    assert reasons["truncated.jpg"].startswith("unreadable") and reasons["missing.png"] == "missing file"
    assert reasons["huge.png"].startswith("too large") and reasons["corrupt.png"]
    assert reasons["thin.png"].startswith("too small (1x7 pixels")
    assert len(calls) == 2 and calls[-1] == (len(good) + len(bad), len(good) + len(bad))  # 2 device calls
    one_call, _, _ = embed_images(models / "tflite" / "image_embedder.tflite", good, batch=1000)
    assert np.allclose(one_call, vectors, atol=1e-6)
    keras = embedders.open_embedder("dual-encoder-image", models / "model").embed(good)
    assert np.min(np.sum(keras.vectors * vectors, axis=1)) >= 0.999  # the Keras reference agrees


def test_embed_texts_and_wrong_signatures(models, tmp_path):
    tflite = models / "tflite"
    vectors = embed_texts(tflite / "text_embedder.tflite", ["A red circle.", "blue square", ""])
    assert vectors.shape == (3, 128)
    assert embed_texts(tflite / "text_embedder.tflite", []).shape == (0, 128)
    none, kept, skipped = embed_images(tflite / "image_embedder.tflite", [str(tmp_path / "gone.png")])
    assert none.shape == (0, 128) and kept == [] and skipped == [(str(tmp_path / "gone.png"), "missing file")]
    with pytest.raises(EmbedderError, match="not a text embedder.*an image model") as e:
        embed_texts(tflite / "image_embedder.tflite", ["x"])
    assert "\n" not in str(e.value)
    with pytest.raises(EmbedderError, match="not an image embedder.*a text model"):
        embed_images(tflite / "text_embedder.tflite", [])
    (tmp_path / "fake.tflite").write_bytes(b"not a model at all")
    with pytest.raises(EmbedderError, match="not a TFLite model"):
        embed_texts(tmp_path / "fake.tflite", ["x"])
    with pytest.raises(EmbedderError, match="not found"):
        embed_texts(tmp_path / "absent.tflite", ["x"])
    with pytest.raises(EmbedderError, match="not a scannlite dual-encoder model directory"):
        embedders.open_embedder("dual-encoder-text", tmp_path)


def test_vectors_files(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(12, dtype=np.float64).reshape(4, 3))
    got = embedders.open_embedder("vectors", tmp_path / "v.npy").embed()
    assert got.vectors.dtype == np.float32 and got.vectors.shape == (4, 3) and got.keys == ["0", "1", "2", "3"]
    pq.write_table(pa.table({"id": ["a", "b"], "embedding": [[1.0, 2.0], [3.0, 4.0]]}), tmp_path / "v.parquet")
    got = embedders.open_embedder("vectors", tmp_path / "v.parquet").embed()
    assert got.keys == ["a", "b"] and got.vectors.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    cases = {"nan.npy": np.array([[1.0, np.nan]]), "flat.npy": np.ones(3)}
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
    pq.write_table(pa.table({"vector": [[1.0, 2.0], [3.0]]}), tmp_path / "ragged.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "novec.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    expected = {
        "nan.npy": "NaN",
        "flat.npy": "2-D",
        "ragged.parquet": "ragged",
        "novec.parquet": "no vector column",
        "bad.parquet": "not a readable Parquet",
    }
    for name, message in expected.items():
        with pytest.raises(EmbedderError, match=message):
            embedders.open_embedder("vectors", tmp_path / name).embed()
    with pytest.raises(EmbedderError, match=".npy or .parquet"):
        embedders.open_embedder("vectors", tmp_path / "v.txt" if (tmp_path / "v.txt").write_text("1") else "")


def test_cli_process_never_loads_tensorflow_or_task_library(models):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scannlite.cli import app\n"
        "from scannlite.plugin.embedders.registry import embed_texts, list_embedders\n"
        "assert len(list_embedders()) >= 5\n"
        f"v = embed_texts({str(models / 'tflite' / 'text_embedder.tflite')!r}, ['red circle'])\n"
        "bad = [m for m in sys.modules if m == 'tensorflow' or m.startswith(('tensorflow.', 'keras',\n"
        "       'tflite_support.task', 'tensorflow_lite_support.python.task'))]\n"
        "print(v.shape, bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(1, 128) []"
