"""Device-side halves of the export benchmark: run only in device processes via ``run_in``.

tflite-support is imported inside each function, never at module level: this module is also
imported by the benchmark's main process, which must not load the Task Library (nor
TensorFlow). The searcher is created once and then timed search by search with
``time.perf_counter``, as an app keeps one searcher open; every timed call embeds the query
text with the bundle's own model and searches the packed index.
"""

from __future__ import annotations

import time

import numpy as np


def time_text_search(model: bytes, queries: list[str], *, max_results: int, l2_normalize: bool, warmup: int) -> dict:
    """Seconds per ``TextSearcher.search`` (embedding included) and per ``TextEmbedder.embed``."""
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
    from tensorflow_lite_support.python.task.processor.proto.search_options_pb2 import SearchOptions
    from tensorflow_lite_support.python.task.text.text_embedder import TextEmbedder, TextEmbedderOptions
    from tensorflow_lite_support.python.task.text.text_searcher import TextSearcher, TextSearcherOptions

    t0 = time.perf_counter()
    searcher = TextSearcher.create_from_options(
        TextSearcherOptions(
            base_options=BaseOptions(file_content=model),
            embedding_options=EmbeddingOptions(l2_normalize=l2_normalize),
            search_options=SearchOptions(max_results=max_results),
        )
    )
    create = time.perf_counter() - t0
    for q in queries[:warmup]:
        searcher.search(q)
    search = []
    returned = 0
    for q in queries:
        s0 = time.perf_counter()
        result = searcher.search(q)
        search.append(time.perf_counter() - s0)
        returned += len(result.nearest_neighbors)

    embedder = TextEmbedder.create_from_options(
        TextEmbedderOptions(
            base_options=BaseOptions(file_content=model), embedding_options=EmbeddingOptions(l2_normalize=l2_normalize)
        )
    )
    embed = _timed(embedder.embed, queries, warmup)
    return {
        "create_seconds": create,
        "search": np.asarray(search),
        "embed": embed,
        "mean_results": returned / max(len(queries), 1),
    }


def time_index_files(
    model: str,
    indices: list[str],
    queries: list[str],
    *,
    max_results: int,
    l2_normalize: bool,
    warmup: int,
    chunk: int = 50,
) -> list[np.ndarray]:
    """Seconds per ``TextSearcher.search`` (embedding included) of the text model at path
    ``model`` with each index file beside it (``SearchOptions.index_file_name``): one searcher
    per index, each warmed up with ``warmup`` calls, then the queries ``chunk`` at a time, each
    chunk through every searcher in turn (in the same order), so that a machine's drift over
    the run falls on all of them, not on whichever searcher came last."""
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.processor.proto.embedding_options_pb2 import EmbeddingOptions
    from tensorflow_lite_support.python.task.processor.proto.search_options_pb2 import SearchOptions
    from tensorflow_lite_support.python.task.text.text_searcher import TextSearcher, TextSearcherOptions

    searchers = [
        TextSearcher.create_from_options(
            TextSearcherOptions(
                base_options=BaseOptions(file_name=model),
                embedding_options=EmbeddingOptions(l2_normalize=l2_normalize),
                search_options=SearchOptions(max_results=max_results, index_file_name=index),
            )
        )
        for index in indices
    ]
    for searcher in searchers:
        for q in queries[:warmup]:
            searcher.search(q)
    seconds: list[list[float]] = [[] for _ in searchers]
    for start in range(0, len(queries), chunk):
        for searcher, out in zip(searchers, seconds):
            out.extend(_timed(searcher.search, queries[start : start + chunk], 0))
    return [np.asarray(s) for s in seconds]


def search_vectors(bundle: bytes, vectors: np.ndarray, *, max_results: int, l2_normalize: bool) -> list[list[str]]:
    """TextSearcher results (device metadata, here the item ids) for each vector, searched
    through the index packed in ``bundle`` by a probe embedder (token ``qI`` is vector I)."""
    from scannlite.plugin.device import runtime
    from scannlite.plugin.device.bundle import index_of
    from scannlite.plugin.device.probe_model import probe_token

    found = index_of(bundle)
    if found is None:
        raise ValueError("the bundle carries no SCANN_INDEX_FILE")
    probe = runtime.make_probe_model(np.asarray(vectors, dtype=np.float32))
    tokens = [probe_token(i) for i in range(len(vectors))]
    results = runtime.text_search(probe, tokens, max_results=max_results, l2_normalize=l2_normalize, index=found[1])
    return [[m.decode("utf-8") for m, _ in row] for row in results]


def time_image_embed(model: bytes, images: list[np.ndarray], *, warmup: int = 3) -> dict:
    """Seconds per ``ImageEmbedder.embed`` (the library's resize included), one image at a time as an app calls it."""
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.vision.core.tensor_image import TensorImage
    from tensorflow_lite_support.python.task.vision.image_embedder import ImageEmbedder, ImageEmbedderOptions

    embedder = ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=BaseOptions(file_content=model)))
    tensors = [TensorImage.create_from_array(np.ascontiguousarray(im, dtype=np.uint8)) for im in images]
    return {"embed": _timed(embedder.embed, tensors, warmup)}


def time_text_embed(model: bytes, texts: list[str], *, warmup: int = 3) -> dict:
    """Seconds per ``TextEmbedder.embed`` (tokenizer included), one text at a time as an app calls it."""
    from tensorflow_lite_support.python.task.core.base_options import BaseOptions
    from tensorflow_lite_support.python.task.text.text_embedder import TextEmbedder, TextEmbedderOptions

    embedder = TextEmbedder.create_from_options(TextEmbedderOptions(base_options=BaseOptions(file_content=model)))
    return {"embed": _timed(embedder.embed, list(texts), warmup)}


def _timed(call, items, warmup: int) -> np.ndarray:
    """Seconds per ``call(item)``, each timed alone, after ``warmup`` untimed calls."""
    for x in items[:warmup]:
        call(x)
    seconds = []
    for x in items:
        s0 = time.perf_counter()
        call(x)
        seconds.append(time.perf_counter() - s0)
    return np.asarray(seconds)
