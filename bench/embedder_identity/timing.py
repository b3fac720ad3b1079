"""Median ms per embedding (one call each, after a warm-up), run one runtime at a time.
usage: timing.py tasklib | litert | tflrt   (tasklib under /work/main/.venv/bin/python)"""

import importlib.util
import json
import os
import sys
import time
import zipfile

import numpy as np
from shared import D, inputs

kind = sys.argv[1]
texts, images = inputs()
TXT, IMG = f"{D}/towers-text-int8-weights/text_embedder.tflite", f"{D}/towers/image_embedder.tflite"
TXTF = f"{D}/towers-text-none/text_embedder.tflite"


def med(f, items, reps=2):
    f(items[0])
    ts = []
    for _ in range(reps):
        for x in items:
            t = time.perf_counter()
            f(x)
            ts.append(time.perf_counter() - t)
    return round(float(np.median(ts)) * 1e3, 2)


res = {}
if kind == "tasklib":
    sys.modules["tensorflow"] = None
    os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
    from tensorflow_lite_support.python.task.text import text_embedder
    from tensorflow_lite_support.python.task.vision import image_embedder
    from tensorflow_lite_support.python.task.vision.core import tensor_image

    for name, p in (("text_int8", TXT), ("text_float", TXTF)):
        e = text_embedder.TextEmbedder.create_from_options(
            text_embedder.TextEmbedderOptions(
                base_options=BaseOptions(file_name=p), embedding_options=EmbeddingOptions()
            )
        )
        res[name] = med(lambda t: e.embed(t), texts)
    ie = image_embedder.ImageEmbedder.create_from_options(
        image_embedder.ImageEmbedderOptions(
            base_options=BaseOptions(file_name=IMG), embedding_options=EmbeddingOptions()
        )
    )
    res["image"] = med(lambda im: ie.embed(tensor_image.TensorImage.create_from_array(im)), list(images))
else:
    if kind == "litert":
        from ai_edge_litert.interpreter import Interpreter
    else:
        from tflite_runtime.interpreter import Interpreter
    spec = importlib.util.spec_from_file_location(
        "wordpiece", os.path.join(os.path.dirname(__file__), "..", "..", "plugin", "dual_encoder", "wordpiece.py")
    )
    wp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wp)
    for name, p in (("text_int8", TXT), ("text_float", TXTF)):
        with zipfile.ZipFile(p) as z:
            open("/tmp/vocab_timing.txt", "wb").write(z.read("vocab.txt"))
        vocab = "/tmp/vocab_timing.txt"
        it = Interpreter(model_path=p, num_threads=1)
        it.allocate_tensors()
        ins = {d["name"].split("serving_default_")[-1].split(":")[0]: d["index"] for d in it.get_input_details()}
        out = it.get_output_details()[0]["index"]

        def emb(t):  # tokenization included, as in the Task Library's call
            enc = wp.encode([t], 32, vocab)
            for k in ("ids", "mask", "segment_ids"):
                it.set_tensor(ins[k], enc[k])
            it.invoke()
            return it.get_tensor(out)[0].copy()

        res[name] = med(emb, texts)
    it = Interpreter(model_path=IMG, num_threads=1)
    it.allocate_tensors()
    i0, o0 = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    inv = np.float32(np.float32(1) / np.float32(127.5))

    def embi(im):
        it.set_tensor(i0, (inv * (im.astype(np.float32) - np.float32(127.5)))[None])
        it.invoke()
        return it.get_tensor(o0)[0].copy()

    res["image"] = med(embi, list(images))
print(kind, sys.version.split()[0], json.dumps(res))
