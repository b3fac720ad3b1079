"""docs/queries.md's measured tables are what ``python -m bench.query_recall --markdown --write`` makes of the
committed results (bench/results/raw/query_recall*.json, query_knobs*.json, query_recall_synthetic.json), never text
edited by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench import query_recall, results


def test_the_measured_tables_are_the_rendering_of_the_committed_results():
    doc = query_recall.DOC.read_text()
    tables = query_recall.all_markdown(results.RESULTS / "raw")
    assert "Partitions for short typed queries" in tables and "Partitions for captions against images" in tables
    assert "(d) Synthetic clustered vectors" in tables  # bench/results/raw/query_recall_synthetic.json
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


def test_the_synthetic_study_finds_the_leaves_held_out_queries_need_and_renders_every_catalog():
    from bench import query_synthetic
    from scannlite.store.index.config import IndexConfig

    assert query_synthetic.needed_leaves([1, 2, 3, 4], [0.5, 0.89, 0.9, 0.95], 0.9) == 3
    assert query_synthetic.needed_leaves([1, 2], [0.5, 0.89], 0.9) is None
    # Leave-one-out queries come from items left out of the tree's training sample only when 500 of them are.
    assert not query_synthetic.loo_from_unseen(100_000, IndexConfig())
    assert not query_synthetic.loo_from_unseen(100_499, IndexConfig())
    assert query_synthetic.loo_from_unseen(100_500, IndexConfig())
    assert query_synthetic.loo_from_unseen(2_000, IndexConfig(training_sample_size=1_000))

    def run(n, spread, seed, need, first_measured):
        rows = [
            {
                "leaves": leaves,
                "loo_estimate": 0.9,
                "sample_estimate": 0.91,
                "sample_stderr": 0.004,
                "measured": m,
                "gap_loo": round(0.9 - m, 4),
                "gap_sample": round(0.91 - m, 4),
            }
            for leaves, m in ((1, first_measured), (2, 0.95))
        ]
        side = {"leaves_to_search": 2, "stated": 0.9, "measured": 0.95}
        return {
            "n": n,
            "spread": spread,
            "seed": seed,
            "dim": 8,
            "generator": f"gen-{n}-{spread}-{seed}",
            "num_leaves": 2,
            "sample": 500,
            "held_out": 500,
            "target": 0.9,
            "cap": 2,
            "loo_from_unseen": n > 100_000,
            "rows": rows,
            "without_sample": side,
            "with_sample": side,
            "held_out_needs": need,
            "measured_at_need": None,
            "measured_at_cap": 0.95,
            "max_abs_gap_loo": 0.05,
            "max_abs_gap_sample": 0.04,
            "full_build_seconds": 10.0,
            "sample_estimate_seconds": 0.5,
            "sample_estimate_share_of_build": 0.05,
        }

    runs = [
        run(5_000, 0.45, 0, 1, 0.93),
        run(200_000, 0.45, 0, None, 0.5),
        run(20_000, 0.38, 1, 2, 0.6),
        run(20_000, 0.38, 0, 2, 0.7),
    ]
    # One ladder table per spread, the default's first: its largest catalog, each of its seeds.
    assert [[(r["n"], r["spread"], r["seed"]) for r in t] for t in query_synthetic.ladder_runs(runs)] == [
        [(200_000, 0.45, 0)],
        [(20_000, 0.38, 0), (20_000, 0.38, 1)],
    ]
    text = query_synthetic.markdown({"command": "cmd", "date": "d", "runs": runs})
    lines = text.splitlines()
    assert "| 200,000 | 0.45 | 0 | 2 | unseen | 2; 0.900; 0.950 | 2; 0.900; 0.950 | not reached | 0.950 (2) |" in text
    assert "| 5,000 | 0.45 | 0 | 2 | trained on |" in text
    assert "Every ladder step of 200,000 items, spread 0.45, seed 0" in text and "gen-200000-0.45-0" in text
    assert "Every ladder step of 20,000 items, spread 0.38, seeds 0, 1" in text
    assert "| 1 | 0.900 | 0.910 ± 0.004 | 0.500 | +0.400 | +0.410 |" in lines
    # Seeds side by side: leave-one-out; sample; measured.
    assert "| leaves | seed 0 | seed 1 |" in lines
    assert "| 1 | 0.900; 0.910; 0.700 | 0.900; 0.910; 0.600 |" in lines
    assert query_synthetic.markdown(None) == ""


def test_the_synthetic_study_reads_its_runs_and_refuses_bad_ones_in_one_line():
    from bench import query_synthetic

    assert query_synthetic.parse_run("20000") == (20_000, query_synthetic.SPREAD, 0)
    assert query_synthetic.parse_run("20000:0.38:2") == (20_000, 0.38, 2)
    for bad in ("", "x", "20000:y", "20000:0.38:1:4", "4999", "20000:0", "20000:0.38:-1"):
        with pytest.raises(SystemExit, match="error: a run"):
            query_synthetic.parse_run(bad)


def test_the_synthetic_study_draws_the_benchmarks_data_at_the_default_spread(tmp_path):
    from bench import data, query_synthetic
    from bench.setup import FULL

    base, sample, held, text = query_synthetic.data(5_000, query_synthetic.SPREAD, 3)
    bench = data.prepare(replace(FULL, name="t", n=5_000, queries=query_synthetic.HELD_OUT, data_seed=3), tmp_path)
    assert np.array_equal(base, bench.base()) and np.array_equal(held, bench.queries())
    assert np.array_equal(sample, bench.extra()[: query_synthetic.SAMPLE])
    assert "spread=0.45" in text and "seed=3" in text
    tighter, _, _, _ = query_synthetic.data(5_000, 0.38, 3)
    assert tighter.shape == base.shape and not np.array_equal(tighter, base)
