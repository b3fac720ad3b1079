"""export, and the bundle group: info, verify, query, patch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from scannlite.cli.common import RichProgress, console, err_console, handle_errors, print_json
from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle import delta
from scannlite.store.bundle import inspection as bundles
from scannlite.store.bundle.export import DEFAULT_DEVICE_METADATA_LIMIT
from scannlite.store.bundle.export import export as export_snapshot
from scannlite.store.bundle.parity import summary_line
from scannlite.store.bundle.runtimes import default_query_runtime
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput

DEVICE = DeviceProcesses()

bundle_app = typer.Typer(help="Inspect, verify and query TFLite Searcher bundles.", no_args_is_help=True)


def split_line(split: dict) -> str:
    """``size: model 22.9 MB, index 0.5 MB, metadata 0.1 MB``: what the file's bytes are for."""
    return "size: " + ", ".join(f"{k} {split[k] / 1e6:.1f} MB" for k in ("model", "index", "metadata"))


def _model_file(embedder: str | None) -> Path | None:
    """A .tflite path as given; a name such as ``minilm`` becomes the model file that embedder makes."""
    if embedder is None:
        return None
    from scannlite.plugin.embedders.registry import bundle_model

    return bundle_model(embedder)


def export(
    catalog: Path = typer.Argument(..., help="Catalog directory.", show_default=False),
    embedder: str | None = typer.Option(
        None,
        "--embedder",
        help="The TFLite embedder to pack the index into: a .tflite file, or a named embedder that makes one "
        "(e.g. minilm).",
    ),
    out: Path = typer.Option(..., "--out", help="Output bundle (.tflite), or .ldb with --index-only."),
    version: int | None = typer.Option(None, "--snapshot", help="Snapshot version (default: latest)."),
    leaves_to_search: int | None = typer.Option(None, help="Leaves the device searches (default: the snapshot's)."),
    index_only: bool = typer.Option(
        False, "--index-only", help="Write the bare on-device index for apps that pass index_file."
    ),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Skip the parity check through the Task Library and libscannlite (not recommended)."
    ),
    device_metadata: str = typer.Option("id", help="What each device result carries: id or metadata."),
    device_metadata_limit: int = typer.Option(DEFAULT_DEVICE_METADATA_LIMIT, help="Largest device metadata in bytes."),
    probe: Path | None = typer.Option(
        None, "--probe", help="Probe texts (one per line) or a folder of probe images for the embedder check."
    ),
    delta_from: Path | None = typer.Option(
        None,
        "--delta-from",
        help="An older bundle of this catalog: also write "
        "OUT.from-<its hash>.patch, which `bundle patch` turns into OUT.",
    ),
):
    """Export a snapshot as a verified TFLite Searcher bundle (plus BUNDLE.manifest.json).

    Example: scannlite export photos.catalog --embedder text_embedder.tflite --out photos.tflite

    Example: scannlite export photos.catalog --embedder text_embedder.tflite --out photos-2.tflite --delta-from photos.tflite
    """
    cat = Catalog.open(catalog)
    r = export_snapshot(
        cat,
        device=DEVICE,
        out=out,
        embedder=_model_file(embedder),
        version=version,
        leaves_to_search=leaves_to_search,
        index_only=index_only,
        verify_bundle=not no_verify,
        device_metadata=device_metadata,
        device_metadata_limit=device_metadata_limit,
        probe=probe,
        progress=RichProgress(),
        delta_from=delta_from,
    )
    m = r.manifest
    check = (
        summary_line(m["verified_by"], m["parity"]["queries"], m["parity"]["identical"], m["parity"]["notes"])
        if r.verified
        else "NOT verified (--no-verify)"
    )
    console.print(
        f"wrote {r.path} ({m['sizes']['file']:,} bytes): snapshot {m['snapshot']}, {m['items']} items, "
        f"{m['leaves']} leaves, {m['leaves_searched']} searched; {check}",
        highlight=False,
    )
    console.print("  " + split_line(m["sizes"]["split"]), highlight=False)
    facts = []
    if m.get("recall"):
        facts.append(f"estimated recall@{m['recall']['k']} {m['recall']['at_leaves_searched']:.3f}")
    if m.get("device_latency_ms"):
        lat = m["device_latency_ms"]
        facts.append(
            f"Task Library search p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms ({lat['searches']} searches)"
        )
    if facts:
        console.print("  " + "; ".join(facts), highlight=False)
    console.print(
        f"wrote {r.manifest_path}" + ("; apps must set l2_normalize=true" if m["l2_normalize"] else ""), highlight=False
    )
    if r.patch_path is not None:
        p = m["patches"][0]
        console.print(
            f"wrote {r.patch_path} ({p['bytes']:,} bytes, {100 * p['share_of_result']:.2f}% of the bundle): "
            f"snapshot {p['base']['snapshot']} -> {p['result']['snapshot']}; apply with "
            f"`scannlite bundle patch {p['base']['file']} {r.patch_path.name} -o {r.path.name}` "
            f"or `zstd -d --patch-from={p['base']['file']} {r.patch_path.name}`",
            highlight=False,
        )


def info(
    bundle: Path = typer.Argument(..., help="Bundle (.tflite) or index (.ldb).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """What a bundle holds: model inputs and outputs, index dims, leaves, items, codes, sizes.

    Example: scannlite bundle info photos.tflite --json
    """
    data = bundles.info(bundle)
    if as_json:
        print_json(data)
        return
    idx = data["index"]
    console.print(f"{data['file']}: {data['kind']}, {data['bytes']:,} bytes", highlight=False)
    console.print("  " + split_line(data["split"]), highlight=False)
    if "model" in data:
        for i in data["model"]["inputs"]:
            console.print(
                f"  input  {i['name']}: {i['dtype']} {i['shape']}"
                + (f", {i['tokenizer']} tokenizer" if i.get("tokenizer") else ""),
                highlight=False,
            )
        for o in data["model"]["outputs"]:
            console.print(f"  output {o['name']}: {o['dtype']} {o['shape']}", highlight=False)
    part = idx.get("partitioner") or {}
    console.print(
        f"  index: {idx['items']} items, {idx['embedding_type']} x {idx['embedding_dim']}, query dim "
        f"{idx['query_dim']}, {idx['distance']}, {part.get('leaves', 1)} leaves, "
        f"{part.get('leaves_searched', 1)} searched",
        highlight=False,
    )
    if data.get("user_info"):
        u = data["user_info"]
        console.print(
            f"  made by scannlite from snapshot {u.get('snapshot')}; apps must set "
            f"l2_normalize={'true' if u.get('l2_normalize') else 'false'}",
            highlight=False,
        )
    if data.get("manifest") is not None:
        by = data["manifest"].get("verified_by") or []
        console.print(
            f"  verified by {', '.join(by)}" if by else "  the manifest records no runtime that verified it",
            highlight=False,
        )


def verify(
    bundle: Path = typer.Argument(..., help="Bundle (.tflite) or index (.ldb).", show_default=False),
    catalog: Path | None = typer.Option(None, "--catalog", help="Check against the catalog snapshot it came from."),
    probe: Path | None = typer.Option(None, "--probe", help="Probe texts file or images folder."),
):
    """Re-run export's checks and the parity test on a bundle, through the Task Library and libscannlite.

    Example: scannlite bundle verify photos.tflite --catalog photos.catalog
    """
    problems, rep = bundles.verify(bundle, device=DEVICE, catalog=catalog, probe=probe, progress=RichProgress())
    if problems:
        for p in problems[:20]:
            console.print(f"problem: {p}", highlight=False)
        raise typer.Exit(1)
    console.print(
        f"ok: {rep.summary()} ({rep.exact_order} in exactly its order, the rest differing only among tied distances)",
        highlight=False,
    )


def query(
    bundle: Path = typer.Argument(..., help="Bundle (.tflite).", show_default=False),
    text: list[str] | None = typer.Option(None, "--text", help="Query text (repeatable)."),
    image: list[Path] | None = typer.Option(None, "--image", help="Query image file (repeatable)."),
    vector_file: Path | None = typer.Option(
        None,
        "--vector-file",
        help="Query vectors (.npy, one per row, as the embedder outputs them); scannlite runtime.",
    ),
    k: int = typer.Option(10, "-k", help="Results per query."),
    runtime: str | None = typer.Option(
        None,
        "--runtime",
        help="scannlite (libscannlite here, the embedder in a device process) or task-library; "
        "default scannlite where libscannlite is built.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """What a phone returns for a text, an image or a vector, through libscannlite or the Task Library.

    Example: scannlite bundle query photos.tflite --text "a red apple" -k 5

    Example: scannlite bundle query photos.tflite --image apple.jpg --runtime task-library
    """
    if not text and not image and vector_file is None:
        raise InvalidInput("give --text, --image or --vector-file")
    if runtime is None:
        runtime, note = default_query_runtime()
        if note:
            err_console.print(note, highlight=False)
    vectors = None
    if vector_file is not None:
        if not vector_file.is_file():
            raise InvalidInput(f"cannot read {vector_file}: no such file")
        try:
            vectors = np.load(vector_file, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise InvalidInput(f"cannot read {vector_file}: not a valid .npy file") from None
    results = bundles.query(bundle, device=DEVICE, texts=text, images=image, vectors=vectors, k=k, runtime=runtime)
    rows = [[{"metadata": m.decode("utf-8", "replace"), "distance": d} for m, d in row] for row in results]
    if as_json:
        print_json(rows)
        return
    labels = text or [str(p) for p in image or []] or [f"vector {i}" for i in range(len(rows))]
    for label, row in zip(labels, rows):
        console.print(f"{label}:", highlight=False)
        for rank, hit in enumerate(row, 1):
            console.print(f"  {rank:2d}. {hit['distance']:+.6f}  {hit['metadata']}", highlight=False)


def patch(
    old: Path = typer.Argument(..., metavar="OLD", help="The bundle the patch starts from.", show_default=False),
    patch_file: Path = typer.Argument(
        ..., metavar="PATCH", help="A .patch file from export --delta-from.", show_default=False
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the patched bundle."),
):
    """Apply a patch from `export --delta-from`: OLD + PATCH -> the new bundle, hash-checked, written atomically.

    Example: scannlite bundle patch photos.tflite photos-2.from-3f2a9c81d0e4.patch -o photos-2.tflite
    """
    m = delta.apply_file(old, patch_file, out)
    r = m["result"]
    snaps = f"snapshot {m['base'].get('snapshot')} -> {r.get('snapshot')}, " if r.get("snapshot") is not None else ""
    console.print(
        f"wrote {out} ({r['bytes']:,} bytes): {snaps}BLAKE3 {r['blake3'][:12]}... as the patch "
        f"manifest says (the bundle of sha256 {r['sha256'][:12]}...)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("export")(handle_errors(export))
    for fn in (info, verify, query, patch):
        bundle_app.command(fn.__name__)(handle_errors(fn))
    app.add_typer(bundle_app, name="bundle")
