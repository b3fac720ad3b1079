"""Where slow-to-make intermediate files live (OpenMoji renders, frozen MiniLM caption vectors).

Why: ``make demo`` must re-run in seconds; rendering 4,000 emoji and running MiniLM over
their captions happen once per machine. Default ``~/.cache/scannlite``; override with the
``SCANNLITE_CACHE_DIR`` environment variable (tests point it at a temporary folder so they
never depend on a warm cache, or at a shared one to stay fast).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scannlite.store.atomic import atomic_open


def cache_dir() -> Path:
    root = os.environ.get("SCANNLITE_CACHE_DIR") or Path.home() / ".cache" / "scannlite"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` so that a reader never sees half a file (two runs may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        np.savez(f, **arrays)
