"""The CLI and the Python API are one facade: every command with ``--json`` that the API also offers prints
exactly the API's answer (README, "From Python"), and every other ``--json`` command is named here as having
no API counterpart, so a new one cannot drift unnoticed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import scannlite
from scannlite.cli.app import app
from scannlite.store.index.snapshot import jsonable_metadata

# command path -> how the API answers it (db, the test's files) -> the same JSON
PARITY = {
    "info": lambda db, f: db.info(),
    "snapshots": lambda db, f: db.snapshots(),
    "diff": lambda db, f: db.diff(1, 2),
    "search": lambda db, f: [
        [{**h, "metadata": jsonable_metadata(h["metadata"])} for h in row]
        for row in db.search(np.load(f["queries"]), k=5)
    ],
    "configure": lambda db, f: db.configure(),
    "queries": lambda db, f: db.queries(),
}
ARGS = {
    "info": [],
    "snapshots": [],
    "diff": ["1", "2"],
    "search": ["--vector-file", "{queries}", "-k", "5"],
    "configure": [],
    "queries": ["list"],
}
# --json commands the Python API does not offer (bundles made elsewhere, training, conversion, the installed
# embedders: none is an operation on one catalog).
NO_API = {"bundle info", "bundle query", "train", "convert", "embedders"}


def json_commands(group, prefix: str = "") -> set[str]:
    """Every command path of the typer app that takes ``--json``."""
    import typer.main

    click_group = typer.main.get_command(group) if not hasattr(group, "commands") else group
    found = set()
    for name, cmd in click_group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(cmd, "commands"):
            found |= json_commands(cmd, path + " ")
        elif any("--json" in getattr(p, "opts", ()) for p in cmd.params):
            found.add(path)
    return found


def test_every_json_command_is_compared_or_has_no_api_counterpart():
    commands = json_commands(app)
    assert commands == set(PARITY) | NO_API, (
        f"not compared with the API: {sorted(commands - set(PARITY) - NO_API)}; "
        f"listed but gone: {sorted((set(PARITY) | NO_API) - commands)}"
    )


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((600, 16)).astype(np.float32)
    np.save(tmp / "queries.npy", x[:3])
    with scannlite.create(tmp / "cat", dim=16, num_leaves=8) as db:
        db.add(ids=[f"v{i}" for i in range(500)], vectors=x[:500], metadata=[f"item {i}" for i in range(500)])
        db.build()
        db.add(ids=[f"v{i}" for i in range(500, 600)], vectors=x[500:], metadata=[f"item {i}" for i in range(100)])
        db.delete(["v1", "v2"])
        db.add_queries(x[:40] + 0.1)
        db.build()
    return tmp / "cat", {"queries": str(tmp / "queries.npy")}


@pytest.mark.parametrize("command", sorted(PARITY))
def test_the_cli_prints_what_the_api_returns(catalog, command):
    path, files = catalog
    args = [a.format(**files) for a in ARGS[command]]
    result = CliRunner().invoke(app, [command, str(path), *args, "--json"])
    assert result.exit_code == 0, result.output
    with scannlite.open(path) as db:
        want = PARITY[command](db, files)
    got = json.loads(result.stdout)
    assert got == json.loads(json.dumps(want)), f"scannlite {command} --json differs from the API"
    assert got, f"scannlite {command} --json printed nothing to compare"


def test_the_package_is_the_python_api():
    assert {"open", "create", "Database", "ScannliteError"} <= set(dir(scannlite))
    from scannlite.store.bundle.ondevice.errors import IndexFormatError
    from scannlite.store.workers.boundary import ProcessFailed, WorkerError

    for error in (ProcessFailed, WorkerError, IndexFormatError):
        assert issubclass(error, scannlite.ScannliteError), error
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = scannlite.nope
