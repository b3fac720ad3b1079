"""The benchmark docs are rendered from the committed JSON results, and nothing else.

docs/benchmarks.md and docs/scale.md must be exactly what ``python -m bench.render`` makes of
bench/results/ (so docs and data cannot drift), every figure names the command that measured it,
a malformed results file stops the renderer with one line naming it and writes nothing, and a
study's run (a ``bench.report.Section``) goes through JSON into the doc unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import render, results, run_all
from bench.report import Section, Table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _runs(name: str) -> list[dict]:
    return results.load_dir(results.RESULTS / name)[1]


@pytest.mark.parametrize("name", render.DOCS)
def test_committed_docs_are_the_rendering_of_the_committed_results(name):
    committed = (DOCS / f"{name}.md").read_text()
    assert render.render(name) == committed, (
        f"docs/{name}.md differs from bench/results/{name}/: edit or re-measure the JSON, then "
        "`python -m bench.render` (never the doc by hand)"
    )
    assert render.render(name) == render.render(name)  # deterministic
    proc = subprocess.run([sys.executable, "-m", "bench.render", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", render.DOCS)
def test_every_table_and_target_names_its_command(name):
    runs = _runs(name)
    assert runs
    for run in runs:
        assert " -m bench." in run["command"], run["study"]
        assert run["tables"], f"{run['study']}: a study without figures"
        for t in run["tables"]:
            assert " -m bench." in t["command"] and t["rows"], (run["study"], t["title"])
        for t in run.get("targets", []):
            assert " -m bench." in t["command"], (run["study"], t["target"])
    text = (DOCS / f"{name}.md").read_text()
    # Every table of the results is in the doc, under a section whose head names its command.
    # (docs/recipe.md is one study's: its title is the doc's.)
    sections = re.split(r"^#{1,2} ", text, flags=re.M)[1:]
    for run in runs:
        (sec,) = [s for s in sections if s.startswith(run["title"] + "\n")]
        assert f"`{run['command']}`" in sec.split("\n### ", 1)[0], run["title"]
        for t in run["tables"]:
            assert f"### {t['title']}\n" in sec
            for row in t["rows"]:
                assert "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" in sec
    if name == "benchmarks":
        head = text.split("### Targets\n", 1)[1].split("\n## ", 1)[0]
        rows = [r for r in head.splitlines() if r.startswith("| ") and not r.startswith(("| target", "| ---"))]
        assert len(rows) == sum(len(r["targets"]) for r in runs) > 0
        assert all(re.search(r"\| `[^`]* -m bench\.\w+[^`]*` \|$", r) for r in rows), rows


def test_the_docs_keep_the_figures_they_had_before_the_json():
    """Spot checks of figures transcribed from the hand-merged docs (commit 2cc268c): one per
    study, so a transcription that dropped a section or a table shows here."""
    text = (DOCS / "benchmarks.md").read_text()
    for figure in (
        "| 45 (the snapshot's leaves_to_search) | 6.5% | 8,134 | 6.78% | 0.922 | 0.911 |",
        "| scannlite, FLOAT lookup (default) | 0.972 | 0.974 | 0.976 | 0.977 |",
        "| search p50 (embedding included) | 0.204 ms |",
        "| +1% (+1,233 items) | incremental | 162,879 | 18,265,411 | 240,504 | 1.48x | 1.32% |",
        "| text (`?q=`) | 881 ms | 29.1 ms | 36.9 ms | 20.5 ms | 1.91 ms | 200 |",
        "| ray | 2 | 50.2 s | 80.2 | 1.40 | 4,024 of 4,024 |",
        "Notes on these figures:",
        "AMD EPYC, 2 cores, 23.5 GiB",
        "which took 6.0 min in all",
    ):
        assert figure in text, figure
    scale = (DOCS / "scale.md").read_text()
    assert (
        scale.index("## 1,000,000 vectors") < scale.index("## 5,000,000 vectors") < scale.index("## What the figures")
    )
    assert "| scannlite full build | 345.5 s | 1,278.6 MiB |" in scale
    assert "started 2026-12-01 07:19 UTC, took 20.0 min." in scale
    recipe = (DOCS / "recipe.md").read_text()
    assert "| 3 sqrt(N) leaves **(winner)** | 1039 | 51 | 0.829 | +0.088 |" in recipe
    assert "**Result.** At today's budget (1,532 codes scanned per query" in recipe
    for png in re.findall(r"\]\(([\w-]+\.png)\)", text + recipe):
        assert (DOCS / png).read_bytes()[:4] == b"\x89PNG", png


def _section() -> Section:
    t = Table("Example: 3 x 2", ["step", "wall time"], how=["timed with `time.perf_counter()`"])
    t.add("build", "1.5 s")
    t.add("pipe | in a cell", "2.0 s")
    s = Section(
        "Example study (issue 0)",
        ".venv/bin/python -m bench.example --quick",
        tables=[t],
        targets=[("build at most 2 s", "1.5 s", True), ("pipe at most 1 s", "2.0 s", False)],
        notes=["one note"],
        data=["Example data: three rows."],
        figures={"wall": 1.5},
    )
    s.seconds = 90.0
    return s


def test_a_section_goes_through_json_into_the_doc(tmp_path):
    from bench.report import now

    run = results.section_json(
        _section(),
        "example",
        started=now(),
        load=(0.5, 1.25),
        images=[{"file": "x.png", "alt": "a curve", "caption": "[A curve](x.png)."}],
    )
    path = results.write(tmp_path / "example.json", run)
    back = results.load(path)
    assert back["machine"]["cores"] and back["versions"]["numpy"] and back["source"] == "measured"
    out = render.write_doc("benchmarks", tmp_path / "doc.md", tmp_path)
    text = out.read_text()
    assert (
        "## Example study (issue 0)\n\nCommand: `.venv/bin/python -m bench.example --quick` (1.5 min in this run)."
        in text
    )
    assert "| pipe \\| in a cell | 2.0 s |" in text and "- timed with `time.perf_counter()`" in text
    assert "| build at most 2 s | 1.5 s | met | `.venv/bin/python -m bench.example --quick` |" in text
    assert "| pipe at most 1 s | 2.0 s | **not met** |" in text
    assert "- Example data: three rows." in text and "- one note" in text and "![a curve](x.png)" in text
    assert back["machine"]["cpu"] in text and "0.50 / 1.25" in text


@pytest.mark.parametrize(
    "breakage, cause",
    [
        (lambda r: r.pop("command"), "command must be"),
        (lambda r: r["tables"][0].update(command="make it up"), "tables[0]: command must be"),
        (lambda r: r["tables"][0]["rows"].append(["only one cell"]), "rows[2] has 1 cells for 2 columns"),
        (lambda r: r["targets"][0].update(met="yes"), "targets[0]: needs target"),
        (lambda r: r.update(format="scannlite-bench/0"), "format must be"),
        (lambda r: r.update(blocks=[{"text": "by hand"}]), "blocks[0] needs text and a non-empty source"),
        (lambda r: r["machine"].pop("cpu"), "machine needs cpu"),
        (lambda r: r["tables"][0]["rows"][0].__setitem__(1, "1.5\ns"), "rows[0]: a cell holds a line break"),
        (lambda r: r.update(seconds=-1), "seconds must be a number >= 0"),
    ],
)
def test_a_malformed_results_file_is_refused_and_nothing_is_written(tmp_path, breakage, cause):
    from bench.report import now

    run = results.section_json(_section(), "example", started=now(), load=None)
    breakage(run)
    (tmp_path / "example.json").write_text(json.dumps(run))
    out = tmp_path / "doc.md"
    with pytest.raises(results.ResultError, match=re.escape(cause)) as err:
        render.write_doc("benchmarks", out, tmp_path)
    assert "example.json" in str(err.value)
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "example.json"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.render", "benchmarks", "--results", str(tmp_path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and cause in proc.stderr, proc.stderr
    assert not out.exists()


def test_not_json_and_empty_folders_are_refused(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(results.ResultError, match=r"a\.json: not valid JSON"):
        render.render("benchmarks", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(results.ResultError, match="no results files"):
        render.render("benchmarks", empty)
    with pytest.raises(results.ResultError, match="no such results folder"):
        render.render("scale", tmp_path / "missing")


def test_a_stale_doc_fails_the_check(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(results.RESULTS / "benchmarks", folder)
    out = tmp_path / "benchmarks.md"
    args = [sys.executable, "-m", "bench.render", "benchmarks", "--results", str(folder), "--out", str(out)]
    assert subprocess.run(args, cwd=ROOT, capture_output=True).returncode == 0
    assert subprocess.run([*args, "--check"], cwd=ROOT, capture_output=True).returncode == 0
    run = json.loads((folder / "warm_queries.json").read_text())
    run["tables"][0]["rows"][0][2] = "28.0 ms"
    (folder / "warm_queries.json").write_text(json.dumps(run))
    proc = subprocess.run([*args, "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "differ from bench/results" in proc.stderr


def test_the_recipe_sweep_is_off_the_default_path_and_keeps_its_command():
    """The sweep is finished (issue 8, part 4): `make bench` (bench.run_all) does not run it, and
    docs/recipe.md names the command that reproduces its figures."""
    assert "recipe_sweep" not in run_all.BENCHMARKS
    assert "bench.run_all" in (ROOT / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    recipe = (DOCS / "recipe.md").read_text()
    assert re.search(r"`[^`]*python -m bench\.recipe_sweep[^`]*`", recipe)
    assert (ROOT / "bench" / "recipe_sweep.py").is_file()


def test_the_quality_study_writes_results_the_renderer_reads(tmp_path):
    """bench.quality's figures (as its measure() returns them) become JSON and then the doc's
    tables and target line: the study itself writes no Markdown."""
    from bench import quality
    from bench.report import now

    def recall(r1, r5, r10):
        return {1: r1, 5: r5, 10: r10}

    rows = [
        {
            "text": "minilm",
            "image": "efficientnet_lite0",
            "size": 224,
            "agree": True,
            "held": 386,
            "novel": 167,
            "paths": {
                "Keras": (recall(0.606, 0.744, 0.790), recall(0.210, 0.413, 0.515)),
                "Task Library vectors, exact": (recall(0.606, 0.744, 0.790), recall(0.210, 0.413, 0.515)),
                "bundle (TextSearcher)": (recall(0.604, 0.744, 0.790), recall(0.204, 0.413, 0.495)),
            },
            "parity": {"text": 1.0, "image": 0.9999996},
            "text_bytes": 90_000_000,
            "image_bytes": 14_100_000,
            "latency": 0.0126,
            "trained_seconds": 0.0,
        }
    ]
    run = quality.results_of(
        rows,
        Path("demo-output"),
        command=".venv/bin/python -m bench.quality",
        started=now(),
        seconds=600.0,
        load=(0.4, 1.0),
    )
    results.write(tmp_path / "quality.json", run)
    text = render.render("quality", tmp_path)
    assert "| minilm + efficientnet_lite0 (224 px) | Keras | 0.606 | 0.744 | 0.790 | 0.210 | 0.413 | 0.515 |  |" in text
    assert "|  | bundle (TextSearcher) | 0.604 | 0.744 | 0.790 | 0.204 | 0.413 | 0.495 |  |" in text
    assert "| minilm + efficientnet_lite0 | 14.1 MB | 12.6 ms | 90.0 MB | 1.000000, 1.000000 |" in text
    # The target is the bundle's novel recall@10 with the demo's towers: 0.495 misses 0.50.
    assert (
        "Target (issue 13): novel recall@10 >= 0.50 through the bundle with the demo's towers: 0.495, **not met**."
        in text
    )
    assert "the 167 held-out emoji" in text and "Produced by `.venv/bin/python -m bench.quality` on " in text
    assert text.index("**Novel**") < text.index("### Caption -> image") < text.index("Target (issue 13)")
