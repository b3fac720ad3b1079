"""Every benchmark, one run: ``python -m bench.run_all`` (``make bench``).

Runs build-and-recall (issue 2), then export-and-latency (issue 3) on the catalog the first
one built, prints each table, and writes docs/benchmarks.md and docs/recall.png (with
``--quick``, only where ``--output``/``--png`` say).
"""
from __future__ import annotations

import sys

from .cli import run_sections

BENCHMARKS = ["build_recall", "export_latency"]


def main(argv: list[str] | None = None) -> int:
    return run_sections(argv, BENCHMARKS, defaults_to_docs=True)


if __name__ == "__main__":
    sys.exit(main())
