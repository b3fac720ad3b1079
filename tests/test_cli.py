"""The scannlite command end to end, as a user runs it: real processes, real files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SCANNLITE = [str(Path(sys.executable).with_name("scannlite"))]


def run(*args, ok=True):
    proc = subprocess.run(SCANNLITE + [str(a) for a in args], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def write_rows(path: Path, ids, vectors, metadata):
    path.write_text(
        "\n".join(
            json.dumps({"id": i, "embedding": v.tolist(), "metadata": m}) for i, v, m in zip(ids, vectors, metadata)
        )
    )


@pytest.fixture
def catalog(tmp_path, rng):
    x = rng.standard_normal((400, 12)).astype(np.float32)
    write_rows(tmp_path / "rows.jsonl", [f"r{i}" for i in range(400)], x, [f"row {i}" for i in range(400)])
    np.save(tmp_path / "q.npy", x[:3])
    run("init", tmp_path / "cat", "--dim", 12)
    run("add", tmp_path / "cat", tmp_path / "rows.jsonl")
    run("build", tmp_path / "cat")
    return tmp_path / "cat"


def test_tour(catalog, tmp_path):
    info = json.loads(run("info", catalog, "--json").stdout)
    assert (info["dim"], info["distance"], info["count"], info["snapshot"]) == (12, "dot", 400, 1)
    results = json.loads(run("search", catalog, "--vector-file", tmp_path / "q.npy", "-k", "4", "--json").stdout)
    assert len(results) == 3 and all(len(row) == 4 for row in results)
    assert [row[0]["id"] for row in results] == ["r0", "r1", "r2"]
    assert set(results[0][0]) == {"id", "distance", "metadata"} and results[0][0]["metadata"] == "row 0"
    single = tmp_path / "one.npy"
    np.save(single, np.load(tmp_path / "q.npy")[1])
    one = json.loads(run("search", catalog, "--vector-file", single, "--json", "--exact").stdout)
    assert len(one) == 1 and one[0][0]["id"] == "r1" and one[0][0]["distance"] == pytest.approx(-1.0, abs=1e-5)
    text = run("search", catalog, "--vector-file", tmp_path / "q.npy", "-k", "2").stdout
    assert "query 0" in text and "r0" in text

    (tmp_path / "gone.txt").write_text("r5\nr6\n")
    run("delete", catalog, "r7", "--ids-from", tmp_path / "gone.txt")
    out = run("build", catalog).stdout
    assert "incremental build" in out and "why not retrain" in out
    assert "up to date" in run("build", catalog).stdout
    snaps = json.loads(run("snapshots", catalog, "--json").stdout)
    assert [s["version"] for s in snaps] == [1, 2] and snaps[1]["count"] == 397
    d = json.loads(run("diff", catalog, "1", "2", "--json").stdout)
    assert d["removed"] == ["r5", "r6", "r7"] and d["added"] == [] and d["changed"] == []
    assert run("check", catalog).stdout.startswith("ok:")
    run("compact", catalog)
    run("gc", catalog, "--keep", "1")
    assert run("check", catalog).stdout.startswith("ok:")
    assert "latest snapshot 2" in run("info", catalog).stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "{tmp}/nowhere"], "is not a catalog"),
        (["search", "{cat}", "--vector-file", "{tmp}/missing.npy"], "no such file"),
        (
            ["search", "{cat}", "--vector-file", "{tmp}/wrongdim.npy"],
            "query vectors have 5 dimensions, the catalog has 12",
        ),
        (["search", "{cat}", "--vector-file", "{tmp}/q.npy", "--snapshot", "9"], "has no snapshot 9"),
        (["delete", "{cat}", "nope"], "unknown id 'nope'"),
        (["add", "{cat}", "{tmp}/bad.jsonl"], "bad.jsonl:1: not valid JSON"),
        (["init", "{cat}", "--dim", "4"], "already a catalog"),
        (["build", "{cat}", "--lookup", "INT4"], "lookup_type must be one of"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(catalog, tmp_path, args, message):
    np.save(tmp_path / "wrongdim.npy", np.ones((2, 5)))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    proc = run(*[a.format(tmp=tmp_path, cat=catalog) for a in args], ok=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def test_every_command_has_help_with_an_example():
    listing = run("--help").stdout
    commands = ["init", "add", "delete", "build", "search", "info", "snapshots", "diff", "check", "compact", "gc"]
    for name in commands:
        assert name in listing
        help_text = run(name, "--help").stdout
        assert "Example: scannlite " + name in " ".join(help_text.split()), name
