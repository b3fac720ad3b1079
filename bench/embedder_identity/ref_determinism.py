"""Is the Task Library reference itself stable: a second process, and BaseOptions(num_threads=1 / 2)?"""

import os
import sys

sys.modules["tensorflow"] = None
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
import numpy as np
from shared import OUT, D, inputs
from tensorflow_lite_support.python.task.core.base_options import BaseOptions
from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
from tensorflow_lite_support.python.task.text import text_embedder
from tensorflow_lite_support.python.task.vision import image_embedder
from tensorflow_lite_support.python.task.vision.core import tensor_image

texts, images = inputs()
for thr in (-1, 1, 2):
    bo = lambda p: BaseOptions(file_name=p, num_threads=thr)
    te = text_embedder.TextEmbedder.create_from_options(
        text_embedder.TextEmbedderOptions(
            base_options=bo(f"{D}/towers-text-int8-weights/text_embedder.tflite"), embedding_options=EmbeddingOptions()
        )
    )
    v = np.stack([np.asarray(te.embed(t).embeddings[0].feature_vector.value).astype(np.float32) for t in texts])
    ie = image_embedder.ImageEmbedder.create_from_options(
        image_embedder.ImageEmbedderOptions(
            base_options=bo(f"{D}/towers/image_embedder.tflite"), embedding_options=EmbeddingOptions()
        )
    )
    w = np.stack(
        [
            np.asarray(
                ie.embed(tensor_image.TensorImage.create_from_array(im)).embeddings[0].feature_vector.value
            ).astype(np.float32)
            for im in images
        ]
    )
    print(
        "num_threads",
        thr,
        "text_int8 equal to ref:",
        np.array_equal(v, np.load(f"{OUT}/ref_text_int8_l20.npy")),
        "image equal to ref:",
        np.array_equal(w, np.load(f"{OUT}/ref_image_l20.npy")),
        flush=True,
    )
