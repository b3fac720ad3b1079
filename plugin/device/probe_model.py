"""The probe embedder: a TFLite text model that makes the Task Library search any vector.

tflite-support's Python Task Library searches by text or by image only; it has no "search this
vector" call. The probe is a text embedder whose vocabulary is ``<PAD> 0``, ``<UNKNOWN> 1``,
``q0 2``, ``q1 3``, ...; token ``qI`` looks up row I+2 of an embedding table holding vector I
(the rows of <PAD> and <UNKNOWN> are zero), and the output is the sum over the input positions.
``TextSearcher.search("q17")`` therefore searches exactly vector 17: every other row it adds
is zero, and x + 0.0 is x in IEEE arithmetic.

The flatbuffer is written directly with the schema module tflite-support ships
(``schema_py_generated``, pure python), so no TensorFlow is needed anywhere: a device process
blocks it, and machines without it can still verify bundles. Two builtin ops, at version 1,
as in Google's own regex embedder fixture: GATHER(table, ids) -> [1, L, D], then SUM over
axis 1 with keep_dims false -> [1, D].

:func:`probe_flatbuffer` and :func:`probe_vocabulary` are pure python; :func:`make_probe_model`
adds the tokenizer metadata with tflite-support's metadata writer, whose populator imports a
native module, so it must run in a device process.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import flatbuffers
import numpy as np

from scannlite.plugin.device import tflite_zip

#: Tokens per query. "q17" is one token; a few more slots let a caller sum several probes
#: ("q1 q2") without the model growing: L only sizes a [1, L, D] intermediate.
DEFAULT_SEQ_LEN = 4

#: RegexTokenizer delimiter used by Google's text embedders: anything but word characters and
#: apostrophes splits, so "q17" survives as one token. The tokenizer does not lowercase.
DELIM_REGEX = r"[^\w\']+"

VOCAB_FILE = "vocab.txt"

#: Rows before the first probe: <PAD> and <UNKNOWN>, both mapped to zero vectors.
RESERVED_ROWS = 2

_INPUT_NAME = "probe_token_ids"
_OUTPUT_NAME = "probe_embedding"


def probe_token(i: int) -> str:
    """The query text that makes the probe model output vector ``i``."""
    return f"q{i}"


def probe_vocabulary(count: int) -> str:
    """RegexTokenizer vocabulary ("token index" lines) for ``count`` probe vectors."""
    lines = ["<PAD> 0", "<UNKNOWN> 1"]
    lines += [f"{probe_token(i)} {i + RESERVED_ROWS}" for i in range(count)]
    return "\n".join(lines) + "\n"


def _checked_vectors(vectors: np.ndarray) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"probe vectors must be a non-empty 2-D array (n, dim); got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"probe vectors must be numeric; got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype="<f4")
    if not np.isfinite(out).all():
        raise ValueError("probe vectors contain NaN or infinity (after conversion to float32)")
    return out


def probe_flatbuffer(vectors: np.ndarray, seq_len: int = DEFAULT_SEQ_LEN) -> bytes:
    """The probe model's TFLite flatbuffer, without metadata (pure python, no TensorFlow).

    ``vectors`` (n, dim) is stored as float32; the model maps token id I+2 to ``vectors[I]``.
    """
    from scannlite.store.bundle.ondevice.tflite_modules import schemas

    fb = schemas()[0]
    table = _checked_vectors(vectors)
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer; got {seq_len!r}")
    n, dim = table.shape
    table = np.concatenate([np.zeros((RESERVED_ROWS, dim), "<f4"), table])

    def buffer(data: bytes | None) -> Any:
        buf = fb.BufferT()
        if data is not None:
            buf.data = np.frombuffer(data, dtype=np.uint8)
        return buf

    def tensor(name: str, shape: list[int], dtype: int, buffer_index: int) -> Any:
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, dtype, buffer_index
        return t

    def opcode(builtin: int) -> Any:
        code = fb.OperatorCodeT()
        # Builtins below 127 are recorded in both fields; older runtimes read the deprecated one.
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        return code

    # Buffer 0 is the schema's empty sentinel; tensors without constant data point at it.
    buffers = [buffer(None), buffer(table.tobytes()), buffer(np.array([1], "<i4").tobytes())]
    tensors = [
        tensor(_INPUT_NAME, [1, int(seq_len)], fb.TensorType.INT32, 0),
        tensor("probe_table", [n + RESERVED_ROWS, dim], fb.TensorType.FLOAT32, 1),
        tensor("probe_sum_axis", [1], fb.TensorType.INT32, 2),
        tensor("probe_rows", [1, int(seq_len), dim], fb.TensorType.FLOAT32, 0),
        tensor(_OUTPUT_NAME, [1, dim], fb.TensorType.FLOAT32, 0),
    ]

    gather = fb.OperatorT()
    gather.opcodeIndex, gather.inputs, gather.outputs = 0, [1, 0], [3]
    gather.builtinOptionsType = fb.BuiltinOptions.GatherOptions
    gather.builtinOptions = fb.GatherOptionsT()  # axis 0 of the table, batch_dims 0
    reduce_sum = fb.OperatorT()
    reduce_sum.opcodeIndex, reduce_sum.inputs, reduce_sum.outputs = 1, [3, 2], [4]
    reduce_sum.builtinOptionsType = fb.BuiltinOptions.ReducerOptions
    reduce_sum.builtinOptions = fb.ReducerOptionsT()
    reduce_sum.builtinOptions.keepDims = False

    graph = fb.SubGraphT()
    graph.name = "probe"
    graph.tensors, graph.inputs, graph.outputs = tensors, [0], [4]
    graph.operators = [gather, reduce_sum]

    model = fb.ModelT()
    model.version = 3  # the TFLite schema version every current runtime reads
    model.description = "scannlite probe embedder: token qI -> vector I"
    model.operatorCodes = [opcode(fb.BuiltinOperator.GATHER), opcode(fb.BuiltinOperator.SUM)]
    model.subgraphs, model.buffers = [graph], buffers

    builder = flatbuffers.Builder(table.nbytes + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def make_probe_model(vectors: np.ndarray, seq_len: int = DEFAULT_SEQ_LEN) -> bytes:
    """Probe embedder with RegexTokenizer metadata and its vocabulary packed (device process).

    TextEmbedder on ``probe_token(i)`` returns ``vectors[i]`` as float32, exactly. The packed
    zip is written with fixed timestamps, so the same vectors give the same bytes.
    """
    from scannlite.store.bundle.ondevice import tflite_modules

    metadata_info, _ = tflite_modules.metadata_writers()

    model = probe_flatbuffer(vectors, seq_len)
    count = int(np.shape(vectors)[0])
    with tempfile.TemporaryDirectory(prefix="scannlite-probe-") as tmp:
        # The metadata writer takes the vocabulary as a path; only its basename is recorded.
        vocab = os.path.join(tmp, VOCAB_FILE)
        with open(vocab, "w", encoding="utf-8") as f:
            f.write(probe_vocabulary(count))
        inputs = [
            metadata_info.InputTextTensorMd(
                name=_INPUT_NAME,
                description="Probe token ids: 'qI' selects vector I.",
                tokenizer_md=metadata_info.RegexTokenizerMd(DELIM_REGEX, vocab),
            )
        ]
        outputs = [metadata_info.TensorMd(name=_OUTPUT_NAME, description="Probe vector.")]
        general = metadata_info.GeneralMd(
            name="scannlite probe embedder",
            description="Token qI embeds to probe vector I, so a text searcher can search any vector.",
        )
        populated = tflite_modules.populate(
            model,
            general=general,
            inputs=[m.create_metadata() for m in inputs],
            outputs=[m.create_metadata() for m in outputs],
            associated_files=[vocab],
        )
    return tflite_zip.normalize(populated)
