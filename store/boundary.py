"""Run a function in a fresh process of a given kind (``device`` or ``tensorflow``).

Arguments and results travel as pickles through files in a private temporary directory
(numpy arrays and bytes included); both ends are scannlite's own code. A worker that dies
(tflite-support 0.4.4 segfaults on some bad bundles) becomes a :class:`ProcessFailed` with
the signal and the last lines it printed, never a crash of the caller.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

KINDS = ("device", "tensorflow")


class ProcessFailed(RuntimeError):
    """The worker process died or raised; ``str()`` is one line fit for users."""


class WorkerError(RuntimeError):
    """An error the worker function raised on purpose, carried back verbatim."""


def _tail(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # TensorFlow and absl prefix their log lines with a level letter and a timestamp; they
    # bury the real message, so prefer lines that look like Python errors.
    errors = [ln for ln in kept if "Error" in ln or "error" in ln]
    chosen = errors[-lines:] if errors else kept[-lines:]
    return " | ".join(chosen)


def run_in(kind: str, func: str, *args: Any, timeout: float | None = 1800, **kwargs: Any) -> Any:
    """Call ``func`` ("package.module:function") in a new ``kind`` process and return its result."""
    if kind not in KINDS:
        raise ValueError(f"unknown process kind {kind!r}; expected one of {KINDS}")
    with tempfile.TemporaryDirectory(prefix=f"scannlite-{kind}-") as tmp:
        req, resp, err = Path(tmp, "request.pkl"), Path(tmp, "response.pkl"), Path(tmp, "stderr.txt")
        with open(req, "wb") as f:
            pickle.dump((func, args, kwargs), f, protocol=pickle.HIGHEST_PROTOCOL)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if kind == "device":
            env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        with open(err, "wb") as errf:
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "scannlite.store.worker", kind, str(req), str(resp)],
                    stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, env=env, timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                raise ProcessFailed(f"the {kind} process did not finish {func} within {timeout:.0f} s") from None
        log = err.read_text(errors="replace")
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            raise ProcessFailed(f"the {kind} process crashed ({name}) in {func.rsplit(':', 1)[-1]}"
                                + (f": {_tail(log)}" if log.strip() else ""))
        if not resp.exists():
            raise ProcessFailed(f"the {kind} process exited with status {proc.returncode} in "
                                f"{func.rsplit(':', 1)[-1]}: {_tail(log) or 'no output'}")
        with open(resp, "rb") as f:
            ok, payload = pickle.load(f)
        if not ok:
            raise WorkerError(payload)
        return payload
