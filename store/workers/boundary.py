"""The door between kinds of process: run a function in a ``device`` or ``tensorflow`` worker.

TensorFlow and tflite-support's native modules can never share a process, and neither may
load into the store's own process (the CLI, the library, Datasette). So work for them runs
in worker processes of their kind (:mod:`scannlite.store.workers.worker` sets each kind up before
its first import).

**Warm by default.** A worker is started on first use and kept: the next call of the same
kind reuses it, with every model it loaded (the device runtime caches them by path and
modification time, or by content). Starting a device worker and loading tflite-support costs
about a second; a warm call costs the work itself plus a pickle over a pipe (no temporary
files). Workers are bounded: at most :func:`set_max_workers` per kind (default: the
machine's cores for ``device``, one for ``tensorflow``, which holds gigabytes), and each
exits after ``SCANNLITE_WORKER_IDLE`` seconds without work (default 300).

**Failures stay one call's failures.** A worker that dies (tflite-support 0.4.4 segfaults on
some bad bundles) or overruns its timeout becomes a :class:`ProcessFailed` naming the signal
and the last lines it printed, never a crash of the caller; the next call gets a fresh
worker. ``fresh=True`` runs one call in a new process that exits afterwards, for work that
must start cold (export's verification opens the bundle in a process that never saw it).
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from typing import Any

from scannlite.store.errors import ScannliteError
from scannlite.store.workers.worker import start_env

KINDS = ("device", "tensorflow")
HEADER = struct.Struct("<Q")  # frame length, then a pickle
IDLE_SECONDS = float(os.environ.get("SCANNLITE_WORKER_IDLE", "300"))


class ProcessFailed(ScannliteError, RuntimeError):
    """The worker process died or raised; ``str()`` is one line fit for users."""


class WorkerError(ScannliteError, RuntimeError):
    """An error the worker function raised on purpose, carried back verbatim."""


def _tail(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # TensorFlow and absl prefix their log lines with a level letter and a timestamp; they
    # bury the real message, so prefer lines that look like Python errors.
    errors = [ln for ln in kept if "Error" in ln or "error" in ln]
    chosen = errors[-lines:] if errors else kept[-lines:]
    return " | ".join(chosen)


def _read_exact(stream, n: int) -> bytearray:
    """Exactly ``n`` bytes, read into one buffer: a message of hundreds of megabytes (an
    index's codes) costs its own size once, not again as pieces and their join."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise EOFError
        got += k
    return buf


def _write_message(stream, data: bytes) -> None:
    stream.write(HEADER.pack(len(data)))
    stream.write(data)  # not header + data: that would copy a large message once more
    stream.flush()


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self, kind: str, idle: float | None):
        env = {**os.environ, **start_env(kind)}
        self.kind = kind
        self.log = tempfile.TemporaryFile()  # what the worker printed, for the error line
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scannlite.store.workers.worker", kind, "serve", str(idle or 0)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        # stdin=PIPE and stdout=PIPE: Popen always makes both pipes.
        if self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError(f"the {kind} process started without its pipes")
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        _STATS[kind] += 1

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, func: str, args, kwargs, timeout: float | None) -> Any:
        name = func.rsplit(":", 1)[-1]
        self.log_start = os.fstat(self.log.fileno()).st_size  # this call's output starts here
        payload = pickle.dumps((func, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _write_message(self.stdin, payload)
            del payload
            # The answer comes in one write when the work is done: wait for its first byte
            # (no timer thread per call: a warm call costs microseconds, not a thread start).
            if timeout and not select.select([self.stdout], [], [], timeout)[0]:
                self.proc.kill()
                raise self._died(name, timeout)
            (size,) = HEADER.unpack(_read_exact(self.stdout, HEADER.size))
            ok, result = pickle.loads(_read_exact(self.stdout, size))
        except (EOFError, OSError):  # BrokenPipeError is an OSError
            raise self._died(name, None) from None
        if not ok:
            raise WorkerError(result)
        return result

    def _died(self, name: str, timeout: float | None) -> ProcessFailed:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.seek(getattr(self, "log_start", 0))
        log = self.log.read().decode(errors="replace")
        self.close()
        if timeout is not None:
            return ProcessFailed(f"the {self.kind} process did not finish {name} within {timeout:.0f} s")
        if code < 0:
            return ProcessFailed(
                f"the {self.kind} process crashed ({signal.Signals(-code).name}) in {name}"
                + (f": {_tail(log)}" if log.strip() else "")
            )
        return ProcessFailed(
            f"the {self.kind} process exited with status {code} in {name}: {_tail(log) or 'no output'}"
        )

    def close(self) -> None:
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)  # EOF on its stdin: the worker returns
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


_LOCK = threading.Condition()
_IDLE: dict[str, list[_Worker]] = {k: [] for k in KINDS}
_COUNT = dict.fromkeys(KINDS, 0)
_MAX = {"device": max(1, os.cpu_count() or 1), "tensorflow": 1}
_STATS = dict.fromkeys(KINDS, 0)


def set_max_workers(kind: str, n: int) -> None:
    """At most ``n`` warm workers of ``kind`` at once (callers beyond that wait their turn)."""
    if kind not in KINDS or n < 1:
        raise ValueError(f"set_max_workers needs a kind in {KINDS} and n >= 1, got {kind!r}, {n}")
    with _LOCK:
        _MAX[kind] = n
        _LOCK.notify_all()


def stats() -> dict:
    """Worker processes started so far, per kind (tests count them to prove reuse)."""
    with _LOCK:
        return {"started": dict(_STATS), "warm": {k: len(v) for k, v in _IDLE.items()}}


def _acquire(kind: str) -> _Worker:
    with _LOCK:
        while True:
            while _IDLE[kind]:
                worker = _IDLE[kind].pop()
                if worker.alive:
                    return worker
                _COUNT[kind] -= 1  # it exited while idle (its idle timeout)
                worker.close()
            if _COUNT[kind] < _MAX[kind]:
                _COUNT[kind] += 1
                break
            _LOCK.wait()
    try:
        return _Worker(kind, IDLE_SECONDS)
    except BaseException:
        with _LOCK:
            _COUNT[kind] -= 1
            _LOCK.notify()
        raise


def _release(worker: _Worker, healthy: bool) -> None:
    with _LOCK:
        keep = healthy and worker.alive
        if keep:
            _IDLE[worker.kind].append(worker)
        else:
            _COUNT[worker.kind] -= 1
        _LOCK.notify()
    if not keep and worker.alive:
        worker.close()  # a call that failed on this side (say, unpicklable arguments)


def shutdown() -> None:
    """Let every idle worker go (they also go by themselves when idle, or with this process)."""
    with _LOCK:
        workers = [w for kind in KINDS for w in _IDLE[kind]]
        for kind in KINDS:
            _COUNT[kind] -= len(_IDLE[kind])
            _IDLE[kind].clear()
    for worker in workers:
        worker.close()


atexit.register(shutdown)


def run_in(kind: str, func: str, *args: Any, timeout: float | None = 1800, fresh: bool = False, **kwargs: Any) -> Any:
    """Call ``func`` ("package.module:function") in a ``kind`` worker and return its result."""
    if kind not in KINDS:
        raise ValueError(f"unknown process kind {kind!r}; expected one of {KINDS}")
    if fresh:
        worker = _Worker(kind, None)
        try:
            return worker.call(func, args, kwargs, timeout)
        finally:
            if worker.alive:
                worker.close()
    worker = _acquire(kind)
    healthy = False
    try:
        result = worker.call(func, args, kwargs, timeout)
        healthy = True
        return result
    except WorkerError:
        healthy = True  # the function failed; the worker is fine
        raise
    finally:
        _release(worker, healthy)
