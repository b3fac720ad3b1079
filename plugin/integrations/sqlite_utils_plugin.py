"""scannlite inside sqlite-utils: ``sqlite-utils scannlite <command> ...``.

People who keep data in SQLite already have ``sqlite-utils`` on their path; through its plugin
hook (entry-point group ``sqlite_utils``) every scannlite command is also reachable there.

It is the same typer app that ``scannlite`` runs, not a copy: the ``scannlite`` group registered
here hands its arguments to ``scannlite.cli.app.app``. It cannot attach the app as a click
sub-group directly: typer 0.29 ships its own click fork, so its command objects are not
``click.Command`` instances and its ``typer.Exit`` is not click's ``Exit`` (an error would end
in a traceback instead of ``error: <one line>``). The app is imported only when the group
runs, so other ``sqlite-utils`` commands start no slower.
"""

from __future__ import annotations

import click
import sqlite_utils

HELP = "scannlite vector catalogs: add, build, search, snapshots, export... (run `sqlite-utils scannlite --help`)."


@click.command(
    name="scannlite",
    help=HELP,
    short_help="scannlite vector catalogs (add, build, search, export...).",
    add_help_option=False,  # --help goes to the typer app, which lists its commands
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def scannlite_group(args: tuple[str, ...]) -> None:
    from scannlite.cli.app import app

    # The typer app's own main parses, prints `error: ...` and exits with its status.
    app(args=list(args), prog_name="sqlite-utils scannlite")


@sqlite_utils.hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(scannlite_group)
