"""Smoke test of the benchmarks: every step of ``make bench`` runs, on small data.

Benchmarks are not timed tests: this checks that the quick mode of each benchmark produces
its tables, its JSON results, the Markdown rendered from them, the recall curve and sane
figures (recalls within [0, 1], sizes and latencies positive), never how fast anything was.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run_all

pytestmark = [pytest.mark.slow, pytest.mark.device, pytest.mark.task_library]

ROOT = Path(__file__).resolve().parent.parent


# The whole quick run takes about 4 minutes on a quiet 2-core machine, and more than 15 on one
# loaded by other work; the subprocess's limit only catches a hang, and the test's own pytest
# timeout sits above it (and above the single run after it), not under it.
RUN_ALL_TIMEOUT = 2400
ALONE_TIMEOUT = 150


def _bench(module: str, *args: str, timeout: float = ALONE_TIMEOUT) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--quick", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"bench.{module} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _recalls(figures: dict) -> list[float]:
    out = []
    for curve in figures["recall"].values():
        out += list(curve.values())
    return out


@pytest.mark.timeout(RUN_ALL_TIMEOUT + ALONE_TIMEOUT + 150)
def test_quick_benchmarks_write_tables_results_report_and_curve(tmp_path):
    work, md, png, fig = tmp_path / "work", tmp_path / "benchmarks.md", tmp_path / "recall.png", tmp_path / "f.json"
    res = tmp_path / "results"
    # The real text set is embedded once per machine (a TensorFlow process, about a minute for
    # the quick set's 5,100 sentences) and cached; the first run here may make it.
    out = _bench(
        "run_all",
        "--workdir",
        str(work),
        "--results",
        str(res),
        "--output",
        str(md),
        "--png",
        str(png),
        "--json",
        str(fig),
        timeout=RUN_ALL_TIMEOUT,
    )
    for title in (
        "Real text, 5,000 x 384",
        "Where a Task Library search spends its time",
        "Build: 5,000 x 128",
        "Where the scannlite builds spend their time",
        "Device-equivalent recall@10",
        "Export: snapshot 1",
        "Task Library query latency",
        "Opening a large index with libscannlite",
        "Targets",
    ):
        assert title in out, f"missing table {title!r} in the printed output"

    # Each study wrote its JSON, and the report is exactly the rendering of those files.
    from bench import render, results

    assert sorted(p.stem for p in res.glob("*.json")) == sorted(run_all.BENCHMARKS)
    runs = {r["study"]: r for r in results.load_dir(res)[1]}
    assert all(
        r["source"] == "measured" and "bench.run_all --quick" in r["command"] and r["machine"]["cores"]
        for r in runs.values()
    )
    text = md.read_text()
    assert render.render("benchmarks", res) == text
    for heading in (
        "# Benchmarks",
        "## Machine",
        "## Data and settings",
        "### Targets",
        "## Recall on real text embeddings (issue 8)",
        "## Build and recall (issue 2)",
        "## Export and latency (issue 3)",
        "## Delta bundles (issue 12)",
    ):
        assert heading in text
    assert text.index("## Recall on real text embeddings") < text.index("## Build and recall (issue 2)")
    assert "](recall-real.png)" in text and (tmp_path / "recall-real.png").read_bytes()[:4] == b"\x89PNG"
    assert "Command: `" in text and "bench.run_all --quick" in text
    assert "How these figures were measured:" in text
    assert "](recall.png)" in text
    assert "cores" in text and all(r["machine"]["cpu"] in text for r in runs.values())
    for method in ("scannlite, FLOAT lookup", "scannlite, INT8 lookup", "Model Maker's recipe", "FAISS IVF-PQ"):
        assert method in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    figures = json.loads(fig.read_text())
    real = figures["sections"]["Recall on real text embeddings (issue 8)"]
    real_recalls = list(real["figures"]["recall"]["default settings"].values())
    assert real_recalls and all(0.0 <= r <= 1.0 for r in real_recalls)
    assert real["figures"]["check"]["same"] == real["figures"]["check"]["total"] > 0
    # The real Task Library on the exported bundle returns what the server-side search does.
    assert real["figures"]["device"]["same_as_server"] == 100 and real["figures"]["device"]["p50_ms"] > 0
    # The index files written per lookup type: FLOAT at the snapshot's leaves scores as the ladder does.
    costs, chosen = real["figures"]["search_costs"], real["figures"]["leaves_to_search"]
    from bench.real_recall import FLOAT_VECTORS

    assert [c["lookup"] for c in costs if c["leaves"] == chosen and c["lookup"] != FLOAT_VECTORS] == [
        "FLOAT",
        "INT16",
        "INT8",
    ]
    # And an index of the float vectors in the same leaves, at the ladder's leaves from 8 up to the snapshot's.
    vec = [c["leaves"] for c in costs if c["lookup"] == FLOAT_VECTORS]
    assert vec == sorted(set(vec)) and all(8 <= L <= chosen for L in vec) and (chosen < 8 or vec)
    assert all(c["p50_ms"] > 0 and c["p95_ms"] >= c["p50_ms"] and 0 <= c["recall"] <= 1 for c in costs)
    (flt,) = [c for c in costs if c["leaves"] == chosen and c["lookup"] == "FLOAT"]
    assert flt["recall"] == pytest.approx(real["figures"]["recall"]["default settings"][str(chosen)], abs=1e-9)
    build = figures["sections"]["Build and recall (issue 2)"]["figures"]
    export = figures["sections"]["Export and latency (issue 3)"]["figures"]
    recalls = _recalls(build) + [export["device_recall"], export["server_recall"]]
    assert len(recalls) == 4 * 4 + 2
    assert all(0.0 <= r <= 1.0 for r in recalls)
    assert build["full_build_seconds"] > 0 and build["full_build_peak_rss"] > 0
    assert export["p50_ms"] > 0 and export["p95_ms"] >= export["p50_ms"]
    assert math.isfinite(export["overhead"]) and export["overhead"] > -1
    delta = figures["sections"]["Delta bundles (issue 12)"]
    synthetic = [
        t
        for name, s in figures["sections"].items()
        if "issue 8" not in name and "issue 12" not in name and "issue 22" not in name
        for t in s["targets"]
    ]
    runtimes = figures["sections"]["Two runtimes: libscannlite beside the Task Library (issue 22)"]
    assert len(synthetic) == 7 and len(real["targets"]) >= 3 and len(delta["targets"]) == 3
    assert len(runtimes["targets"]) == 4
    targets = synthetic + real["targets"] + delta["targets"] + runtimes["targets"]
    assert all(isinstance(t[2], bool) for t in targets)

    # A benchmark runs alone too, reusing the catalog the first run left in the work directory.
    alone = _bench("export_latency", "--workdir", str(work))
    assert "Export: snapshot 1" in alone and "Targets" in alone


def test_scale_benchmark_writes_its_results_and_keeps_the_others(tmp_path):
    """bench.scale at a tiny size, without the Model Maker peer: every step runs, its JSON
    results land beside another size's, and the doc rendered from the folder holds both
    sizes in order, then the hand-written closing text."""
    from bench import render, results

    folder, out = tmp_path / "results", tmp_path / "scale.md"
    folder.mkdir()
    other = json.loads((results.RESULTS / "scale" / "5000000.json").read_text())
    other.update(title="7,000,000 vectors", figures={**other["figures"], "n": 7_000_000})
    (folder / "7000000.json").write_text(json.dumps(other))
    (folder / "_doc.json").write_text(
        json.dumps({"closing": [{"text": "## What the figures show\n\nkept too", "source": "this test"}]})
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.scale",
            "--n",
            "3000",
            "--workdir",
            str(tmp_path / "w"),
            "--results",
            str(folder),
            "--output",
            str(out),
            "--no-peer",
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = results.load(folder / "3000.json")
    assert run["figures"]["n"] == 3000 and run["source"] == "measured" and "bench.scale --n 3000" in run["command"]
    assert out.read_text() == render.render("scale", folder)
    text = out.read_text()
    assert text.index("## 3,000 vectors") < text.index("## 7,000,000 vectors") < text.index("## What the figures")
    assert "kept too" in text and "| scannlite full build | 345.5 s |" in text
    section = text.split("## 3,000 vectors", 1)[1].split("## 7,000,000", 1)[0]
    for step in (
        "add (.npy streamed, one commit)",
        "scannlite full build",
        "scannlite incremental build",
        "export --index-only (.ldb, verified)",
        "export with an embedder (bundle, verified)",
        "recall@10, device-equivalent",
    ):
        assert f"| {step} |" in section, step
    assert "ScaNN directly" not in section and "full build peak RSS at most 2.5 GiB" in section
    # The verifying device worker has exited by then; its peak still has to be seen, not 0.
    for pattern in (
        r"opens it by path\) peaked at ([\d,.]+) MiB",
        r"maps the bundle by path\) peaked at ([\d,.]+) MiB",
    ):
        worker = re.search(pattern, section)
        assert worker and float(worker.group(1).replace(",", "")) > 50, section


def test_recipe_sweep_writes_its_results_and_the_doc_is_their_rendering(tmp_path):
    """The finished recipe sweep, off `make bench`'s path, still runs from its command: on the
    small real set it writes its JSON and docs/recipe.md's layout is rendered from it."""
    from bench import render, results

    folder, out, png = tmp_path / "results", tmp_path / "recipe.md", tmp_path / "recipe.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.recipe_sweep",
            "--quick",
            "--workdir",
            str(tmp_path / "w"),
            "--results",
            str(folder),
            "--output",
            str(out),
            "--png",
            str(png),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = results.load(folder / "recipe_sweep.json")
    assert run["study"] == "recipe_sweep" and "bench.recipe_sweep --quick" in run["command"]
    assert [t["title"].split(" (")[0].split(":")[0] for t in run["tables"]][:2] == [
        "Recall@10 per codes scanned, one knob at a time",
        "Every tree x codes pair",
    ]
    assert out.read_text() == render.render("recipe", folder)
    assert "**Result.**" in out.read_text() and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.timeout(2 * ALONE_TIMEOUT + 60)
def test_quick_query_studies_run_and_measure_both_estimates_against_held_out_queries():
    """`make bench-queries`' studies on small data (issue 27): short typed queries on the quick real set and one
    synthetic catalog, each estimate beside the held-out recall at every ladder step, nothing written."""
    import json

    before = {p: p.stat().st_mtime for p in (ROOT / "bench" / "results" / "raw").glob("query_*.json")}
    real = json.loads(_bench("query_recall"))
    ladders = [r["leaves"] for r in real["rows"]]
    assert ladders == sorted(ladders) and ladders[-1] == real["num_leaves"]
    for row in real["rows"]:
        for key in ("loo_estimate", "sample_estimate", "measured_whole", "measured_short"):
            assert 0.0 <= row[key] <= 1.0
    assert real["sample"] == real["held_out"] > 0
    # The quick set's 50-query sample is under the 200 the target needs: it is met on the items, as without it.
    assert real["sample"] < 200 and real["with_sample"]["recall_on"] == "leave-one-out"
    assert real["with_sample"]["leaves_to_search"] == real["without_sample"]["leaves_to_search"]
    # Searching every leaf loses only what the codes lose: recall climbs to its highest at the last step.
    assert real["rows"][-1]["measured_short"] >= max(r["measured_short"] for r in real["rows"]) - 1e-9
    synthetic = json.loads(_bench("query_synthetic", timeout=ALONE_TIMEOUT))
    (run,) = synthetic["runs"]
    assert run["n"] == 5000 and run["sample"] == run["held_out"] == 500
    assert all(abs(r["gap_sample"]) <= 0.1 for r in run["rows"] if r["leaves"] >= 4)
    assert {p: p.stat().st_mtime for p in before} == before  # --quick writes no results
