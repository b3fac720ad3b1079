"""`sqlite-utils scannlite ...`: the scannlite app reached through sqlite-utils' plugin hook,
exercised with the real sqlite-utils executable."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SCANNLITE = [str(BIN / "scannlite")]
SQLITE_UTILS = [str(BIN / "sqlite-utils"), "scannlite"]
ENTRY_POINT_HINT = (
    "scannlite's sqlite_utils entry point is not installed: pyproject needs "
    '[project.entry-points.sqlite_utils] scannlite = "scannlite.plugin.integrations.sqlite_utils_plugin"'
)


def run(prefix, *args, ok=True):
    proc = subprocess.run(prefix + [str(a) for a in args], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module", autouse=True)
def plugin_installed():
    plugins = json.loads(run([str(BIN / "sqlite-utils")], "plugins").stdout)
    if not any("register_commands" in p["hooks"] and p["name"] == "scannlite" for p in plugins):
        pytest.fail(ENTRY_POINT_HINT)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("su")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 10)).astype(np.float32)
    (tmp / "rows.jsonl").write_text(
        "\n".join(json.dumps({"id": f"r{i}", "embedding": v.tolist(), "metadata": f"row {i}"}) for i, v in enumerate(x))
    )
    np.save(tmp / "q.npy", x[:3] + 0.1 * rng.standard_normal((3, 10)).astype(np.float32))
    # The whole life of a catalog through sqlite-utils.
    run(SQLITE_UTILS, "init", tmp / "cat", "--dim", 10, "--num-leaves", 4)
    run(SQLITE_UTILS, "add", tmp / "cat", tmp / "rows.jsonl")
    run(SQLITE_UTILS, "build", tmp / "cat")
    return tmp


def test_search_through_sqlite_utils_equals_scannlite_search(catalog):
    for extra in ([], ["--exact"], ["--leaves-to-search", "1", "-k", "7"]):
        args = ["search", catalog / "cat", "--vector-file", catalog / "q.npy", "--json", *extra]
        via_sqlite_utils = run(SQLITE_UTILS, *args).stdout
        assert via_sqlite_utils == run(SCANNLITE, *args).stdout
        results = json.loads(via_sqlite_utils)
        assert [row[0]["id"] for row in results] == ["r0", "r1", "r2"]


def test_every_scannlite_command_is_there(catalog):
    listing = " ".join(run(SQLITE_UTILS, "--help").stdout.split())
    assert "Usage: sqlite-utils scannlite" in listing
    mine = " ".join(run(SCANNLITE, "--help").stdout.split())
    for name in ("init", "add", "build", "search", "info", "snapshots", "diff", "export-parquet", "configure"):
        assert f" {name} " in mine and f" {name} " in listing, name
    assert "scannlite" in run([str(BIN / "sqlite-utils")], "--help").stdout
    info = json.loads(run(SQLITE_UTILS, "info", catalog / "cat", "--json").stdout)
    assert info["count"] == 300 and info["snapshot"] == 1


def test_errors_stay_one_line_with_status_1(catalog):
    proc = run(SQLITE_UTILS, "search", catalog / "nowhere", "--vector-file", catalog / "q.npy", ok=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "is not a catalog" in lines[0] and "Traceback" not in proc.stderr


def test_sqlite_utils_own_commands_read_the_catalog(catalog):
    """The catalog is plain SQLite: sqlite-utils' own commands query it (see docs/schema.md)."""
    rows = json.loads(
        run(
            [str(BIN / "sqlite-utils")], "query", catalog / "cat" / "catalog.db", "select version, count from snapshots"
        ).stdout
    )
    assert rows == [{"version": 1, "count": 300}]
    tables = json.loads(run([str(BIN / "sqlite-utils")], "tables", catalog / "cat" / "catalog.db").stdout)
    assert {"catalog_config", "commits", "segments", "items", "models", "codes", "snapshots", "exports"} <= {
        t["table"] for t in tables
    }
