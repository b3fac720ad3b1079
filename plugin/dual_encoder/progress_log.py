"""A JSON-lines file through which a worker process reports progress to its caller.

Why a file: :func:`scannlite.store.workers.boundary.run_in` sends a worker's stdout and stderr to a
private log, so a progress bar drawn in the worker would never reach the user. The worker
appends one JSON object per event; the caller (see :mod:`.jobs`) tails the file from another
thread and draws the bar. Events: ``stage`` (a named slow step), ``start`` (epochs, steps per
epoch), ``step`` (epoch, step, loss; at most a few per second), ``epoch`` (loss, recall,
seconds), ``done``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


class ProgressWriter:
    def __init__(self, path: str | Path | None, min_interval: float = 0.25):
        self.path = Path(path) if path else None
        self.min_interval = min_interval
        self._last_step = 0.0

    def emit(self, event: str, **fields) -> None:
        if self.path is None:
            return
        if event == "step":
            now = time.monotonic()
            if now - self._last_step < self.min_interval:
                return
            self._last_step = now
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, **fields}) + "\n")


class ProgressReader:
    """Returns the events appended since the previous call (complete lines only)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._offset = 0
        self._partial = ""

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events
