"""Reference vectors from the TFLite Task Library (tflite-support 0.4.4, Python 3.11), as scannlite calls it.

Run with /work/main/.venv/bin/python. Writes out/ref_<tower>_l2<0|1>.npy and timings."""

import json
import os
import sys
import time

sys.modules["tensorflow"] = None
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
import numpy as np
from shared import OUT, TOWERS, inputs
from tensorflow_lite_support.python.task.core.base_options import BaseOptions
from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
from tensorflow_lite_support.python.task.text import text_embedder
from tensorflow_lite_support.python.task.vision import image_embedder
from tensorflow_lite_support.python.task.vision.core import tensor_image

texts, images = inputs()
timing = {}
for name, path in TOWERS.items():
    for l2 in (False, True):
        eo = EmbeddingOptions(l2_normalize=l2)
        if name.startswith("text"):
            emb = text_embedder.TextEmbedder.create_from_options(
                text_embedder.TextEmbedderOptions(base_options=BaseOptions(file_name=path), embedding_options=eo)
            )
            items = texts
            call = lambda x: emb.embed(x)
        else:
            emb = image_embedder.ImageEmbedder.create_from_options(
                image_embedder.ImageEmbedderOptions(base_options=BaseOptions(file_name=path), embedding_options=eo)
            )
            items = [tensor_image.TensorImage.create_from_array(im) for im in images]
            call = lambda x: emb.embed(x)
        rows, t0 = [], time.perf_counter()
        for x in items:
            r = call(x)
            rows.append(np.asarray(r.embeddings[0].feature_vector.value).astype(np.float32))
        dt = (time.perf_counter() - t0) / len(items)
        timing[f"{name}_l2{int(l2)}"] = dt * 1e3
        np.save(f"{OUT}/ref_{name}_l2{int(l2)}.npy", np.stack(rows))
        v = np.stack(rows)
        print(name, "l2", l2, v.shape, "norms", np.linalg.norm(v, axis=1)[:3], f"{dt * 1e3:.2f} ms/embed", flush=True)
json.dump(timing, open(f"{OUT}/ref_timing_ms.json", "w"), indent=1)
