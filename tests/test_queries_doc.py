"""docs/queries.md's measured tables are what ``python -m bench.query_recall --markdown --write`` makes of the
committed results (bench/results/raw/query_recall*.json, query_knobs.json), never text edited by hand."""

from __future__ import annotations

import pytest

from bench import query_recall, results


def test_the_measured_tables_are_the_rendering_of_the_committed_results():
    doc = query_recall.DOC.read_text()
    tables = query_recall.all_markdown(results.RESULTS / "raw")
    assert "Partitions for short typed queries" in tables and "Partitions for captions against images" in tables
    assert query_recall.written_doc(doc, tables) == doc, (
        "docs/queries.md differs from its results: run `python -m bench.query_recall --markdown --write`"
    )


def test_the_doc_writer_refuses_a_doc_without_its_markers():
    with pytest.raises(SystemExit, match="needs one"):
        query_recall.written_doc("# no markers here\n", "tables")
    doc = f"head\n{query_recall.BEGIN}\nold\n{query_recall.END}\ntail\n"
    assert query_recall.written_doc(doc, "new") == f"head\n{query_recall.BEGIN}\n\nnew\n\n{query_recall.END}\ntail\n"


def test_the_knob_study_interpolates_between_ladder_steps_and_summarises_builds_by_mean_and_range():
    from bench import query_knobs

    assert query_knobs.codes_for([0.5, 0.8, 0.95], [100, 200, 400], 0.9) == pytest.approx(200 + 0.1 / 0.15 * 200)
    assert query_knobs.codes_for([0.5, 0.8], [100, 200], 0.9) is None
    assert query_knobs.interpolate([100, 200], [0.5, 0.7], 150) == pytest.approx(0.6)
    assert query_knobs.interpolate([100, 200], [0.5, 0.7], 250) is None

    def build(c90, r):
        return {
            "num_leaves": 8,
            "tree_queries": 0,
            "sample_estimate_queries": 50,
            "codes_for_0.90_short": c90,
            "codes_for_0.90_whole": None,
            "recall_short_at_codes": {"10": r},
            "recall_short_stderr_at_codes": {"10": 0.01},
            "recall_whole_at_codes": {"10": None},
            "max_abs_gap_sample": r / 10,
            "chosen_leaves": 4,
            "chosen_codes": 40,
            "chosen_stated": 0.9,
            "chosen_recall_short": r,
        }

    s = query_knobs.summarise("x", {}, [build(100, 0.8), build(300, 0.9), build(None, 0.7)], (10,))
    assert s["codes_for_0.90_short"] is None  # a build that never reached it: no mean
    assert s["recall_short_at_codes"]["10"] == pytest.approx(0.8) and s["recall_short_range_at_codes"]["10"] == [
        0.7,
        0.9,
    ]
    assert s["max_abs_gap_sample"] == pytest.approx(0.09) and [c[3] for c in s["chosen"]] == [0.8, 0.9, 0.7]


def _recipe(makefile: str, target: str) -> list[str]:
    """The recipe lines of ``target`` in the Makefile's text."""
    lines = makefile.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{target}:")))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        out.append(line.strip())
    return out


def test_make_bench_runs_every_study_the_doc_renders():
    """Issue 27 asks for the short-query and cross-modal studies in `make bench`: it runs `make bench-queries`,
    whose commands are the ones each rendered results file says made it (paths aside)."""
    import json
    import re

    makefile = (query_recall.DOC.parents[1] / "Makefile").read_text()
    assert "$(MAKE) bench-queries" in _recipe(makefile, "bench")

    def bare(command: str) -> str:
        command = command[command.index("python -m ") :] if "python -m " in command else command
        return " ".join(t for t in command.split() if "/" not in t and t != "demo-output")

    ran = {bare(line) for line in _recipe(makefile, "bench-queries") if re.search(r"python -m bench\.", line)}
    rendered = sorted((results.RESULTS / "raw").glob("query_*.json"))
    assert rendered
    for path in rendered:
        command = json.loads(path.read_text())["command"]
        assert bare(command) in ran, f"{path.name} was made by `{command}`, which `make bench-queries` does not run"
