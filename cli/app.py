"""The ``scannlite`` command. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="scannlite",
    help="On-device semantic search catalogs: add vectors, build incremental ScaNN partitions, "
    "search as a phone would, export verified TFLite Searcher bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each with a ``register(app)`` function. Keep this list short and flat.
COMMAND_MODULES = [
    "scannlite.cli.catalog_commands",
    "scannlite.cli.bundle_commands",
    "scannlite.cli.demo_commands",
    "scannlite.cli.encoder_commands",
    "scannlite.cli.ecosystem_commands",
    "scannlite.cli.embed_commands",
]


def _load() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_load()


def main() -> None:
    app()
