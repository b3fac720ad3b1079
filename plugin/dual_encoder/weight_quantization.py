"""Weight-only int8 quantisation of a converted ``.tflite`` model (TensorFlow process).

The rule: every large float32 weight matrix read by a FULLY_CONNECTED (its weights) or a GATHER
(its table) is stored as int8 with one symmetric scale per output row, followed by a DEQUANTIZE
op that gives the op its float matrix back; activations stay float32. Why not the converter's
dynamic-range mode: the Task Library's runtime (tflite-support 0.4.4) rejects per-channel hybrid
FULLY_CONNECTED, and the per-tensor hybrid ops it does run (int8 activations too) bent MiniLM's
sentence vectors far below the quality rule; weight-only int8 keeps the vectors close and the
file about 4x smaller (figures in docs/quality.md, rule in docs/embedders.md).
A DEQUANTIZE of a constant runs once, when the interpreter prepares the model.
"""

from __future__ import annotations

import numpy as np

MIN_ELEMENTS = 1024  # smaller tensors (biases, norms) stay float32: they cost nothing
_DEQUANTIZE_PER_CHANNEL_VERSION = 5  # op version of a per-channel int8 DEQUANTIZE (TFLite op versioning)


def quantize_weights_int8(model: bytes) -> bytes:
    """``model`` with its large FULLY_CONNECTED / GATHER weights stored as per-row int8."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    m = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    ops = fb.BuiltinOperator

    def code(op) -> int:
        c = m.operatorCodes[op.opcodeIndex]
        return max(c.builtinCode, c.deprecatedBuiltinCode)

    dequantize = next(
        (i for i, c in enumerate(m.operatorCodes) if max(c.builtinCode, c.deprecatedBuiltinCode) == ops.DEQUANTIZE),
        None,
    )
    shared = np.bincount([t.buffer for g in m.subgraphs for t in g.tensors], minlength=len(m.buffers))
    for graph in m.subgraphs:
        # constant tensor -> how it is read: (op code, input slot) of every reader
        readers: dict[int, list[tuple[int, int]]] = {}
        for op in graph.operators:
            for slot, t in enumerate(op.inputs if op.inputs is not None else []):
                if t >= 0:
                    readers.setdefault(int(t), []).append((code(op), slot))
        new_ops = []
        for t, uses in sorted(readers.items()):
            tensor = graph.tensors[t]
            buf = m.buffers[tensor.buffer] if tensor.buffer else None
            if (
                buf is None
                or buf.data is None
                or shared[tensor.buffer] != 1
                or tensor.type != fb.TensorType.FLOAT32
                or len(tensor.shape) != 2
            ):
                continue
            if not all((c, s) in ((ops.FULLY_CONNECTED, 1), (ops.GATHER, 0)) for c, s in uses):
                continue
            w = np.frombuffer(bytes(bytearray(buf.data)), dtype="<f4").reshape(tuple(tensor.shape))
            if w.size < MIN_ELEMENTS:
                continue
            peak = np.abs(w).max(axis=1)
            scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
            qbuf = fb.BufferT()
            qbuf.data = np.frombuffer(q.tobytes(), dtype=np.uint8)
            m.buffers.append(qbuf)
            qt = fb.TensorT()
            qt.shape = list(tensor.shape)
            qt.type = fb.TensorType.INT8
            qt.buffer = len(m.buffers) - 1
            qt.name = (tensor.name or b"") + b"/int8"
            qt.quantization = fb.QuantizationParametersT()
            qt.quantization.scale = scale.tolist()
            qt.quantization.zeroPoint = [0] * len(scale)
            qt.quantization.quantizedDimension = 0
            graph.tensors.append(qt)
            buf.data = None  # the float matrix is now computed by the DEQUANTIZE below
            if dequantize is None:
                oc = fb.OperatorCodeT()
                oc.builtinCode = oc.deprecatedBuiltinCode = ops.DEQUANTIZE
                oc.version = _DEQUANTIZE_PER_CHANNEL_VERSION
                m.operatorCodes.append(oc)
                dequantize = len(m.operatorCodes) - 1
            else:
                c = m.operatorCodes[dequantize]
                c.version = max(c.version, _DEQUANTIZE_PER_CHANNEL_VERSION)
            op = fb.OperatorT()
            op.opcodeIndex = dequantize
            op.inputs = [len(graph.tensors) - 1]
            op.outputs = [t]
            new_ops.append(op)
        graph.operators = new_ops + list(graph.operators)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(m))
