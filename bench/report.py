"""Tables that print with rich, and what a study's run returns (:class:`Section`).

Every table carries the command that produced it and how its figures were measured; a study's
section goes to JSON (:mod:`bench.results`) and only :mod:`bench.render` writes Markdown from it.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(map(esc, self.columns)) + " |",
            "| " + " | ".join("---" for _ in self.columns) + " |",
        ]
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
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


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


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def now() -> datetime:
    return datetime.now(UTC)
