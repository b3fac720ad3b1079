"""Every benchmark, one run: ``python -m bench.run_all`` (``make bench``).

Runs build-and-recall (issue 2), then export-and-latency (issue 3) on the catalog the first
one built, prints each table, and writes docs/benchmarks.md and docs/recall.png (with
``--quick``, only where ``--output``/``--png`` say).
Last, warm queries (issue 9: Datasette text and image queries over HTTP and `add --images`
with 1 and N workers, on the outputs of ``make demo``, made first if missing).
"""
from __future__ import annotations

import sys

from .cli import run_sections

BENCHMARKS = ["build_recall", "export_latency", "warm_queries"]


def main(argv: list[str] | None = None) -> int:
    return run_sections(argv, BENCHMARKS, defaults_to_docs=True)


if __name__ == "__main__":
    sys.exit(main())
