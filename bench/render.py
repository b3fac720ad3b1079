"""The one renderer of benchmark docs: ``python -m bench.render`` (``--check`` only compares).

Reads the studies' JSON results in ``bench/results/<doc>/`` (:mod:`bench.results`) and writes
``docs/<doc>.md`` from them alone, deterministically, so a doc can always be remade from the
committed data without re-measuring, and tests/test_bench_render.py holds docs and data equal.
Each section, table and target names the command that measured it. Rule for the docs: never edit
a rendered doc by hand; edit or re-measure the JSON (hand-written text goes in ``_doc.json`` or a
study's ``blocks``, each with its source).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import ROOT
from .results import RESULTS, ResultError, load_dir

# docs/<name>.md <- bench/results/<name>/
DOCS = ("benchmarks", "scale", "recipe", "quality")
# Section order of docs/benchmarks.md (`make bench` runs the first six in this order); others follow by name.
STUDY_ORDER = (
    "real_recall",
    "build_recall",
    "export_latency",
    "delta_bundles",
    "warm_queries",
    "runtimes",
    "ray_embed",
)


def _esc(s) -> str:
    return str(s).replace("|", "\\|")


def table_md(t: dict, section_command: str | None = None) -> list[str]:
    lines = [f"### {t['title']}", ""]
    if section_command is not None and t["command"] != section_command:
        lines += [f"Command: `{t['command']}`.", ""]
    lines += ["| " + " | ".join(map(_esc, t["columns"])) + " |", "| " + " | ".join("---" for _ in t["columns"]) + " |"]
    lines += ["| " + " | ".join(map(_esc, r)) + " |" for r in t["rows"]]
    if t.get("how"):
        lines += ["", "How these figures were measured:", ""] + [f"- {h}" for h in t["how"]]
    return lines + [""]


def _blocks(blocks: list[dict], at: str = "end") -> list[str]:
    """Verbatim blocks placed at ``at`` ('head': before a study's tables; 'end', the default: after them)."""
    return [line for b in blocks if b.get("at", "end") == at for line in (b["text"].rstrip("\n"), "")]


def _minutes(r: dict) -> str:
    return "not recorded" if r.get("seconds") is None else f"{r['seconds'] / 60:.1f}"


def _machine(run: dict) -> str:
    m, v = run.get("machine"), run.get("versions")
    if not m:
        return "not recorded"
    parts = [f"{m['cpu']}, {m['cores']} cores"]
    if m.get("memory_gib"):
        parts.append(f"{m['memory_gib']} GiB")
    if m.get("platform"):
        parts.append(m["platform"])
    text = ", ".join(parts)
    if m.get("python") or v:
        text += "; " + ", ".join(
            ([f"Python {m['python']}"] if m.get("python") else []) + [f"{k} {val}" for k, val in (v or {}).items()]
        )
    return text


def _order(runs: list[dict]) -> list[dict]:
    rank = {s: i for i, s in enumerate(STUDY_ORDER)}
    return sorted(runs, key=lambda r: (rank.get(r["study"], len(rank)), r["study"]))


def render_benchmarks(doc: dict, runs: list[dict]) -> str:
    runs = _order(runs)
    lines = [
        "# Benchmarks",
        "",
        "Rendered by `python -m bench.render` from the studies' results in `bench/results/benchmarks/` "
        "(one JSON file per study: its tables, targets and notes as measured, the command, date and "
        "machine); `make bench` re-measures the default studies and renders again. These are benchmarks, "
        "not tests: one run per study, numbers as measured.",
        "",
    ]
    lines += _blocks(doc.get("intro", []))
    lines += [
        "## Machine",
        "",
        "Each study's run, as its results file records it:",
        "",
        "| section | date | minutes | machine | load average (start / end) | source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        load = (
            f"{r['load'][0]:.2f} / " + ("not recorded" if r["load"][1] is None else f"{r['load'][1]:.2f}")
            if r.get("load")
            else "not recorded"
        )
        lines.append(
            "| " + " | ".join(map(_esc, (r["title"], r["date"], _minutes(r), _machine(r), load, r["source"]))) + " |"
        )
    lines += [
        "",
        "The cores are shared with other work: absolute times drift between runs; every comparison "
        "within a section is a ratio of figures measured in that same run, one step at a time.",
        "",
        "## Data and settings",
        "",
    ]
    seen = set()
    for r in runs:
        for d in r.get("data", []):
            if d not in seen:
                seen.add(d)
                lines.append(f"- {d}")
    lines.append("")
    for r in runs:
        for img in r.get("images", []):
            lines += [f"![{img['alt']}]({img['file']})", "", img["caption"], ""]
    lines += ["### Targets", "", "| target | measured | met | command |", "| --- | --- | --- | --- |"]
    for r in runs:
        for t in r.get("targets", []):
            lines.append(
                f"| {_esc(t['target'])} | {_esc(t['measured'])} | {'met' if t['met'] else '**not met**'} "
                f"| `{_esc(t['command'])}` |"
            )
    lines.append("")
    for r in runs:
        lines += [f"## {r['title']}", "", f"Command: `{r['command']}` ({_minutes(r)} min in this run).", ""]
        lines += _blocks(r.get("blocks", []), "head")
        for t in r["tables"]:
            lines += table_md(t, r["command"])
        if r.get("notes"):
            lines += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
        lines += _blocks(r.get("blocks", []))
    lines += _blocks(doc.get("closing", []))
    return "\n".join(lines).rstrip() + "\n"


SCALE_HEAD = """# Scale (issue 10)

Catalogs of millions of clustered 128-d unit vectors, each step in a fresh process with its
peak RSS: `python -m bench.scale --n N` measures N and writes `bench/results/scale/<N>.json`, and
`python -m bench.render` renders this file from every size's results. Each section has its own
command, date and machine.
"""


def render_scale(doc: dict, runs: list[dict]) -> str:
    def size(r):
        n = r.get("figures", {}).get("n")
        if not isinstance(n, int):
            raise ResultError(f"scale results {r['title']!r}: figures.n must be the number of vectors")
        return n

    lines = [SCALE_HEAD]
    lines += _blocks(doc.get("intro", []))
    for r in sorted(runs, key=size):
        lines += [
            f"## {r['title']}",
            "",
            f"Written by `{r['command']}`; a benchmark, not a test: one run, numbers as measured.",
            "",
        ]
        lines += _blocks(r.get("blocks", []), "head")
        if r.get("targets"):
            lines += ["| target (issue 10, part 1) | measured | met |", "| --- | --- | --- |"]
            lines += [
                f"| {_esc(t['target'])} | {_esc(t['measured'])} | {'met' if t['met'] else '**not met**'} |"
                for t in r["targets"]
            ]
            lines.append("")
        for t in r["tables"]:
            t = dict(
                t,
                how=[
                    f"Command: `{t['command']}`; started {r['date'].removesuffix(' UTC')} UTC, took {_minutes(r)} min.",
                    f"Machine: {_scale_machine(r)}.",
                    *t.get("how", []),
                ],
            )
            lines += table_md(t)
        lines += _blocks(r.get("blocks", []))
    lines += _blocks(doc.get("closing", []))
    return "\n".join(lines).rstrip() + "\n"


def _scale_machine(r: dict) -> str:
    m, v = r.get("machine") or {}, r.get("versions") or {}
    load = r.get("figures", {}).get("load_at_end")
    text = f"{m.get('cpu', 'not recorded')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB"
    if load:
        text += ", load at the end " + ", ".join(f"{x:.1f}" for x in load)
    return text + "; " + ", ".join(f"{k} {val}" for k, val in v.items())


def render_recipe(doc: dict, runs: list[dict]) -> str:
    """docs/recipe.md: the training-recipe sweep (issue 8, part 4), a finished study off `make bench`'s path."""
    if len(runs) != 1:
        raise ResultError(f"recipe results: one run of bench.recipe_sweep expected, found {len(runs)}")
    (r,) = runs
    m, v = r.get("machine") or {}, r.get("versions") or {}
    load = f": load {r['load'][0]:.2f} at the start" if r.get("load") else ""
    lines = [
        f"# {r['title']}",
        "",
        f"Written by `{r['command']}` on {r['date']}; the run took {_minutes(r)} min. A benchmark, not a "
        "test: one run, numbers as measured.",
        "",
        "Rendered by `python -m bench.render` from `bench/results/recipe/`. The sweep is finished: `make bench` "
        "does not run it, and the command above reproduces these figures (about 20 min here).",
        "",
        f"- Machine: {m.get('cpu', 'not recorded')} ({m.get('cores', '?')} cores, shared with other work{load}), "
        f"{m.get('memory_gib', '?')} GiB; Python {m.get('python', '?')}; "
        + ", ".join(f"{k} {val}" for k, val in v.items()),
        *[f"- {d}" for d in r.get("data", [])],
        "",
    ]
    lines += _blocks(doc.get("intro", []))
    lines += _blocks(r.get("blocks", []), "head") + _blocks(r.get("blocks", []))
    for img in r.get("images", []):
        lines += [f"![{img['alt']}]({img['file']})", ""] + ([img["caption"], ""] if img["caption"] else [])
    for t in r["tables"]:
        lines += table_md(t, r["command"])
    if r.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
    lines += _blocks(doc.get("closing", []))
    return "\n".join(lines).rstrip() + "\n"


def render_quality(doc: dict, runs: list[dict]) -> str:
    """docs/quality.md: retrieval quality of the demo's dual encoder (``python -m bench.quality``)."""
    if len(runs) != 1:
        raise ResultError(f"quality results: one run of bench.quality expected, found {len(runs)}")
    (r,) = runs
    took = "its run time not recorded" if r.get("seconds") is None else f"the run took {_minutes(r)} min"
    lines = [
        f"# {r['title']}",
        "",
        f"Produced by `{r['command']}` on {r['date']} ({took}; machine: {_machine(r)}). The models are the ones "
        "`make demo` trains, reused when present. Rendered by `python -m bench.render` from "
        "`bench/results/quality/`.",
        "",
    ]
    lines += _blocks(doc.get("intro", [])) + _blocks(r.get("blocks", []), "head")
    for t in r["tables"]:
        lines += table_md(t, r["command"])
    for t in r.get("targets", []):
        issue, target = "13", t["target"]
        if target.startswith("(issue ") and ") " in target:  # a target of another issue names it
            issue, target = target[len("(issue ") :].split(") ", 1)
        lines += [f"Target (issue {issue}): {target}: {t['measured']}, {'met' if t['met'] else '**not met**'}.", ""]
    lines += _blocks(r.get("blocks", []))
    lines += _blocks(doc.get("closing", []))
    return "\n".join(lines).rstrip() + "\n"


RENDERERS = {"benchmarks": render_benchmarks, "scale": render_scale, "recipe": render_recipe, "quality": render_quality}


def render(name: str, folder: Path | None = None) -> str:
    """docs/<name>.md's text from the results in ``folder`` (default ``bench/results/<name>``)."""
    doc, runs = load_dir(folder or RESULTS / name)
    return RENDERERS[name](doc, runs)


def write_doc(name: str, out: Path, folder: Path | None = None) -> Path:
    text = render(name, folder)  # everything is read and checked before anything is written
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs", nargs="*", metavar="DOC", help=f"which docs to render (default all: {', '.join(DOCS)})")
    ap.add_argument("--check", action="store_true", help="compare with docs/ instead of writing; exit 1 if they differ")
    ap.add_argument("--results", type=Path, help="render one DOC from this folder instead of bench/results/DOC")
    ap.add_argument("--out", type=Path, help="write that one DOC here instead of docs/DOC.md")
    args = ap.parse_args(argv)
    unknown = [d for d in args.docs if d not in DOCS]
    if unknown:
        ap.error(f"unknown doc {unknown[0]!r} (one of {', '.join(DOCS)})")
    if (args.results or args.out) and len(args.docs) != 1:
        ap.error("--results and --out render exactly one DOC: name it")
    stale = []
    try:
        for name in args.docs or DOCS:
            path = args.out or ROOT / "docs" / f"{name}.md"
            path = path.resolve()
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            if args.check:
                if not path.is_file() or path.read_text() != render(name, args.results):
                    stale.append(str(shown))
            else:
                write_doc(name, path, args.results)
                print(f"wrote {shown}")
    except ResultError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if stale:
        print(f"error: {', '.join(stale)} differ from bench/results (run python -m bench.render)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
