"""The benchmark catalog: created, filled and fully built once per work directory.

Both benchmarks use the same catalog (the export benchmark exports the full build's snapshot),
so whichever runs first makes it and the other reuses it. Every step runs in its own process
through :mod:`bench.stage`, so the full build's peak memory is the build's alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import stage
from .data import Data


@dataclass
class Built:
    path: Path
    create: dict
    add: stage.Measured
    full: stage.Measured


def catalog_path(data: Data, workdir: Path) -> Path:
    return Path(workdir) / f"catalog-{data.setup.name}"


def ensure(data: Data, workdir: Path, *, fresh: bool = False) -> Built:
    """The catalog holding ``data.base()`` with one full build (snapshot 1)."""
    s = data.setup
    path = catalog_path(data, workdir)
    record = path.parent / f"{path.name}.json"
    wanted = json.dumps(s.as_dict(), sort_keys=True)
    if not fresh and record.is_file():
        saved = json.loads(record.read_text())
        if saved["setup"] == wanted and path.is_dir():
            return Built(path, saved["create"], stage.Measured(**saved["add"]), stage.Measured(**saved["full"]))
    if path.exists():
        shutil.rmtree(path)
    record.unlink(missing_ok=True)
    created = stage.run(
        "bench.catalog_steps:create",
        path=str(path),
        dim=s.dim,
        leaves=s.leaves,
        searched=s.searched,
        dims_per_block=s.dims_per_block,
    ).value
    added = stage.run("bench.catalog_steps:add", path=str(path), npy=str(data.base_path), prefix="v", start=0, stop=s.n)
    full = stage.run("bench.catalog_steps:build", path=str(path), full=True)
    record.write_text(
        json.dumps({"setup": wanted, "create": created, "add": added.__dict__, "full": full.__dict__}, default=str)
    )
    return Built(path, created, added, full)


def copy_of(path: Path, name: str) -> Path:
    """A copy of a closed catalog directory (SQLite database, WAL and segments)."""
    target = path.parent / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(path, target)
    return target
