"""The embedder acceptance policy: which TFLite models scannlite uses, and how.

Every place that takes an embedder asks here, in whatever process it runs: ``add --texts`` /
``add --images`` (the tflite embedder types), ``configure``, ``export``, ``bundle verify`` /
``query``, the Datasette search page, and the device runtime (which searcher to open, which
output holds the embedding, where the index hangs). Facts come from the model reader,
:func:`scannlite.store.bundle.ondevice.bundle_file.describe_model`; the rules are here only.

tflite-support 0.4.4 never compares the embedder's output size with the index (a wrong size
gives empty or silently wrong results) and crashes or misbehaves on models its searchers
cannot run. Every rule here turns one of those into a clear refusal before anything is
published. Facts from docs/ondevice-format.md section 3.2 and docs/stack.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.model_facts import describe_model
from scannlite.store.errors import ScannliteError

MAX_MODEL_BYTES = 2 * 1024**3  # the flatbuffer format's limit; a larger file is not a model


class EmbedderRefused(ScannliteError):
    pass


@dataclass
class EmbedderFacts:
    kind: str  # "text" or "image"
    route: str  # "regex", "bert", "sentencepiece", "string", "use-qa", "image-uint8", "image-float32"
    output_index: int
    output_dim: int
    output_dtype: str
    description: dict


def _output_width(shape: list[int]) -> int | None:
    if len(shape) == 2 and shape[0] == 1:
        return shape[1]
    if len(shape) == 4 and shape[:3] == [1, 1, 1]:
        return shape[3]
    return None


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _signature(tensors: list[dict]) -> str:
    return ", ".join(f"{t.get('dtype')} {t.get('shape')}" for t in tensors) or "none"


def inspect_embedder(model: bytes, name: str = "the embedder", kind: str | None = None) -> EmbedderFacts:
    """What the Task Library would do with ``model``, or :class:`EmbedderRefused` saying why it
    cannot be used. ``kind`` ("text" or "image") also refuses an embedder of the other kind."""
    facts = _judge(model, name)
    if kind is not None and facts.kind != kind:
        raise EmbedderRefused(
            f"{name} is not {_a(kind)} embedder: it is {_a(facts.kind)} model "
            f"(inputs {_signature(facts.description['inputs'])})"
        )
    return facts


def read_embedder(path: str | Path, kind: str | None = None) -> tuple[bytes, EmbedderFacts]:
    """:func:`inspect_embedder` for a file: its bytes and facts, named by its file name."""
    path = Path(path)
    if not path.is_file():
        raise EmbedderRefused(f"embedder model not found: {path}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise EmbedderRefused(f"{path.name} is larger than 2 GiB: not a TFLite model")
    data = path.read_bytes()
    return data, inspect_embedder(data, path.name, kind)


def _judge(model: bytes, name: str) -> EmbedderFacts:
    try:
        desc = describe_model(model)
    except IndexFormatError as exc:
        raise EmbedderRefused(f"{name} is not a usable TFLite model: {exc}") from None
    inputs, outputs = desc["inputs"], desc["outputs"]
    if desc.get("flex_ops"):
        raise EmbedderRefused(
            f"{name} needs TensorFlow Flex ops ({', '.join(desc['flex_ops'][:3])}), which no "
            "phone runtime or Task Library build here ships"
        )
    sub_units = desc.get("subgraph_process_units", {}).get("input", [])
    first = inputs[0] if inputs else {}
    shape = first.get("shape", [])
    if len(inputs) == 1 and len(shape) == 4 and shape[0] == 1 and shape[3] == 3:
        kind, out_index = "image", 0
        dtype = first["dtype"]
        if dtype not in ("uint8", "float32"):
            raise EmbedderRefused(f"{name}: image input must be uint8 or float32, not {dtype}")
        if dtype == "float32" and not first.get("normalization"):
            raise EmbedderRefused(
                f"{name}: a float32 image input needs NormalizationOptions metadata (mean/std), "
                "without which ImageSearcher refuses it"
            )
        cs = first.get("color_space")
        if cs not in (None, "RGB"):
            raise EmbedderRefused(f"{name}: image input color space is {cs}; the Task Library accepts only RGB")
        route = f"image-{dtype}"
    elif len(inputs) == 1:
        kind, out_index = "text", 0
        dtype = first.get("dtype")
        if dtype == "string":
            route = "string"
        elif dtype == "int32" and first.get("tokenizer") == "regex":
            route = "regex"
        elif dtype == "int32":
            raise EmbedderRefused(
                f"{name}: its int32 text input has no RegexTokenizer metadata, so TextSearcher "
                "cannot turn text into token ids"
            )
        else:
            raise EmbedderRefused(f"{name}: a one-input text model must take a string or int32 tensor, not {dtype}")
        if len(outputs) != 1:
            raise EmbedderRefused(f"{name} has {len(outputs)} outputs; TextSearcher needs exactly 1 for this input")
    elif len(inputs) == 3:
        kind = "text"
        tokenizers = {u for u in sub_units if u in ("BertTokenizerOptions", "SentencePieceTokenizerOptions")}
        if tokenizers:
            route = "bert" if "BertTokenizerOptions" in tokenizers else "sentencepiece"
            if any(i.get("dtype") != "int32" for i in inputs):
                raise EmbedderRefused(f"{name}: BERT-style inputs (ids, mask, segment_ids) must be int32")
            if len(outputs) != 1:
                raise EmbedderRefused(
                    f"{name} has {len(outputs)} outputs; TextSearcher needs exactly 1 for BERT models"
                )
            out_index = 0
        elif all(i.get("dtype") == "string" for i in inputs) and len(outputs) == 2:
            route, out_index = "use-qa", 1
        else:
            raise EmbedderRefused(
                f"{name} has 3 inputs but neither BERT/SentencePiece tokenizer metadata nor the "
                "Universal Sentence Encoder QA signature"
            )
    else:
        raise EmbedderRefused(
            f"{name} has {len(inputs)} inputs; TextSearcher expects 1 or 3 and ImageSearcher "
            "1 image tensor [1, H, W, 3]"
        )
    if out_index >= len(outputs):
        raise EmbedderRefused(f"{name} has no output {out_index}")
    out = outputs[out_index]
    width = _output_width(out.get("shape", []))
    if width is None:
        raise EmbedderRefused(f"{name}: output shape {out.get('shape')} is not [1, N] or [1, 1, 1, N]")
    if out.get("dtype") not in ("float32", "uint8"):
        raise EmbedderRefused(f"{name}: output dtype {out.get('dtype')} is not float32 or uint8")
    return EmbedderFacts(kind, route, out_index, width, out["dtype"], desc)


def check_against_index(facts: EmbedderFacts, dim: int, name: str = "the embedder") -> None:
    if facts.output_dim != dim:
        raise EmbedderRefused(
            f"{name} outputs {facts.output_dim} values but the index holds {dim}-d vectors; "
            "the Task Library would not notice and return wrong or empty results"
        )
