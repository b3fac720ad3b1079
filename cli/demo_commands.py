"""scannlite demo."""
from __future__ import annotations

from pathlib import Path

import typer

from .common import RichProgress, console, handle_errors


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes its catalog and bundles."),
    synthetic: bool = typer.Option(False, "--synthetic", help="Built-in synthetic vectors only (no training)."),
):
    """Run the main job end to end and print what happens.

    Example: scannlite demo --out demo-output
    """
    from scannlite.plugin import demo as demo_module

    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    demo_module.synthetic(out, say=say, progress=RichProgress())


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo))
