"""A third-party embedder plugin, installed as a real package, works everywhere scannlite
names embedders: `scannlite embedders`, `add --texts`, `configure` and the Datasette search API.

The package (tests/plugins/scannlite_toy_embedder) is installed with pip into a temporary
folder that only the subprocesses here see (PYTHONPATH), never into the project's venv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index import snapshot

pytestmark = [pytest.mark.device, pytest.mark.slow]

SCANNLITE = str(Path(sys.executable).with_name("scannlite"))
PLUGIN_SRC = Path(__file__).parent / "plugins" / "scannlite_toy_embedder"
TEXTS = [
    "a red apple on a table",
    "a green apple in the grass",
    "the blue sea at night",
    "a night sky full of stars",
    "red and green traffic lights",
    "!!! ???",
]


def toy_module():
    """The plugin's own embedding function, loaded from its source (not installed here)."""
    spec = importlib.util.spec_from_file_location(
        "toy_ngrams_source", PLUGIN_SRC / "scannlite_toy_embedder" / "__init__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args, env=None, ok=True):
    proc = subprocess.run([SCANNLITE, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def with_path(folder: Path) -> str:
    return os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    """pip install --target of the plugin package (from a copy, so no build files land in tests/)."""
    tmp = tmp_path_factory.mktemp("toy")
    src = shutil.copytree(PLUGIN_SRC, tmp / "src")
    site = tmp / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (site / "scannlite_toy_embedder-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


@pytest.fixture(scope="module")
def toy_env(toy_site) -> dict:
    return {**os.environ, "PYTHONPATH": with_path(toy_site)}


def test_the_plugin_is_listed_only_where_it_is_installed(toy_env):
    listed = {e["name"]: e for e in json.loads(run("embedders", "--json", env=toy_env).stdout)}
    assert listed["toy-ngrams"]["kind"] == "text" and listed["toy-ngrams"]["source"] == "scannlite-toy-embedder 0.1.0"
    assert listed["tflite-text"]["source"].startswith("scannlite ")  # built-ins: the same entry-point group
    assert "toy-ngrams" in run("embedders", env=toy_env).stdout
    assert "toy-ngrams" not in {e["name"] for e in json.loads(run("embedders", "--json").stdout)}  # venv untouched


def test_add_configure_and_datasette_use_the_plugin(toy_env, toy_site, tmp_path, monkeypatch):
    toy = toy_module()
    cat_path = tmp_path / "notes.catalog"
    run("init", cat_path, "--dim", toy.DIM, "--no-normalize")
    (tmp_path / "notes.txt").write_text("\n".join(TEXTS) + "\n")

    out = run("add", cat_path, "--texts", tmp_path / "notes.txt", "--embedder", "toy-ngrams", env=toy_env).stdout
    assert "added 5, updated 0, unchanged 0, skipped 1" in out and "nothing to embed" in out
    with Catalog.open(cat_path) as cat:
        for n, text in enumerate(TEXTS[:5], 1):
            stored = cat.vectors_for(np.array([cat.get(str(n))["item"]]))[0]
            np.testing.assert_array_equal(stored, toy.ngram_vector(text))  # exactly the plugin's output
        assert cat.get("6") is None and cat.settings["text_embedder"] == "toy-ngrams"

    # configure: recorded by name, checked for kind and dimension; unknown without the package.
    assert json.loads(run("configure", cat_path, "--json").stdout)["text_embedder"] == "toy-ngrams"
    run("configure", cat_path, "--unset", "text-embedder")
    out = json.loads(run("configure", cat_path, "--text-embedder", "toy-ngrams", "--json", env=toy_env).stdout)
    assert out["text_embedder"] == "toy-ngrams"
    assert "toy-ngrams is a text embedder, not an image one" in error_line(
        run("configure", cat_path, "--image-embedder", "toy-ngrams", env=toy_env, ok=False)
    )
    assert "toy-ngrams is a text embedder, not an image one" in error_line(
        run("add", cat_path, "--images", tmp_path, "--embedder", "toy-ngrams", env=toy_env, ok=False)
    )
    assert "needs no model file" in error_line(
        run(
            "add",
            cat_path,
            "--texts",
            tmp_path / "notes.txt",
            "--embedder",
            f"toy-ngrams:{tmp_path}",
            env=toy_env,
            ok=False,
        )
    )
    assert "no installed embedder has that name" in error_line(
        run("configure", cat_path, "--text-embedder", "toy-ngrams", ok=False)
    )
    Catalog.create(tmp_path / "wide", toy.DIM + 1).close()
    assert f"toy-ngrams outputs {toy.DIM}-d vectors but the catalog holds {toy.DIM + 1}-d vectors" in error_line(
        run("configure", tmp_path / "wide", "--text-embedder", "toy-ngrams", env=toy_env, ok=False)
    )

    # The Datasette search API embeds a text query with the plugin.
    run("build", cat_path)
    from tests.support.datasette_site import DatasetteServer, get_json, same_hits

    monkeypatch.setenv("PYTHONPATH", with_path(toy_site))
    with DatasetteServer(cat_path / "catalog.db", log=tmp_path / "datasette.log") as server:
        name = server.database_names()[str((cat_path / "catalog.db").resolve())]
        query = "an apple"
        status, data = get_json(
            f"{server.url}/-/scannlite/{name}/search.json?" + urllib.parse.urlencode({"q": query, "k": 3, "exact": 1})
        )
    assert status == 200, data
    assert data["query"]["kind"] == "text" and data["query"]["embedder"] == "toy-ngrams"
    with Catalog.open(cat_path) as cat:
        same_hits(data["results"], snapshot.search(cat, toy.ngram_vector(query), k=3, exact=True)[0])
    assert data["results"][0]["id"] in ("1", "2")


def test_a_broken_plugin_is_reported_not_fatal(tmp_path):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[scannlite]\nbroken = no_such_module_here.plugin\n")
    proc = run("embedders", "--json", env={**os.environ, "PYTHONPATH": with_path(tmp_path)})
    assert {"tflite-text", "tflite-image"} <= {e["name"] for e in json.loads(proc.stdout)}
    assert "warning: plugin 'broken' from broken-plugin 1.0 failed to load: ModuleNotFoundError" in proc.stderr


def test_catalogs_configured_with_a_bare_model_path_keep_working(tmp_path, fixtures_dir):
    """Before embedders were recorded by type, catalogs held the model's path alone."""
    from scannlite.plugin.embedders.registry import embed_texts
    from scannlite.plugin.integrations.datasette_plugin.queries import SearchParams, query_vector

    model = fixtures_dir / "regex_one_embedding_with_metadata.tflite"
    with Catalog.create(tmp_path / "old", 16) as cat:
        with cat.writing(), cat.transaction():
            cat.set_setting("text_embedder", str(model.resolve()))
    with Catalog.open(tmp_path / "old") as cat:
        params = SearchParams(
            text="a funny comedy",
            vector=None,
            image=None,
            image_name=None,
            npy=None,
            snapshot=None,
            k=1,
            leaves=None,
            exact=False,
        )
        vector, how = query_vector(cat, params)
    assert how["embedder"] == model.name
    np.testing.assert_allclose(vector, embed_texts(model, ["a funny comedy"])[0], rtol=1e-6)
