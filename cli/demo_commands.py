"""scannlite demo."""

from __future__ import annotations

from pathlib import Path

import typer

from scannlite.cli.common import RichProgress, console, handle_errors


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes its catalog and bundles."),
    synthetic: bool = typer.Option(False, "--synthetic", help="Built-in synthetic vectors only (no training)."),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Training epochs when a model must be trained (default 20)."
    ),
):
    """Run the main job end to end: train on OpenMoji, convert, catalog, export verified
    searcher bundles, query them as a phone would, and draw the results (HTML + PNG).
    Re-runs reuse what earlier runs made.

    Example: scannlite demo --out demo-output
    """
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    if synthetic:
        from scannlite.plugin.dual_encoder import demo as demo_module

        demo_module.synthetic(out, say=say, progress=RichProgress())
        return
    from scannlite.plugin.dual_encoder import demo_openmoji

    # EncoderError is a ScannliteError: handle_errors already turns it into one line.
    demo_openmoji.run(out, say=say, progress=RichProgress(), console=console, epochs=epochs)


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo))
