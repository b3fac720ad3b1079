"""configure: the catalog records its embedders and thumbnail folder; bad ones are refused."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.build import build

pytestmark = pytest.mark.slow

SCANNLITE = str(Path(sys.executable).with_name("scannlite"))
REGEX_MODEL = "regex_one_embedding_with_metadata.tflite"  # Google's 16-d text embedder


def run(*args, ok=True, cwd=None):
    proc = subprocess.run([SCANNLITE, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def one_line_error(proc, message):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


@pytest.fixture
def cat16(tmp_path):
    Catalog.create(tmp_path / "cat", 16).close()
    return tmp_path / "cat"


def settings(path):
    with Catalog.open(path) as cat:
        return dict(cat._conn.execute("SELECT key, value FROM catalog_config"))


def test_settings_are_stored_absolute_and_shown_by_info(cat16, tmp_path, fixtures_dir):
    (tmp_path / "photos").mkdir()
    model = fixtures_dir / REGEX_MODEL
    out = json.loads(
        run("configure", cat16, "--text-embedder", model, "--thumbnails-root", "photos", "--json", cwd=tmp_path).stdout
    )
    assert out == {
        "text_embedder": f"tflite-text:{model.resolve()}",
        "image_embedder": None,
        "thumbnails_root": str((tmp_path / "photos").resolve()),
    }
    info = json.loads(run("info", cat16, "--json").stdout)
    assert (info["text_embedder"], info["image_embedder"], info["thumbnails_root"]) == (
        out["text_embedder"],
        None,
        out["thumbnails_root"],
    )
    # JSON values in catalog_config, like every other setting
    assert json.loads(settings(cat16)["text_embedder"]) == out["text_embedder"]

    assert "thumbnails-root: " + out["thumbnails_root"] in run("configure", cat16).stdout
    run("configure", cat16, "--unset", "thumbnails-root")
    info = json.loads(run("info", cat16, "--json").stdout)
    assert info["thumbnails_root"] is None and info["text_embedder"] == out["text_embedder"]


def test_configuring_is_not_a_data_change(cat16, tmp_path, fixtures_dir, rng):
    """Settings commit no new catalog version: the next build still finds nothing to do."""
    with Catalog.open(cat16) as cat:
        cat.add([f"i{i}" for i in range(5)], rng.standard_normal((5, 16)))
        build(cat)
        head = cat.head_seq
    run("configure", cat16, "--text-embedder", fixtures_dir / REGEX_MODEL)
    with Catalog.open(cat16) as cat:
        assert cat.head_seq == head and not build(cat).published


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text-embedder", "{tmp}/none.tflite"], "no such file"),
        (["--text-embedder", "{tmp}/notes.tflite"], "not a TFLite model"),
        (["--text-embedder", "{tmp}/notes.txt"], "no installed text embedder opens .txt files"),
        (["--text-embedder", "vectors"], "vectors is a vectors embedder, not a text one"),
        (
            ["--image-embedder", "{fixtures}/" + REGEX_MODEL],
            "is a text embedder, not an image one; pass it as --text-embedder",
        ),
        (["--thumbnails-root", "{tmp}/notes.txt"], "is not a directory"),
        (["--unset", "colour"], "--unset 'colour': expected one of text-embedder, image-embedder, thumbnails-root"),
        (["--thumbnails-root", "{tmp}", "--unset", "thumbnails-root"], "contradict each other"),
    ],
)
def test_bad_settings_are_refused_in_one_line_and_nothing_changes(cat16, tmp_path, fixtures_dir, args, message):
    (tmp_path / "notes.txt").write_text("not a model, but long enough to have bytes 4..8")
    (tmp_path / "notes.tflite").write_text("not a model, but long enough to have bytes 4..8")
    before = settings(cat16)
    proc = run("configure", cat16, *[a.format(tmp=tmp_path, fixtures=fixtures_dir) for a in args], ok=False)
    one_line_error(proc, message)
    assert settings(cat16) == before


def test_an_embedder_of_another_dimension_is_refused(tmp_path, fixtures_dir):
    Catalog.create(tmp_path / "cat12", 12).close()
    one_line_error(
        run("configure", tmp_path / "cat12", "--text-embedder", fixtures_dir / REGEX_MODEL, ok=False),
        "outputs 16-d vectors but the catalog holds 12-d vectors",
    )


def test_new_commands_have_help_with_an_example():
    for name in ("configure", "export-parquet"):
        assert name in run("--help").stdout
        help_text = " ".join(run(name, "--help").stdout.split())
        assert "Example: scannlite " + name in help_text, name
