"""Tables that print with rich and render as Markdown, and the docs/benchmarks.md writer.

Every table carries the command that produced it and, per row, a note on how the figure was
measured, so the Markdown says exactly where each number comes from.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    how: list[str] = field(default_factory=list)  # bullet points: how the figures were measured

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])

    def print(self, console) -> None:
        from rich.table import Table as RichTable

        t = RichTable(title=self.title, title_justify="left")
        for c in self.columns:
            t.add_column(c)
        for r in self.rows:
            t.add_row(*r)
        console.print(t)

    def markdown(self) -> str:
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = [f"### {self.title}", "", "| " + " | ".join(map(esc, self.columns)) + " |",
                 "| " + " | ".join("---" for _ in self.columns) + " |"]
        lines += ["| " + " | ".join(map(esc, r)) + " |" for r in self.rows]
        if self.how:
            lines += ["", "How these figures were measured:", ""] + [f"- {h}" for h in self.how]
        return "\n".join(lines) + "\n"


@dataclass
class Section:
    """One benchmark's output: its tables, recall curves for the plot, and its target checks."""

    name: str
    command: str
    tables: list[Table] = field(default_factory=list)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    targets: list[tuple[str, str, bool]] = field(default_factory=list)  # (target, measured, met)
    notes: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # headline numbers, for --json and the smoke test
    seconds: float = 0.0
    data: list[str] = field(default_factory=list)  # bullets for "Data and settings", before the synthetic run's
    # A figure of its own: {"file", "title", "caption", "curves": {name: {x: y}}, "labels": {x: text}}, drawn
    # by bench.plot.codes_png next to the report's recall curve; ``image`` is then its path for the Markdown.
    plot: dict | None = None
    image: str | None = None


def console(width: int = 150):
    from rich.console import Console

    return Console(width=width, highlight=False)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 0
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "memory_gib": round(total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "load": os.getloadavg() if hasattr(os, "getloadavg") else None}


def versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("scannlite", "scann", "tflite-support", "faiss-cpu", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    module = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "run_all"
    return f".venv/bin/python -m bench.{module}" + (f" {args}" if args else "")


def targets_table(sections: list[Section]) -> Table:
    t = Table("Targets", ["target", "measured", "met"])
    for s in sections:
        for target, measured, met in s.targets:
            t.add(target, measured, "met" if met else "**not met**")
    return t


def write_markdown(path: Path, sections: list[Section], *, setup, generator: str, started: datetime,
                   seconds: float, png: str | None, profile: str, load_before, load_after) -> None:
    m = machine()
    v = versions()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command_line()}` (`make bench` runs the same without options) on "
        f"{started.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; the whole run took "
        f"{seconds / 60:.1f} min. These are benchmarks, not tests: one run, numbers as measured.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores as seen by the OS), {m['memory_gib']} GiB memory; {m['platform']}",
        f"- Python {m['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- The 2 cores are shared with other work: load average {load_before[0]:.2f} at the start, "
        f"{load_after[0]:.2f} at the end. Absolute times drift between runs; every comparison below is "
        "a ratio of figures measured in this same run, one step at a time (no two steps overlap).",
        "",
        "## Data and settings",
        "",
        *[f"- {line}" for sec in sections for line in sec.data],
        f"- Synthetic run `{setup.name}`: {setup.n:,} x {setup.dim} catalog, {setup.queries} held-out queries, "
        f"{setup.leaves} leaves, {setup.searched} searched by default, AH dims_per_block {setup.dims_per_block}, "
        f"recall@{setup.k} against exact search.",
        f"- Its generator (library defaults, not tuned): `{generator}`.",
        f"- How hard the synthetic data is (no index involved): {profile}.",
        "- Exact truth: `snapshot.search(cat, queries, k=10, exact=True)`: brute force over the snapshot's "
        "stored float vectors; every method below is scored against this one truth.",
        "",
    ]
    for sec in sections:
        if sec.image and sec.plot:
            lines += [f"![{sec.plot['caption']}]({sec.image})", "", f"[{sec.plot['caption'][0].upper()}"
                      f"{sec.plot['caption'][1:]}]({sec.image}).", ""]
    if png:
        lines += [f"![recall@10 against leaves searched]({png})", "",
                  f"[Synthetic set: recall curve]({png}): recall@10 against leaves searched (probes for FAISS), "
                  "same queries and truth for all four.", ""]
    lines += [targets_table(sections).markdown(), ""]
    for s in sections:
        lines += [f"## {s.name}", "", f"Command: `{s.command}` ({s.seconds / 60:.1f} min in this run).", ""]
        for t in s.tables:
            lines += [t.markdown(), ""]
        if s.notes:
            lines += ["Notes:", ""] + [f"- {n}" for n in s.notes] + [""]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines).rstrip() + "\n")


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def now() -> datetime:
    return datetime.now(timezone.utc)
