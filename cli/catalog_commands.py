"""Catalog commands: init, add, delete, build, search, info, snapshots, diff, check, compact, gc, queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from scannlite.cli.common import RichProgress, console, handle_errors, print_json
from scannlite.plugin.facade.database import Database
from scannlite.store.catalog import maintenance
from scannlite.store.catalog.catalog import DEFAULT_METADATA_LIMIT, Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.index import snapshot
from scannlite.store.index.build import build as build_snapshot
from scannlite.store.index.config import IndexConfig

CatalogArg = typer.Argument(..., help="Catalog directory.", show_default=False)


def _open(path: Path) -> Catalog:
    return Catalog.open(path)


def init(
    catalog: Path = CatalogArg,
    dim: int = typer.Option(..., "--dim", help="Vector dimension, fixed for the catalog's life."),
    distance: str = typer.Option("dot", help="dot (dot product; scores are negative dot products) or l2 (squared L2)."),
    normalize: bool | None = typer.Option(
        None,
        "--normalize/--no-normalize",
        help="L2-normalise vectors on insert (and queries on search). Default: on for dot, off for l2.",
    ),
    metadata_type: str = typer.Option("text", "--metadata-type", help="text (UTF-8, checked) or bytes."),
    metadata_limit: int = typer.Option(DEFAULT_METADATA_LIMIT, help="Largest metadata value in bytes."),
    num_leaves: int | None = typer.Option(
        None, help="k-means leaves (default: about 2 sqrt(N); 1 for small catalogs)."
    ),
    leaves_to_search: int | None = typer.Option(
        None,
        help="Leaves each query visits (default: the fewest that reach the recall target, --target-recall at build).",
    ),
    dims_per_block: int = typer.Option(1, help="Dimensions per asymmetric-hashing block (1 byte each)."),
    lookup: str = typer.Option("FLOAT", help="Device lookup table type: FLOAT, INT16 or INT8."),
):
    """Create an empty catalog.

    Example: scannlite init photos.catalog --dim 128 --distance dot
    """
    cfg = IndexConfig(
        num_leaves=num_leaves,
        leaves_to_search=leaves_to_search,
        dims_per_block=dims_per_block,
        lookup_type=lookup.upper(),
    )
    cat = Catalog.create(catalog, dim, distance, normalize, metadata_type, metadata_limit, cfg)
    console.print(
        f"created catalog {catalog}: dim {cat.dim}, distance {cat.distance}, "
        f"normalise {'on' if cat.normalize else 'off'}, {cat.metadata_type} metadata",
        highlight=False,
    )


def add(
    catalog: Path = CatalogArg,
    file: Path | None = typer.Argument(
        None,
        help="Parquet file or directory of them, .npy (with --ids) or JSONL file "
        "of vectors, read in chunks (memory stays flat whatever its size).",
        show_default=False,
    ),
    ids: Path | None = typer.Option(
        None, "--ids", help='For .npy input: JSONL with one {"id": ..., "metadata": ...} per row.'
    ),
    id_column: str = typer.Option("id", help="Column (or JSON field) holding ids."),
    embedding_column: str = typer.Option("embedding", help="Column (or JSON field) holding vectors."),
    metadata_column: str = typer.Option("metadata", help="Column (or JSON field) holding metadata, if present."),
    images: str | None = typer.Option(None, "--images", help="Folder or glob of images to embed with --embedder."),
    texts: Path | None = typer.Option(
        None, "--texts", help="Texts to embed with --embedder: one per line, or JSONL with id/text/metadata."
    ),
    embedder: str | None = typer.Option(
        None,
        "--embedder",
        help="A model file (.tflite: run by the Task Library), or an "
        "embedder from `scannlite embedders` as NAME or NAME:PATH.",
    ),
    metadata_file: Path | None = typer.Option(
        None, "--metadata-file", help="For --images: JSONL or CSV of id/path -> metadata."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="For --images/--texts: embed with N workers "
        "in parallel (default: the machine's cores); the result is the same.",
    ),
):
    """Add or update items (upsert by id) from a vector file, or embed images or texts.

    Unchanged items (same vector and metadata, or same image file) are skipped. Images and
    texts are embedded by N warm workers at once, with a progress bar showing items per second.

    Example: scannlite add photos.catalog vectors.parquet
    Example: scannlite add photos.catalog embeddings/   (a directory of Parquet shards, one commit)
    Example: scannlite add photos.catalog --images photos/ --embedder image_embedder.tflite
    """
    sources = [x for x in (file, images, texts) if x is not None]
    if len(sources) != 1:
        raise InvalidInput("give exactly one of FILE, --images or --texts")
    cat = _open(catalog)
    if file is not None:
        with RichProgress().task(f"reading {file}"):
            r = cat.add_file(
                file,
                ids_path=ids,
                id_column=id_column,
                embedding_column=embedding_column,
                metadata_column=metadata_column,
            )
        if r.seq is None:
            console.print(f"nothing to add: all {r.unchanged} items are unchanged", highlight=False)
        else:
            console.print(
                f"added {r.added}, updated {r.updated}, unchanged {r.unchanged} (commit {r.seq}); "
                "run `scannlite build` to publish a snapshot",
                highlight=False,
            )
        return
    if embedder is None:
        raise InvalidInput(
            "--images and --texts need --embedder (MODEL.tflite, or NAME[:PATH] from `scannlite embedders`)"
        )
    from scannlite.plugin.ingest import add as ingest

    if images is not None:
        rep = ingest.add_images(cat, images, embedder, metadata_file, progress=RichProgress(), workers=workers)
    else:
        assert texts is not None  # exactly one of FILE, --images and --texts (checked above)
        rep = ingest.add_texts(cat, texts, embedder, progress=RichProgress(), workers=workers)
    console.print(rep.line() + "; run `scannlite build` to publish a snapshot", highlight=False)
    for name, why in rep.skipped[:20]:
        console.print(f"  skipped {name}: {why}", highlight=False)
    if len(rep.skipped) > 20:
        console.print(f"  ... and {len(rep.skipped) - 20} more", highlight=False)


def delete(
    catalog: Path = CatalogArg,
    ids: list[str] | None = typer.Argument(None, help="Ids to delete.", show_default=False),
    ids_from: Path | None = typer.Option(None, "--ids-from", help="Text file with one id per line."),
):
    """Delete items by id (tombstones; vectors are reclaimed by compact and gc).

    Example: scannlite delete photos.catalog img-17 img-42
    """
    wanted = list(ids or [])
    if ids_from is not None:
        if not ids_from.is_file():
            raise InvalidInput(f"cannot read {ids_from}: no such file")
        wanted += [ln.strip() for ln in ids_from.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not wanted:
        raise InvalidInput("give ids to delete, or --ids-from FILE")
    r = _open(catalog).delete(wanted)
    console.print(f"deleted {r.deleted} items (commit {r.seq})", highlight=False)


def build(
    catalog: Path = CatalogArg,
    full: bool = typer.Option(False, "--full", help="Retrain the partitions even if they are healthy."),
    num_leaves: int | None = typer.Option(None, help="Set the number of leaves (forces a retrain if it changes)."),
    leaves_to_search: int | None = typer.Option(
        None, help="Set the leaves each query visits (wins over any recall target)."
    ),
    target_recall: float | None = typer.Option(
        None,
        "--target-recall",
        help="Set the recall@10 to reach: leaves to search become the fewest that reach it "
        "by the build's estimate (default 0.90; replaces a fixed --leaves-to-search).",
    ),
    max_leaves_to_search: int | None = typer.Option(None, help="Set the most leaves a recall target may choose."),
    dims_per_block: int | None = typer.Option(None, help="Set dimensions per hashing block (forces a retrain)."),
    lookup: str | None = typer.Option(None, help="Set the device lookup type: FLOAT, INT16 or INT8."),
    train_on_queries: float | None = typer.Option(
        None,
        help="Set the share of the tree's training points drawn from the query sample (0 to 0.9; takes "
        "effect at the next retrain, e.g. with --full; docs/queries.md).",
    ),
    spherical: bool | None = typer.Option(
        None,
        "--spherical/--no-spherical",
        help="Train the tree with spherical k-means or plain k-means (default: spherical for dot-product "
        "catalogs; takes effect at the next retrain).",
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="Where a retrain places every vector: local (this "
        "machine's cores) or ray (Ray tasks; pip install 'scannlite[ray]').",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="With --engine ray: an existing Ray cluster whose "
        "nodes mount the catalog at the same path (default: a local Ray).",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="With --engine ray: tasks at once (default: the machine's cores)."
    ),
):
    """Publish a new snapshot: incremental unless the partitions' health calls for retraining.

    Each build estimates device recall@10 on the catalog's own vectors and searches the fewest
    leaves that reach the recall target. A retrain trains on a sample, then places every
    vector chunk by chunk, here or on Ray; the same snapshot either way.

    Example: scannlite build photos.catalog --target-recall 0.95
    Example: scannlite build big.catalog --full --engine ray --address ray://head:10001
    """
    from scannlite.plugin.ingest.ray_engine import placer_for  # pyarrow.compute and Ray's glue: only for builds

    placer = placer_for(engine, address, workers)
    cat = _open(catalog)
    changes = {
        "num_leaves": num_leaves,
        "leaves_to_search": leaves_to_search,
        "recall_target": target_recall,
        "max_leaves_to_search": max_leaves_to_search,
        "dims_per_block": dims_per_block,
        "lookup_type": lookup.upper() if lookup else None,
        "train_on_queries": train_on_queries,
        "spherical": spherical,
    }
    r = build_snapshot(
        cat,
        full=full,
        changes={k: v for k, v in changes.items() if v is not None},
        progress=RichProgress(),
        placer=placer,
    )
    for line in r.lines():
        console.print(line, highlight=False)


def search(
    catalog: Path = CatalogArg,
    vector_file: Path | None = typer.Option(None, "--vector-file", help=".npy query vectors, shape (D,) or (Q, D)."),
    text: list[str] | None = typer.Option(
        None,
        "--text",
        help="Query text, embedded by the catalog's text embedder (`scannlite configure --text-embedder`); repeatable.",
    ),
    image: list[Path] | None = typer.Option(
        None,
        "--image",
        help="Query image file, embedded by the catalog's image "
        "embedder (`scannlite configure --image-embedder`); repeatable.",
    ),
    k: int = typer.Option(10, "-k", help="Results per query."),
    leaves_to_search: int | None = typer.Option(None, help="Leaves to visit (default: the snapshot's setting)."),
    exact: bool = typer.Option(False, "--exact", help="Brute force over the snapshot's float vectors."),
    version: int | None = typer.Option(None, "--snapshot", help="Snapshot version (default: latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list with one list of results per query."),
):
    """Search a snapshot by vector, text or image and return what a phone would (or --exact brute force).

    Texts and images go through the catalog's configured embedders, so the results are what
    `scannlite bundle query` returns from the snapshot's exported bundle.

    Example: scannlite search photos.catalog --text "a dog on a beach" -k 5
    Example: scannlite search photos.catalog --vector-file query.npy --json
    """
    from scannlite.plugin.facade.search import search as search_catalog

    given = [name for name, v in (("--vector-file", vector_file), ("--text", text), ("--image", image)) if v]
    if len(given) != 1:
        raise InvalidInput(
            "give one of --vector-file, --text or --image"
            if not given
            else f"give one of --vector-file, --text or --image, not both {given[0]} and {given[1]}"
        )
    cat = _open(catalog)
    queries = None
    if vector_file is not None:
        if not vector_file.is_file():
            raise InvalidInput(f"cannot read {vector_file}: no such file")
        try:
            queries = np.load(vector_file, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise InvalidInput(f"cannot read {vector_file}: not a valid .npy file") from None
    results = search_catalog(
        cat,
        vectors=queries,
        texts=text or None,
        images=image or None,
        k=k,
        leaves_to_search=leaves_to_search,
        exact=exact,
        version=version,
    )
    if as_json:
        print_json(
            [[{**hit, "metadata": snapshot.jsonable_metadata(hit["metadata"])} for hit in row] for row in results]
        )
        return
    labels = text or [str(p) for p in image or []] or [f"query {qi}" for qi in range(len(results))]
    for label, row in zip(labels, results):
        table = Table(title=label, title_justify="left", show_edge=False)
        table.add_column("#", justify="right")
        table.add_column("id")
        table.add_column("distance", justify="right")
        table.add_column("metadata", overflow="ellipsis", max_width=60)
        for rank, hit in enumerate(row, 1):
            meta = snapshot.jsonable_metadata(hit["metadata"])
            table.add_row(str(rank), hit["id"], f"{hit['distance']:.6f}", "" if meta is None else str(meta))
        console.print(table)


def info(catalog: Path = CatalogArg, as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Show a catalog's settings, size and latest snapshot.

    Example: scannlite info photos.catalog --json
    """
    db = Database(_open(catalog))
    data = db.info()
    if as_json:
        print_json(data)
        return
    console.print(f"catalog {data['path']}", highlight=False)
    console.print(
        f"  dim {data['dim']}, distance {data['distance']}, normalise {'on' if data['normalize'] else 'off'}, "
        f"{data['metadata_type']} metadata (limit {data['metadata_limit']} bytes)",
        highlight=False,
    )
    console.print(
        f"  {data['count']} live items in {data['segments']} segments, commit {data['head_commit']}", highlight=False
    )
    latest = next((s for s in db.snapshots() if s["version"] == data["snapshot"]), None)
    if latest:
        model = data["model"]
        extra = (
            f", {model['kind']} index with {model['num_leaves']} leaves, {latest['leaves_to_search']} searched, "
            f"{latest['lookup_type']} lookup"
            if model
            else ""
        )
        console.print(f"  latest snapshot {latest['version']}: {latest['count']} items{extra}", highlight=False)
        for key, who in (("recall", "queries like your items"), ("query_recall", "your queries")):
            r = data.get(key)
            if not r:
                continue
            used = " (the target's)" if data.get("recall_on") == r.get("kind") else ""
            console.print(
                f"  estimated recall@{r['k']} for {who}{used}: {r['at_leaves_to_search']:.3f} at "
                f"{latest['leaves_to_search']} leaves, on {r['sample']} queries; by leaves: "
                + ", ".join(f"{n}: {v:.2f}" for n, v in zip(r["ladder"], r["recall"])),
                highlight=False,
            )
    else:
        console.print("  no snapshot yet: run `scannlite build`", highlight=False)
    qs = data["query_sample"]
    console.print(
        f"  query sample: {qs['size']} of at most {qs['capacity']} queries kept, {qs['seen']} offered"
        if qs["seen"]
        else "  query sample: none (add the queries users send with `scannlite queries CATALOG add FILE`)",
        highlight=False,
    )


def queries(
    catalog: Path = CatalogArg,
    action: str = typer.Argument(
        ...,
        help="add, list, clear, or record (on/off: the Datasette search page offers the queries it serves).",
        show_default=False,
    ),
    file: Path | None = typer.Argument(
        None, help="For add: query vectors, .npy (n, dim) or Parquet (--column).", show_default=False
    ),
    texts: Path | None = typer.Option(
        None,
        "--texts",
        help='For add: a file of query texts (one per line, or JSONL with "text"), embedded '
        "by the catalog's text embedder.",
    ),
    images: str | None = typer.Option(
        None, "--images", help="For add: a folder or glob of query images, embedded by the catalog's image embedder."
    ),
    column: str = typer.Option("embedding", "--column", help="For add from Parquet: the column of vectors."),
    limit: int | None = typer.Option(None, "--limit", min=0, help="For list: show at most this many queries."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """The queries users send: a bounded, reservoir-sampled sample builds state recall for.

    With a sample of at least 200 queries the recall target is met on them (docs/queries.md).

    Example: scannlite queries photos.catalog add --texts typed.txt
    Example: scannlite queries photos.catalog list
    """
    db = Database(_open(catalog))
    if action == "add":
        if file is None and texts is None and images is None:
            raise InvalidInput("queries add needs a FILE of vectors, --texts FILE or --images FOLDER")
        data = db.add_queries(file=file, texts=texts, images=images, column=column)
        line = (
            f"offered {data['offered']} queries, kept {data['kept']}: the sample holds {data['size']} of at most "
            f"{data['capacity']} ({data['seen']} offered in all)"
        )
    elif action == "list":
        data = db.queries(limit)
        if not as_json:
            console.print(
                f"{data['size']} of at most {data['capacity']} queries kept, {data['seen']} offered", highlight=False
            )
            for q in data["queries"]:
                console.print(f"  {q['slot']:>4}  {q['source']:<9} {q['text'] or ''}", highlight=False)
            return
        line = ""
    elif action == "clear":
        data = db.clear_queries()
        line = f"cleared the query sample ({data['cleared']} queries)"
    elif action == "record":
        if file is None or str(file) not in ("on", "off"):
            raise InvalidInput("queries record takes on or off")
        data = db.record_queries(str(file) == "on")
        line = (
            "the Datasette search page now records the queries it serves into the sample (texts included)"
            if data["recording"]
            else "the Datasette search page no longer records queries"
        )
    else:
        raise InvalidInput(f"unknown action {action!r}: use add, list, clear or record")
    if as_json:
        print_json(data)
    else:
        console.print(line, highlight=False)


def snapshots(catalog: Path = CatalogArg, as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """List snapshots, oldest first.

    Example: scannlite snapshots photos.catalog
    """
    snaps = Database(_open(catalog)).snapshots()
    if as_json:
        print_json(snaps)
        return
    table = Table(show_edge=False)
    for col in ("version", "items", "leaves searched", "lookup", "build", "created"):
        table.add_column(col)
    for s in snaps:
        how = "retrained" if s["retrained"] else f"incremental (+{s['encoded'] or 0})"
        table.add_row(
            str(s["version"]),
            str(s["count"]),
            str(s["leaves_to_search"] or "-"),
            s["lookup_type"] or "-",
            how,
            s["created_at"],
        )
    console.print(table)


def diff(
    catalog: Path = CatalogArg,
    v1: int = typer.Argument(..., help="Older snapshot version."),
    v2: int = typer.Argument(..., help="Newer snapshot version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Ids added, removed and changed between two snapshots.

    Example: scannlite diff photos.catalog 3 4
    """
    d = Database(_open(catalog)).diff(v1, v2)
    if as_json:
        print_json(d)
        return
    console.print(
        f"snapshot {v1} -> {v2}: {len(d['added'])} added, {len(d['removed'])} removed, {len(d['changed'])} changed",
        highlight=False,
    )
    for label, sign in (("added", "+"), ("removed", "-"), ("changed", "~")):
        for ident in d[label][:50]:
            console.print(f"  {sign} {ident}", highlight=False)
        if len(d[label]) > 50:
            console.print(f"  ... {len(d[label]) - 50} more {label}", highlight=False)


def check(catalog: Path = CatalogArg):
    """Verify every file against its recorded checksum and every snapshot against its items.

    Example: scannlite check photos.catalog
    """
    rep = maintenance.check(_open(catalog), progress=RichProgress())
    for w in rep.warnings:
        console.print(f"warning: {w}", highlight=False)
    if not rep.ok:
        for p in rep.problems:
            console.print(f"problem: {p}", highlight=False)
        raise typer.Exit(1)
    c = rep.checked
    console.print(
        f"ok: {c['segments']} segments, {c['snapshots']} snapshots, {c['live_items']} live items", highlight=False
    )


def compact(catalog: Path = CatalogArg):
    """Rewrite segments without dead rows (replaced or deleted items no snapshot needs).

    Example: scannlite compact photos.catalog && scannlite gc photos.catalog
    """
    r = maintenance.compact(_open(catalog), progress=RichProgress())
    if r["seq"] is None:
        console.print("nothing to compact", highlight=False)
    else:
        console.print(
            f"dropped {r['dead_rows']} dead rows, rewrote {r['segments_rewritten']} segments "
            f"(commit {r['seq']}); run `scannlite gc` to delete the old files",
            highlight=False,
        )


def gc(
    catalog: Path = CatalogArg,
    keep: int | None = typer.Option(None, "--keep", help="Forget all but the newest N snapshots first."),
):
    """Delete files, models and codes no snapshot needs (and files a crash left behind).

    Example: scannlite gc photos.catalog --keep 3
    """
    r = maintenance.gc(_open(catalog), keep=keep)
    console.print(
        f"dropped {len(r['dropped_snapshots'])} snapshots and {len(r['dropped_models'])} models; "
        f"removed {r['files_removed']} files",
        highlight=False,
    )


COMMANDS = [init, add, delete, build, search, info, snapshots, diff, check, compact, gc, queries]


def register(app: typer.Typer) -> None:
    for fn in COMMANDS:
        app.command(fn.__name__)(handle_errors(fn))
