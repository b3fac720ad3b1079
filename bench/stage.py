"""Run one measured step in a fresh Python process: wall time and peak memory per step.

Peak RSS only means something per step if each step has a process of its own: a full build
run after data generation in one process would report the larger of the two. It is read as
``VmHWM`` from ``/proc/self/status`` (the high-water mark of this process's address space),
not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent
through fork and exec (measured here: a child of a 317 MiB parent reported 317 MiB from its
first line, while its VmHWM was 11 MiB), so every step would report at least the benchmark
process's own peak. The child blocks TensorFlow like every benchmark process
(:func:`bench.block_tensorflow`), calls ``module:function(**kwargs)``, and sends back its
result, the time the call took, its peak RSS and the RSS it started from (imports included).

Usage (internal): ``python -m bench.stage REQUEST.pkl RESPONSE.pkl``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ROOT


@dataclass
class Measured:
    value: Any
    seconds: float  # wall time of the function call in the child
    peak_rss: int  # bytes, peak RSS of the child at the end (VmHWM)
    start_rss: int  # bytes, peak RSS just before the call (interpreter and imports)


def _maxrss() -> int:
    """Peak resident set size of this process in bytes (see the module docstring)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run(func: str, *, env: dict[str, str] | None = None, **kwargs) -> Measured:
    """Call ``func`` ("bench.module:function") in a new process and return what it measured;
    ``env`` adds environment variables for that process only."""
    with tempfile.TemporaryDirectory(prefix="scannlite-bench-") as tmp:
        req, resp = Path(tmp, "req.pkl"), Path(tmp, "resp.pkl")
        req.write_bytes(pickle.dumps((func, kwargs)))
        proc = subprocess.run(
            [sys.executable, "-m", "bench.stage", str(req), str(resp)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if proc.returncode != 0 or not resp.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"benchmark step {func} failed (exit {proc.returncode}):\n{tail}")
        return Measured(**pickle.loads(resp.read_bytes()))


def main(req: str, resp: str) -> int:
    func, kwargs = pickle.loads(Path(req).read_bytes())
    module, _, name = func.partition(":")
    fn = getattr(importlib.import_module(module), name)
    start_rss = _maxrss()
    t0 = time.perf_counter()
    value = fn(**kwargs)
    seconds = time.perf_counter() - t0
    tmp = resp + ".tmp"
    # A plain dict: this module runs as __main__ here, so its classes would not unpickle.
    Path(tmp).write_bytes(
        pickle.dumps({"value": value, "seconds": seconds, "peak_rss": _maxrss(), "start_rss": start_rss})
    )
    os.replace(tmp, resp)
    return 0


if __name__ == "__main__":
    import bench

    bench.block_tensorflow()  # before the step's module loads anything
    sys.exit(main(*sys.argv[1:]))
