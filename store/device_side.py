"""What the storage layer asks of a device process, as a protocol the plugin layer answers.

Building an on-device index (tflite-support's index builder) and checking a bundle (the Task
Library) need tflite-support's native modules, which may never share a process with
TensorFlow and must never be loaded into the store's own process. So the store does not
run them: ``export``, ``bundle verify`` and ``bundle query`` take a :class:`DeviceSide`
and hand it plain arrays and bytes. :class:`scannlite.plugin.device.DeviceProcesses` is the
implementation that runs each call in a device process; the store names no plugin module,
not even as a string, which the layer test (tests/test_layers.py) checks.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from .vocabulary import Distance

Neighbors = list[tuple[bytes, float]]


class DeviceSide(Protocol):
    def build_bundle(self, *, distance: Distance, centroids: np.ndarray, codebooks: list[np.ndarray] | None,
                     lookup_type: str, leaves_to_search: int, embedding_dim: int, partition_assignment: np.ndarray,
                     metadata: list[bytes], hashed_database: np.ndarray | None = None,
                     float_database: np.ndarray | None = None, user_info: bytes, embedder: bytes | None,
                     index_name: str, partition_offsets: list[int] | None = None,
                     layout: dict | None = None) -> tuple[bytes, bytes | None]:
        """(index, bundle): the on-device index file, and ``embedder`` with it packed (None
        without an embedder). ``partition_offsets`` (first result id of each leaf) asks for
        the slotted, delta-friendly layout of :mod:`scannlite.store.ondevice.layout`."""

    def check_bundle(self, *, index: bytes, probe_vectors: np.ndarray, max_results: int, l2_normalize: bool,
                     bundle: bytes | None = None, texts: list[str] | None = None,
                     images: list[np.ndarray] | None = None) -> dict:
        """What the Task Library answers, opening the index and bundle cold as an app would:
        ``probe`` (results for each probe vector), and for texts/images the embedder's vectors
        with the searcher's results, as ``(vectors, results)``."""

    def query_bundle(self, *, bundle: bytes, texts: list[str] | None = None, images: list[np.ndarray] | None = None,
                     max_results: int, l2_normalize: bool) -> list[Neighbors]:
        """What a phone's TextSearcher/ImageSearcher returns for these inputs."""
