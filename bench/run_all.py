"""Every benchmark, one run: ``python -m bench.run_all`` (``make bench``).

Runs recall on real text embeddings first (issue 8: the headline), then build-and-recall
(issue 2) and export-and-latency (issue 3, on the catalog the second one built) on the
synthetic set, prints each table, writes each study's results to
``bench/results/benchmarks/<study>.json``, renders docs/benchmarks.md from them (``bench.render``)
and draws docs/recall.png and docs/recall-real.png (with ``--quick``, only where
``--results``/``--output``/``--png`` say). The real set
is made once by ``python -m bench.real_text`` (cached; the first ``make bench`` makes it).
The training-recipe sweep (issue 8, part 4) is a finished study, off this path: its figures stay in
docs/recipe.md and ``python -m bench.recipe_sweep`` reproduces them.
Then delta bundles (issue 12), warm queries (issue 9: Datasette text and image queries over HTTP and `add --images`
with 1 and N workers, on the outputs of ``make demo``, made first if missing) and last, the two runtimes (issue 22:
libscannlite beside the Task Library on the real set, and opening a million-item index).
Also separate, because each needs data or minutes of its own: ``python -m bench.scale`` (issue 10:
a million vectors, docs/scale.md) and ``python -m bench.ray_embed`` (issue 10: ``scannlite embed``
on a local Ray against the local engine and ``add --images``, on the demo's OpenMoji images).
"""

from __future__ import annotations

import sys

from .cli import run_sections

BENCHMARKS = ["real_recall", "build_recall", "export_latency", "delta_bundles", "warm_queries", "runtimes"]


def main(argv: list[str] | None = None) -> int:
    return run_sections(argv, BENCHMARKS)


if __name__ == "__main__":
    sys.exit(main())
