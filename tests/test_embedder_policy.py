"""One embedder acceptance policy: `add`, `configure` and `export` judge every model alike.

Each model below used to be accepted by `add --texts`/`--images` (which had its own signature
check) and refused by `configure` and `export`; now all three ask store/bundle/embedder_checks.py,
and refuse it with the same reason.
"""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scannlite.cli.app import app
from scannlite.plugin.device.probe_model import probe_flatbuffer
from scannlite.store.catalog.catalog import Catalog
from tests.support.model_builders import image_model, text_model_with_inputs

pytestmark = pytest.mark.device

REGEX_MODEL = "regex_one_embedding_with_metadata.tflite"  # Google's 16-d text embedder
TEXTS = ["The weather was excellent.", "It was a sunny day.", "The cat is chasing after the mouse."]


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def refused_models():
    w = np.random.default_rng(3).standard_normal((16, 48)).astype(np.float32)
    return {
        # one int32 input without RegexTokenizer metadata: TextSearcher cannot tokenize
        "no_tokenizer": ("text", probe_flatbuffer(np.ones((3, 16), np.float32)), "has no RegexTokenizer metadata"),
        # three int32 inputs without BERT tokenizer metadata
        "plain_three_inputs": ("text", text_model_with_inputs(3), "has 3 inputs but neither BERT"),
        # float32 pixels without NormalizationOptions: ImageSearcher refuses it
        "float_image": ("image", image_model(w, 4, 4, "float32"), "needs NormalizationOptions"),
    }


@pytest.fixture
def workspace(tmp_path):
    Catalog.create(tmp_path / "cat", 16).close()
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "images" / "red.png")
    return tmp_path


@pytest.mark.parametrize("name", list(refused_models()))
def test_add_configure_and_export_refuse_alike(workspace, name):
    kind, data, reason = refused_models()[name]
    model = workspace / f"{name}.tflite"
    model.write_bytes(data)
    cat = workspace / "cat"
    source = ("--texts", workspace / "texts.txt") if kind == "text" else ("--images", workspace / "images")
    verdicts = {
        "add": cli("add", cat, *source, "--embedder", model),
        "configure": cli("configure", cat, f"--{kind}-embedder", model),
        "export": cli("export", cat, "--embedder", model, "--out", workspace / "out.tflite"),
    }
    for path, (code, output) in verdicts.items():
        assert code == 1 and "error:" in output and reason in output, (path, output)
    with Catalog.open(cat) as c:
        assert c.count() == 0 and not c.settings.get(f"{kind}_embedder")
    assert not (workspace / "out.tflite").exists()


def test_a_model_of_the_other_kind_is_refused_by_add_and_configure(workspace):
    model = workspace / "image.tflite"
    model.write_bytes(image_model(np.ones((16, 48), np.float32), 4, 4, "uint8"))
    for args in (
        ("add", workspace / "cat", "--texts", workspace / "texts.txt", "--embedder", model),
        ("configure", workspace / "cat", "--text-embedder", model),
    ):
        code, output = cli(*args)
        assert code == 1 and "not a text" in output and "image" in output, (args[0], output)


def test_an_accepted_model_is_accepted_by_all_three(workspace, fixtures_dir):
    model, cat = fixtures_dir / REGEX_MODEL, workspace / "cat"
    for args in (
        ("add", cat, "--texts", workspace / "texts.txt", "--embedder", model),
        ("build", cat),
        ("configure", cat, "--text-embedder", model),
        ("export", cat, "--embedder", model, "--out", workspace / "out.tflite", "--no-verify"),
    ):
        code, output = cli(*args)
        assert code == 0, (args[0], output)
    assert (workspace / "out.tflite").is_file()
