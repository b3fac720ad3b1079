"""Tiny TFLite models written directly as flatbuffers (no TensorFlow), for export tests.

Each returns model bytes; ``with_image_metadata`` runs in a device process (the metadata
writers import a tflite-support native module).
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from scannlite.store.bundle.ondevice.tflite_modules import schemas

fb = schemas()[0]


def _buffer(data=None):
    buf = fb.BufferT()
    if data is not None:
        buf.data = np.frombuffer(data, np.uint8)
    return buf


def _tensor(name, shape, dtype, buf):
    t = fb.TensorT()
    t.name, t.shape, t.type, t.buffer = name, shape, dtype, buf
    return t


def _opcode(op, custom=None):
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = op
    if custom:
        code.customCode = custom
    return code


def _operator(i, inputs, outputs, options_type=0, options=None):
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = i, inputs, outputs
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _finish(graph, opcodes, buffers) -> bytes:
    model = fb.ModelT()
    model.version = 3
    model.operatorCodes, model.subgraphs, model.buffers = opcodes, [graph], buffers
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def image_model(
    weights: np.ndarray, height: int, width: int, input_dtype: str = "uint8", output_dtype: str = "float32"
) -> bytes:
    """[1,H,W,3] (uint8 or float32) -> flatten -> dense -> [1, D]; no metadata."""
    weights = np.ascontiguousarray(weights, "<f4")
    dim, flat = weights.shape
    in_type = fb.TensorType.UINT8 if input_dtype == "uint8" else fb.TensorType.FLOAT32
    reshape = fb.ReshapeOptionsT()
    reshape.newShape = [1, flat]
    graph = fb.SubGraphT()
    tensors = [
        _tensor("image", [1, height, width, 3], in_type, 0),
        _tensor("pixels", [1, height, width, 3], fb.TensorType.FLOAT32, 0),
        _tensor("flat_shape", [2], fb.TensorType.INT32, 2),
        _tensor("flat", [1, flat], fb.TensorType.FLOAT32, 0),
        _tensor("weights", [dim, flat], fb.TensorType.FLOAT32, 1),
        _tensor("embedding", [1, dim], fb.TensorType.FLOAT32, 0),
    ]
    ops = [
        _operator(0, [0], [1]),
        _operator(1, [1, 2], [3], fb.BuiltinOptions.ReshapeOptions, reshape),
        _operator(2, [3, 4, -1], [5], fb.BuiltinOptions.FullyConnectedOptions, fb.FullyConnectedOptionsT()),
    ]
    codes = [
        _opcode(fb.BuiltinOperator.CAST),
        _opcode(fb.BuiltinOperator.RESHAPE),
        _opcode(fb.BuiltinOperator.FULLY_CONNECTED),
    ]
    outputs = [5]
    if output_dtype == "int32":
        tensors.append(_tensor("embedding_int", [1, dim], fb.TensorType.INT32, 0))
        ops.append(_operator(0, [5], [6]))
        outputs = [6]
    graph.tensors, graph.operators = tensors, ops
    graph.inputs, graph.outputs = [0], outputs
    return _finish(graph, codes, [_buffer(), _buffer(weights.tobytes()), _buffer(np.array([1, flat], "<i4").tobytes())])


def text_model_with_inputs(count: int, dim: int = 16, dtype: str = "int32", flex: bool = False) -> bytes:
    """``count`` token inputs [1, 4] summed into [1, dim]; optionally a Flex custom op."""
    t = fb.TensorType.INT32 if dtype == "int32" else fb.TensorType.STRING
    graph = fb.SubGraphT()
    tensors = [_tensor(f"in{i}", [1, 4], t, 0) for i in range(count)]
    tensors.append(_tensor("embedding", [1, dim], fb.TensorType.FLOAT32, 0))
    graph.tensors = tensors
    graph.inputs, graph.outputs = list(range(count)), [count]
    code = (
        _opcode(fb.BuiltinOperator.CUSTOM, "FlexStringToHashBucketFast")
        if flex
        else _opcode(fb.BuiltinOperator.CUSTOM, "ScannliteTestOp")
    )
    graph.operators = [_operator(0, list(range(count)), [count])]
    return _finish(graph, [code], [_buffer()])


def with_image_metadata(model: bytes, mean: float = 127.5, std: float = 127.5) -> bytes:
    """Add ImageEmbedder metadata: NormalizationOptions and RGB (device process)."""
    from scannlite.store.bundle.ondevice import tflite_modules

    metadata_info, _ = tflite_modules.metadata_writers()
    meta_fb = tflite_modules.schemas()[1]
    inputs = [
        metadata_info.InputImageTensorMd(
            name="image",
            norm_mean=[mean],
            norm_std=[std],
            color_space_type=meta_fb.ColorSpaceType.RGB,
            tensor_type=fb.TensorType.FLOAT32,
        )
    ]
    outputs = [metadata_info.TensorMd(name="embedding")]
    return tflite_modules.populate(
        model,
        general=metadata_info.GeneralMd(name="test image embedder"),
        inputs=[m.create_metadata() for m in inputs],
        outputs=[m.create_metadata() for m in outputs],
    )


def bert_text_model(table: np.ndarray, seq_len: int = 16) -> bytes:
    """A BERT-route text tower: int32 ``ids``, ``mask``, ``segment_ids`` [1, L] -> the mean of
    ``table``'s rows for the ids (padding included) -> [1, D]; no metadata (add a BertTokenizer
    unit with ``plugin.dual_encoder.tflite_metadata.bert_text_metadata``)."""
    table = np.ascontiguousarray(table, "<f4")
    vocab, dim = table.shape
    gather = fb.GatherOptionsT()
    gather.axis = 0
    mean = fb.ReducerOptionsT()
    mean.keepDims = False
    graph = fb.SubGraphT()
    graph.tensors = [
        _tensor("ids", [1, seq_len], fb.TensorType.INT32, 0),
        _tensor("mask", [1, seq_len], fb.TensorType.INT32, 0),
        _tensor("segment_ids", [1, seq_len], fb.TensorType.INT32, 0),
        _tensor("table", [vocab, dim], fb.TensorType.FLOAT32, 1),
        _tensor("rows", [1, seq_len, dim], fb.TensorType.FLOAT32, 0),
        _tensor("axis", [1], fb.TensorType.INT32, 2),
        _tensor("embedding", [1, dim], fb.TensorType.FLOAT32, 0),
    ]
    graph.operators = [
        _operator(0, [3, 0], [4], fb.BuiltinOptions.GatherOptions, gather),
        _operator(1, [4, 5], [6], fb.BuiltinOptions.ReducerOptions, mean),
    ]
    graph.inputs, graph.outputs = [0, 1, 2], [6]
    codes = [_opcode(fb.BuiltinOperator.GATHER), _opcode(fb.BuiltinOperator.MEAN)]
    return _finish(graph, codes, [_buffer(), _buffer(table.tobytes()), _buffer(np.array([1], "<i4").tobytes())])


def write_bert_text_tower(path: str, vocab_path: str, words: list[str], dim: int, seed: int) -> None:
    """``bert_text_model`` over a WordPiece vocabulary of ``words`` (plus BERT's special tokens and
    single letters), with its BertTokenizer metadata; run in a TensorFlow worker (the metadata
    writers import TensorFlow)."""
    from pathlib import Path

    from scannlite.plugin.dual_encoder.tflite_metadata import bert_text_metadata

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *letters, *(f"##{c}" for c in letters)]
    Path(vocab_path).write_text("\n".join(vocab) + "\n")
    table = np.random.default_rng(seed).standard_normal((len(vocab), dim)).astype(np.float32)
    Path(path).write_bytes(bert_text_metadata(bert_text_model(table), dim, Path(vocab_path)))
