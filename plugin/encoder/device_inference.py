"""Running ``.tflite`` embedders with the Task Library (device process only).

Called through ``run_in("device", "scannlite.plugin.encoder.device_inference:...", ...)``:
the worker has already blocked TensorFlow and selected protobuf's Python implementation.
Models are read from a path (an 87 MB MiniLM tower is not worth pickling). One embedder is
created per call and reused for every input of the call.
"""
from __future__ import annotations

import numpy as np


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _vector(result) -> np.ndarray:
    fv = result.embeddings[0].feature_vector
    return np.asarray(fv.value, dtype=np.float32)


def embed_texts(model_path: str, texts: list[str], l2_normalize: bool = False) -> np.ndarray:
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
    from tensorflow_lite_support.python.task.text.text_embedder import TextEmbedder, TextEmbedderOptions

    options = TextEmbedderOptions(base_options=BaseOptions(file_name=model_path),
                                  embedding_options=EmbeddingOptions(l2_normalize=l2_normalize))
    try:
        embedder = TextEmbedder.create_from_options(options)
    except Exception as exc:
        raise RuntimeError(f"the Task Library's TextEmbedder cannot load {model_path}: {_one_line(exc)}") from None
    vectors = [_vector(embedder.embed(text)) for text in texts]
    return np.stack(vectors) if vectors else np.zeros((0, embedder.get_embedding_dimension(0)), np.float32)


def embed_images(model_path: str, images: list[np.ndarray], l2_normalize: bool = False) -> np.ndarray:
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
    from tensorflow_lite_support.python.task.vision.core.tensor_image import TensorImage
    from tensorflow_lite_support.python.task.vision.image_embedder import ImageEmbedder, ImageEmbedderOptions

    options = ImageEmbedderOptions(base_options=BaseOptions(file_name=model_path),
                                   embedding_options=EmbeddingOptions(l2_normalize=l2_normalize))
    try:
        embedder = ImageEmbedder.create_from_options(options)
    except Exception as exc:
        raise RuntimeError(f"the Task Library's ImageEmbedder cannot load {model_path}: {_one_line(exc)}") from None
    vectors = []
    for image in images:
        arr = np.ascontiguousarray(image, dtype=np.uint8)
        vectors.append(_vector(embedder.embed(TensorImage.create_from_array(arr))))
    return np.stack(vectors) if vectors else np.zeros((0, embedder.get_embedding_dimension(0)), np.float32)
