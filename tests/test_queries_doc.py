"""docs/queries.md's measured tables are what ``python -m bench.query_recall --markdown --write`` makes of the
committed results (bench/results/raw/query_recall*.json, query_knobs*.json, query_recall_synthetic.json), never text
edited by hand."""

from __future__ import annotations

import pytest

from bench import query_recall, results


def test_the_measured_tables_are_the_rendering_of_the_committed_results():
    doc = query_recall.DOC.read_text()
    tables = query_recall.all_markdown(results.RESULTS / "raw")
    assert "Partitions for short typed queries" in tables and "Partitions for captions against images" in tables
    assert "(c) Synthetic clustered vectors" in tables  # bench/results/raw/query_recall_synthetic.json
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

    def run(n, need, first_measured):
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
            "seed": 0,
            "dim": 8,
            "generator": f"gen-{n}",
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

    study = {"command": "cmd", "date": "d", "runs": [run(200_000, None, 0.5), run(5_000, 1, 0.93)]}
    text = query_synthetic.markdown(study)
    lines = text.splitlines()
    assert "| 200,000 | 0 | 2 | unseen | 2; 0.900; 0.950 | 2; 0.900; 0.950 | not reached | 0.950 (2) |" in text
    assert "| 5,000 | 0 | 2 | trained on |" in text
    # The ladder is the largest catalog's, whatever the order of the runs.
    assert "Every ladder step of the 200,000-item catalog" in text and "gen-200000" in text
    assert "| 1 | 0.900 | 0.910 ± 0.004 | 0.500 | +0.400 | +0.410 |" in lines
    assert query_synthetic.markdown(None) == ""
