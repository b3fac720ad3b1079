"""``scannlite embed``: an image collection to Parquet shards, here or on Ray; ``add`` ingests them."""

from __future__ import annotations

from pathlib import Path

import typer

from scannlite.cli.common import RichProgress, console, handle_errors


def embed(
    source: str = typer.Argument(
        ...,
        help="Folder or glob of images, or a .parquet/.csv manifest with a path column "
        "(paths or URIs such as s3://...; optional id and metadata columns).",
        show_default=False,
    ),
    embedder: Path = typer.Option(..., "--embedder", help="A TFLite image embedder (.tflite)."),
    out: Path = typer.Option(..., "--out", "-o", help="New directory for the Parquet shards."),
    metadata_file: Path | None = typer.Option(
        None, "--metadata-file", help="For a folder or glob: JSONL or CSV of id/path -> metadata."
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local (warm device workers on this machine) or ray (Ray Data; pip install 'scannlite[ray]').",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="With --engine ray: an existing Ray cluster (default: a local Ray with this machine's cores).",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Embedding workers (Ray actors with --engine ray; default: the machine's cores)."
    ),
    batch: int = typer.Option(256, "--batch", min=1, help="Images per worker call (and per shard, locally)."),
):
    """Embed images into Parquet shards (id, embedding, metadata, source_hash) that
    `scannlite add CATALOG DIR` ingests in one commit. Both engines give the same vectors.

    Example: scannlite embed photos/ --embedder image_embedder.tflite --out photos.shards
    Example: scannlite embed manifest.parquet --embedder image_embedder.tflite --out shards --engine ray --address ray://head:10001
    """
    from scannlite.plugin.ingest.embed_job import embed_images

    rep = embed_images(
        source,
        embedder,
        out,
        metadata_file=metadata_file,
        engine=engine,
        address=address,
        workers=workers,
        batch=batch,
        progress=RichProgress(),
    )
    console.print(f"{rep.line()}; wrote {out} (add it with `scannlite add CATALOG {out}`)", highlight=False)
    for ident, why in rep.skipped[:20]:
        console.print(f"  skipped {ident}: {why}", highlight=False)
    if len(rep.skipped) > 20:
        console.print(f"  ... and {len(rep.skipped) - 20} more", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("embed")(handle_errors(embed))
