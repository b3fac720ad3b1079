"""Shared CLI plumbing: one-line errors, rich progress, JSON output."""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgressBar
from rich.text import Text

from scannlite.store.errors import ScannliteError
from scannlite.store.oserrors import describe as describe_os_error
from scannlite.store.progress import Progress

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1):
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn every expected failure into ``error: <one line>`` and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ScannliteError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted; nothing half-written was published", 130)
        except (OSError, sqlite3.Error) as exc:
            # The last resort for a full disk, a read-only file system or a missing permission
            # that no write site translated (store/oserrors.py): still one line with the cause.
            line = describe_os_error(exc)
            if line is None:
                raise
            fail(line)

    return wrapper


class RateColumn(ProgressColumn):
    """Things per second, e.g. ``41.3 images/s`` (rich's own speed estimate)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


class RichProgress(Progress):
    """Progress bars on stderr, drawn only when stderr is a terminal or forced."""

    def __init__(self, enabled: bool | None = None, console: Console | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.console = console or err_console

    @contextmanager
    def task(self, description: str, total: int | None = None, unit: str | None = None):
        if not self.enabled:
            yield lambda n=1: None
            return
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        if unit:
            columns.append(RateColumn(unit))
        columns.append(TimeElapsedColumn())
        with RichProgressBar(*columns, console=self.console, transient=True) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
