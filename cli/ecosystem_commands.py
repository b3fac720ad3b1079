"""``scannlite configure`` and ``scannlite export-parquet``: what other tools need from a catalog.

``configure`` records, in the catalog itself, which embedders turn text and images into
the catalog's vectors and where item images live, so that any reader (the Datasette search
page) can embed a query the way the catalog's vectors were made. ``export-parquet`` hands one
snapshot to engines that speak Parquet (DuckDB, Spark, Beam, Ray, LanceDB); ``add`` reads the
file back as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from scannlite.cli.common import console, handle_errors, print_json
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.export_parquet import export_parquet_file
from scannlite.store.errors import InvalidInput

CatalogArg = typer.Argument(..., help="Catalog directory.", show_default=False)

# Option names -> the catalog_config keys ``configure`` writes (scannlite.plugin.facade.settings).
SETTINGS = {"text-embedder": "text_embedder", "image-embedder": "image_embedder", "thumbnails-root": "thumbnails_root"}
OPTION_NAMES = {key: f"--{name}" for name, key in SETTINGS.items()}


# ---- configure -----------------------------------------------------------------------------


def configure(
    catalog: Path = CatalogArg,
    text_embedder: str | None = typer.Option(
        None,
        "--text-embedder",
        help="Text embedder whose outputs are this "
        "catalog's vectors: a .tflite model (Task Library TextEmbedder), "
        "or NAME[:PATH] from `scannlite embedders`.",
    ),
    image_embedder: str | None = typer.Option(
        None,
        "--image-embedder",
        help="Image embedder for image queries: a .tflite model (Task Library ImageEmbedder), or NAME[:PATH].",
    ),
    thumbnails_root: Path | None = typer.Option(
        None, "--thumbnails-root", help="Folder that item ids or metadata name image files in (relative paths)."
    ),
    unset: list[str] | None = typer.Option(
        None, "--unset", help="Forget a setting: text-embedder, image-embedder or thumbnails-root (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the resulting settings as JSON."),
):
    """Record the catalog's text/image embedders and thumbnail folder (read by the Datasette search page).

    Embedders are recorded by type and absolute path (tflite-text:/abs/text.tflite), or by
    name alone for a plugin's embedder that needs no file. With no option, prints the settings.

    Example: scannlite configure photos.catalog --text-embedder text.tflite --thumbnails-root photos/
    """
    from scannlite.plugin.facade.settings import configure as configure_catalog

    cat = Catalog.open(catalog)
    forget = []
    for name in unset or []:
        if name not in SETTINGS:
            raise InvalidInput(f"--unset {name!r}: expected one of {', '.join(SETTINGS)}")
        forget.append(SETTINGS[name])
    values = {"text_embedder": text_embedder, "image_embedder": image_embedder, "thumbnails_root": thumbnails_root}
    current = configure_catalog(cat, values, forget, OPTION_NAMES)
    if as_json:
        print_json(current)
        return
    for name, key in SETTINGS.items():
        value = current[key]
        console.print(f"{name}: {value if value is not None else '(not set)'}", highlight=False)


# ---- export-parquet --------------------------------------------------------------------------


def export_parquet(
    catalog: Path = CatalogArg,
    out: Path = typer.Argument(
        ..., help="Output .parquet file (replaced atomically if it exists).", show_default=False
    ),
    version: int | None = typer.Option(None, "--snapshot", help="Snapshot version (default: latest)."),
):
    """Write one snapshot as a Parquet file (id, embedding, metadata, leaf) for DuckDB, Spark, Ray, LanceDB...

    `scannlite add` reads the file back as it is (the leaf column is ignored).

    Example: scannlite export-parquet photos.catalog photos-v3.parquet --snapshot 3
    """
    cat = Catalog.open(catalog)
    table = export_parquet_file(cat, out, version)
    info = json.loads(table.schema.metadata[b"scannlite"])
    console.print(
        f"wrote {out}: snapshot {info['snapshot']}, {table.num_rows} rows, {cat.dim}-d float32 "
        f"embeddings, {cat.metadata_type} metadata",
        highlight=False,
    )


COMMANDS = {"configure": configure, "export-parquet": export_parquet}


def register(app: typer.Typer) -> None:
    for name, fn in COMMANDS.items():
        app.command(name)(handle_errors(fn))
