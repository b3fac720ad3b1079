"""Device-side halves of ``scannlite export``: pack the index into the embedder, then check the
bundle as a phone would.

They run in device processes: :class:`~scannlite.plugin.device.processes.DeviceProcesses` (the store's
:class:`~scannlite.store.bundle.device_side.DeviceSide`) sends each call to one. The store side
(:mod:`scannlite.store.bundle.export`, :mod:`scannlite.store.bundle.inspection`) writes the index file from a
snapshot and compares the answers with its own device-equivalent search. Packing and checking
happen in two separate processes, so the check opens the bundle exactly as an app would: cold,
from the file (or from bytes, for ``bundle verify``).
"""

from __future__ import annotations

import numpy as np

from scannlite.plugin.device import runtime, tflite_zip
from scannlite.plugin.device.probe_model import make_probe_model, probe_token
from scannlite.store.bundle.ondevice.sstable_writer import write_table

LATENCY_ROUNDS = 2  # x 2 probes per stored vector sampled: a few hundred timed searches


def builder_index(
    *,
    serialized_config: bytes,
    embedding_dim: int,
    partition_assignment,
    metadata: list[bytes],
    user_info: bytes,
    hashed_database=None,
    float_database=None,
) -> bytes:
    """The index as tflite-support's own builder writes it (export layout "builder")."""
    return runtime.build_index(
        embedding_dim=embedding_dim,
        serialized_config=serialized_config,
        user_info=user_info,
        partition_assignment=partition_assignment,
        metadata=metadata,
        hashed_database=hashed_database,
        float_database=float_database,
    )


def write_bundle(*, model: bytes, index: str, index_name: str, out: str) -> None:
    """The bundle (``model`` with the index file at ``index`` packed in), written to ``out``: a
    temporary path the store renames into place once the bundle is verified.

    The metadata does not depend on the index's bytes (an associated file is named, not
    described), so it is made by :func:`runtime.attach_index` around a stand-in index (an empty
    table), and the real index is then copied into the zip from its file in chunks: the same
    bytes as attaching it whole, without holding it (``tests/test_export.py`` compares them)."""
    bundle = runtime.attach_index(model, write_table([]), index_name)
    flatbuffer, files = tflite_zip.split(bundle)
    with open(out, "wb") as f:
        tflite_zip.write(f, flatbuffer, [(name, index if name == index_name else data) for name, data in files])


def check_bundle(
    *,
    index: bytes | str,
    probe_vectors: np.ndarray,
    max_results: int,
    l2_normalize: bool,
    bundle: bytes | str | None = None,
    texts: list[str] | None = None,
    images: list[np.ndarray] | None = None,
) -> dict:
    """What the Task Library answers for the parity checks (``index`` and ``bundle`` as bytes,
    or as paths the Task Library reads itself).

    ``probe``: TextSearcher results for each probe vector, searched through ``index`` by a probe
    embedder (vector i is the text ``qI``). ``texts``/``images``: the bundle's own embedder's
    vectors for the probe inputs (TextEmbedder / ImageEmbedder, not normalised) and the
    searcher's results for the same inputs, through the index packed in the bundle.
    """
    out: dict = {}
    if len(probe_vectors):
        probe = make_probe_model(np.asarray(probe_vectors, dtype=np.float32))
        queries = [probe_token(i) for i in range(len(probe_vectors))]
        out["probe"] = runtime.text_search(
            probe, queries, max_results=max_results, l2_normalize=l2_normalize, index=index
        )
        # Latency as an app sees it: a warm searcher (the pass above loaded the index),
        # the probe queries again, each search timed alone (the probe tower embeds in microseconds).
        seconds: list[float] = []
        for _ in range(LATENCY_ROUNDS):
            runtime.text_search(
                probe, queries, max_results=max_results, l2_normalize=l2_normalize, index=index, seconds=seconds
            )
        ms = np.asarray(seconds) * 1000
        out["latency_ms"] = {
            "p50": round(float(np.percentile(ms, 50)), 4),
            "p95": round(float(np.percentile(ms, 95)), 4),
            "searches": len(ms),
        }
    if bundle is not None and texts:
        out["texts"] = (
            runtime.text_embed(bundle, texts),
            runtime.text_search(bundle, texts, max_results=max_results, l2_normalize=l2_normalize),
        )
    if bundle is not None and images:
        out["images"] = (
            runtime.image_embed(bundle, images),
            runtime.image_search(bundle, images, max_results=max_results, l2_normalize=l2_normalize),
        )
    return out


def query_bundle(
    *,
    bundle: bytes | str,
    texts: list[str] | None = None,
    images: list[np.ndarray] | None = None,
    max_results: int,
    l2_normalize: bool,
):
    """``scannlite bundle query``: what a phone returns for these inputs."""
    if texts:
        return runtime.text_search(bundle, texts, max_results=max_results, l2_normalize=l2_normalize)
    if not images:
        raise ValueError("nothing to query: give texts or images")
    return runtime.image_search(bundle, images, max_results=max_results, l2_normalize=l2_normalize)


def embed_bundle(*, bundle: bytes | str, texts: list[str] | None = None, images: list[np.ndarray] | None = None):
    """``scannlite bundle query --runtime scannlite``: the bundle's embedder's vectors for these
    inputs (not normalised), exactly those its searcher would search with."""
    if texts:
        return runtime.text_embed(bundle, texts)
    if not images:
        raise ValueError("nothing to embed: give texts or images")
    return runtime.image_embed(bundle, images)
