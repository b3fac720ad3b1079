"""scannlite's benchmarks (issues 2 and 3): ``python -m bench.run_all`` or ``make bench``.

Not timed tests: each benchmark prints its tables and writes its results as JSON
(``bench/results/<doc>/<study>.json``, :mod:`bench.results`); only ``python -m bench.render``
writes docs/benchmarks.md and docs/scale.md from those files.
Comparisons are ratios of figures measured in the same run, because the machine (2 cores,
shared with other work) makes absolute times drift from run to run.

Two process rules hold here as everywhere in scannlite (../shared/docs/stack.md):
TensorFlow never loads in a benchmark process (it cannot share a process with tflite-support's
native modules), so the entry points (:mod:`bench.cli`, :mod:`bench.stage`) call
:func:`block_tensorflow` first; importing the package alone blocks nothing, so a TensorFlow
worker may still import a module from here. The Task Library runs only in device processes
started through :func:`scannlite.store.workers.boundary.run_in`. Those workers must be able to
import ``bench`` too (for the device-side timing functions), so the repository root is put on
``PYTHONPATH`` for every child process.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


def block_tensorflow() -> None:
    """Make ``import tensorflow`` fail in this process (scann then skips its TF ops)."""
    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
