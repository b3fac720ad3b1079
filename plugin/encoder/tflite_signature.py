"""Reading a ``.tflite`` file's input/output signature without any native module.

Why: "an embedder with the wrong input signature" must be one clear line, said before a
device process is started, in the CLI process (which may not load tflite-support's natives).
The TFLite flatbuffer schema's generated Python code (``schema_py_generated``, plain
flatbuffers) is enough to list tensors. What the Task Library accepts (docs/ondevice-format.md
3.2): text = one int32 [1, L] input (regex tokenizer metadata) or three int32 [1, L] BERT
inputs, or one string input; image = one [1, H, W, 3] uint8 or float32 input; one output
[1, N] or [1, 1, 1, N] for both.
"""
from __future__ import annotations

from pathlib import Path

from .errors import EncoderError

_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16", 9: "int8"}
MAX_MODEL_BYTES = 2 * 1024**3


def describe(path: str | Path) -> dict:
    """``{"inputs": [(name, dtype, shape)], "outputs": [...]}`` of subgraph 0."""
    from tensorflow_lite_support.metadata import schema_py_generated as schema

    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"embedder model not found: {path}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise EncoderError(f"{path} is larger than 2 GiB: not a TFLite model")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise EncoderError(f"{path} is not a TFLite model (no TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        graph = model.Subgraphs(0)

        def tensor(i):
            t = graph.Tensors(i)
            shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
            return (t.Name().decode("utf-8", "replace"), _TYPES.get(t.Type(), f"type{t.Type()}"), shape)

        inputs = [tensor(graph.Inputs(i)) for i in range(graph.InputsLength())]
        outputs = [tensor(graph.Outputs(i)) for i in range(graph.OutputsLength())]
    except Exception as exc:  # a damaged flatbuffer raises anything from struct to IndexError
        raise EncoderError(f"{path} is not a readable TFLite model ({type(exc).__name__})") from None
    return {"inputs": inputs, "outputs": outputs}


def _fmt(tensors) -> str:
    return ", ".join(f"{dtype} {shape}" for _, dtype, shape in tensors) or "none"


def _check_output(path: Path, sig: dict) -> None:
    outs = sig["outputs"]
    if not outs or outs[0][1] not in ("float32", "uint8") or len(outs[0][2]) not in (2, 4):
        raise EncoderError(f"{path.name} is not an embedder: its first output is {_fmt(outs[:1])}, "
                           "expected float32 or uint8 [1, N]")


def check_text_embedder(path: str | Path) -> dict:
    path = Path(path)
    sig = describe(path)
    ins = sig["inputs"]
    ok = (len(ins) == 1 and (ins[0][1] == "string" or (ins[0][1] == "int32" and len(ins[0][2]) == 2))) or \
         (len(ins) == 3 and all(t[1] == "int32" and len(t[2]) == 2 for t in ins))
    if not ok:
        hint = " (an image model?)" if len(ins) == 1 and len(ins[0][2]) == 4 else ""
        raise EncoderError(f"{path.name} is not a text embedder the Task Library can run: its inputs are "
                           f"{_fmt(ins)}{hint}; expected one int32 [1, L] input (regex tokenizer) "
                           "or three int32 [1, L] BERT inputs")
    _check_output(path, sig)
    return sig


def check_image_embedder(path: str | Path) -> dict:
    path = Path(path)
    sig = describe(path)
    ins = sig["inputs"]
    ok = len(ins) == 1 and ins[0][1] in ("uint8", "float32") and len(ins[0][2]) == 4 and ins[0][2][-1] == 3
    if not ok:
        hint = " (a text model?)" if ins and all(t[1] in ("int32", "string") for t in ins) else ""
        raise EncoderError(f"{path.name} is not an image embedder the Task Library can run: its inputs are "
                           f"{_fmt(ins)}{hint}; expected one uint8 or float32 [1, H, W, 3] input")
    _check_output(path, sig)
    return sig
