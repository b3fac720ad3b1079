"""Device-side halves of ``scannlite export``: build a bundle, then check it as a phone would.

They run in device processes: :class:`~scannlite.plugin.device.processes.DeviceProcesses` (the store's
:class:`~scannlite.store.device_side.DeviceSide`) sends each call to one. The store side
(:mod:`scannlite.store.export`, :mod:`scannlite.store.bundles`) prepares the arrays from a
snapshot and compares the answers with its own device-equivalent search. Building and checking happen in two separate
processes, so the check opens the bundle exactly as an app would: from bytes, cold.
"""
from __future__ import annotations

import numpy as np

from scannlite.store.vocabulary import Distance

from . import runtime
from .probe_model import make_probe_model, probe_token

LATENCY_ROUNDS = 2  # x 2 probes per stored vector sampled: a few hundred timed searches


def build_bundle(*, distance: Distance | str, centroids, codebooks, lookup_type: str, leaves_to_search: int,
                 embedding_dim: int, partition_assignment, metadata: list[bytes], hashed_database=None,
                 float_database=None, user_info: bytes, embedder: bytes | None, index_name: str,
                 compression: bool = True, partition_offsets: list[int] | None = None,
                 layout: dict | None = None) -> tuple[bytes, bytes | None]:
    """(index, bundle): the on-device index, and the embedder with it packed (or None).

    ``partition_offsets``: the first result id of each leaf, for a slotted (delta-friendly)
    layout; the builder's table is then rewritten by :func:`scannlite.store.ondevice.layout.relayout`
    (``layout``: its keyword options)."""
    config = runtime.scann_config(
        distance=distance, centroids=centroids,
        leaves_to_search=leaves_to_search, codebooks=codebooks, lookup_type=lookup_type)
    index = runtime.build_index(
        embedding_dim=embedding_dim, serialized_config=config, user_info=user_info,
        partition_assignment=partition_assignment, metadata=metadata, hashed_database=hashed_database,
        float_database=float_database, compression=compression)
    if partition_offsets is not None:
        from scannlite.store.ondevice.layout import relayout

        index = relayout(index, list(partition_offsets), **(layout or {}))
    bundle = runtime.attach_index(embedder, index, index_name) if embedder is not None else None
    return index, bundle


def check_bundle(*, index: bytes, probe_vectors: np.ndarray, max_results: int, l2_normalize: bool,
                 bundle: bytes | None = None, texts: list[str] | None = None,
                 images: list[np.ndarray] | None = None) -> dict:
    """What the Task Library answers for the parity checks.

    ``probe``: TextSearcher results for each probe vector, searched through ``index`` by a probe
    embedder (vector i is the text ``qI``). ``texts``/``images``: the bundle's own embedder's
    vectors for the probe inputs (TextEmbedder / ImageEmbedder, not normalised) and the
    searcher's results for the same inputs, through the index packed in the bundle.
    """
    out: dict = {}
    if len(probe_vectors):
        probe = make_probe_model(np.asarray(probe_vectors, dtype=np.float32))
        queries = [probe_token(i) for i in range(len(probe_vectors))]
        out["probe"] = runtime.text_search(probe, queries, max_results=max_results,
                                           l2_normalize=l2_normalize, index=index)
        # Latency as an app sees it: a warm searcher (the pass above loaded the index),
        # the probe queries again, each search timed alone (the probe tower embeds in microseconds).
        seconds: list[float] = []
        for _ in range(LATENCY_ROUNDS):
            runtime.text_search(probe, queries, max_results=max_results, l2_normalize=l2_normalize, index=index,
                                seconds=seconds)
        ms = np.asarray(seconds) * 1000
        out["latency_ms"] = {"p50": round(float(np.percentile(ms, 50)), 4),
                             "p95": round(float(np.percentile(ms, 95)), 4), "searches": len(ms)}
    if bundle is not None and texts:
        out["texts"] = (runtime.text_embed(bundle, texts),
                        runtime.text_search(bundle, texts, max_results=max_results, l2_normalize=l2_normalize))
    if bundle is not None and images:
        out["images"] = (runtime.image_embed(bundle, images),
                         runtime.image_search(bundle, images, max_results=max_results, l2_normalize=l2_normalize))
    return out


def query_bundle(*, bundle: bytes, texts: list[str] | None = None, images: list[np.ndarray] | None = None,
                 max_results: int, l2_normalize: bool):
    """``scannlite bundle query``: what a phone returns for these inputs."""
    if texts:
        return runtime.text_search(bundle, texts, max_results=max_results, l2_normalize=l2_normalize)
    return runtime.image_search(bundle, images, max_results=max_results, l2_normalize=l2_normalize)

