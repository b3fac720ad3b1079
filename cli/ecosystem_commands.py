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
from typing import List, Optional

import typer

from scannlite.store.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.export_parquet import export_parquet_file

from .common import console, handle_errors, print_json

CatalogArg = typer.Argument(..., help="Catalog directory.", show_default=False)

# catalog_config keys written by ``configure``; values are JSON strings (embedders as
# NAME or NAME:ABSOLUTE_PATH, see scannlite.plugin.embedders; the folder as an absolute path).
SETTINGS = {"text-embedder": "text_embedder", "image-embedder": "image_embedder",
            "thumbnails-root": "thumbnails_root"}


# ---- configure -----------------------------------------------------------------------------

def checked_embedder(value: str, kind: str, dim: int) -> str:
    """What the catalog records for ``--{kind}-embedder VALUE``, after the checks that catch a
    wrong embedder at configure time rather than at the first search: it resolves and opens
    through the embedder plugins, it is of this kind, its output has the catalog's dimension."""
    from scannlite.plugin import embedders

    et, path, emb = embedders.open_for(value, kind, {k: f"pass it as --{k}-embedder" for k in ("text", "image")})
    embedders.check_dim(et, path, emb, dim)
    return embedders.setting(et, path)


def checked_folder(path: Path) -> str:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise InvalidInput(f"--thumbnails-root {path} is not a directory")
    return str(path.resolve())


def configure(
    catalog: Path = CatalogArg,
    text_embedder: Optional[str] = typer.Option(None, "--text-embedder", help="Text embedder whose outputs are this "
                                                "catalog's vectors: a .tflite model (Task Library TextEmbedder), "
                                                "or NAME[:PATH] from `scannlite embedders`."),
    image_embedder: Optional[str] = typer.Option(None, "--image-embedder", help="Image embedder for image queries: "
                                                 "a .tflite model (Task Library ImageEmbedder), or NAME[:PATH]."),
    thumbnails_root: Optional[Path] = typer.Option(None, "--thumbnails-root", help="Folder that item ids or "
                                                   "metadata name image files in (relative paths)."),
    unset: Optional[List[str]] = typer.Option(None, "--unset", help="Forget a setting: text-embedder, "
                                              "image-embedder or thumbnails-root (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the resulting settings as JSON."),
):
    """Record the catalog's text/image embedders and thumbnail folder (read by the Datasette search page).

    Embedders are recorded by type and absolute path (tflite-text:/abs/text.tflite), or by
    name alone for a plugin's embedder that needs no file. With no option, prints the settings.

    Example: scannlite configure photos.catalog --text-embedder text.tflite --thumbnails-root photos/
    """
    cat = Catalog.open(catalog)
    forget = []
    for name in unset or []:
        if name not in SETTINGS:
            raise InvalidInput(f"--unset {name!r}: expected one of {', '.join(SETTINGS)}")
        forget.append(SETTINGS[name])
    given = {"text-embedder": text_embedder, "image-embedder": image_embedder, "thumbnails-root": thumbnails_root}
    clash = [n for n, v in given.items() if v is not None and SETTINGS[n] in forget]
    if clash:
        raise InvalidInput(f"--{clash[0]} and --unset {clash[0]} contradict each other")
    values = {}
    if text_embedder is not None:
        values["text_embedder"] = checked_embedder(text_embedder, "text", cat.dim)
    if image_embedder is not None:
        values["image_embedder"] = checked_embedder(image_embedder, "image", cat.dim)
    if thumbnails_root is not None:
        values["thumbnails_root"] = checked_folder(thumbnails_root)
    if values or forget:
        with cat.writing(), cat.transaction():
            for key, value in values.items():
                cat.set_setting(key, value)
            for key in forget:
                cat.unset_setting(key)
    current = {key: None if key in forget else values.get(key, cat.settings.get(key)) for key in SETTINGS.values()}
    if as_json:
        print_json(current)
        return
    for name, key in SETTINGS.items():
        value = current[key]
        console.print(f"{name}: {value if value is not None else '(not set)'}", highlight=False)


# ---- export-parquet --------------------------------------------------------------------------

def export_parquet(
    catalog: Path = CatalogArg,
    out: Path = typer.Argument(..., help="Output .parquet file (replaced atomically if it exists).", show_default=False),
    version: Optional[int] = typer.Option(None, "--snapshot", help="Snapshot version (default: latest)."),
):
    """Write one snapshot as a Parquet file (id, embedding, metadata, leaf) for DuckDB, Spark, Ray, LanceDB...

    `scannlite add` reads the file back as it is (the leaf column is ignored).

    Example: scannlite export-parquet photos.catalog photos-v3.parquet --snapshot 3
    """
    cat = Catalog.open(catalog)
    table = export_parquet_file(cat, out, version)
    info = json.loads(table.schema.metadata[b"scannlite"])
    console.print(f"wrote {out}: snapshot {info['snapshot']}, {table.num_rows} rows, {cat.dim}-d float32 "
                  f"embeddings, {cat.metadata_type} metadata", highlight=False)


COMMANDS = {"configure": configure, "export-parquet": export_parquet}


def register(app: typer.Typer) -> None:
    for name, fn in COMMANDS.items():
        app.command(name)(handle_errors(fn))
