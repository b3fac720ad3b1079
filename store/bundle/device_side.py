"""What the storage layer asks of a device process, as a protocol the plugin layer answers.

Packing an index into an embedder (tflite-support's MetadataPopulator) and checking a bundle
(the Task Library) need tflite-support's native modules, which may never share a process with
TensorFlow and must never be loaded into the store's own process. So the store does not
run them: ``export``, ``bundle verify`` and ``bundle query`` take a :class:`DeviceSide`
and hand it paths, plain arrays and bytes. :class:`scannlite.plugin.device.DeviceProcesses` is the
implementation that runs each call in a device process; the store names no plugin module,
not even as a string, which the layer test (tests/test_layers.py) checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

Neighbors = list[tuple[bytes, float]]


class DeviceSide(Protocol):
    def builder_index(
        self,
        *,
        serialized_config: bytes,
        embedding_dim: int,
        partition_assignment: np.ndarray,
        metadata: list[bytes],
        user_info: bytes,
        hashed_database: np.ndarray | None = None,
        float_database: np.ndarray | None = None,
    ) -> bytes:
        """The index as tflite-support's own builder writes it (the export layout "builder",
        kept to compare layouts; exports write theirs with :mod:`.ondevice.index_writer`)."""

    def write_bundle(self, *, model: bytes, index: str, index_name: str, out: str) -> None:
        """Write to path ``out`` the embedder ``model`` with the index file at path ``index``
        packed as its SCANN_INDEX_FILE named ``index_name``."""

    def check_bundle(
        self,
        *,
        index: bytes | str | Path,
        probe_vectors: np.ndarray,
        max_results: int,
        l2_normalize: bool,
        bundle: bytes | str | Path | None = None,
        texts: list[str] | None = None,
        images: list[np.ndarray] | None = None,
    ) -> dict:
        """What the Task Library answers, opening the index and bundle (bytes, or paths it reads
        itself) cold as an app would: ``probe`` (results for each probe vector) with
        ``latency_ms``, and for texts/images the embedder's vectors with the searcher's results,
        as ``(vectors, results)``."""

    def query_bundle(
        self,
        *,
        bundle: bytes | str | Path,
        texts: list[str] | None = None,
        images: list[np.ndarray] | None = None,
        max_results: int,
        l2_normalize: bool,
    ) -> list[Neighbors]:
        """What a phone's TextSearcher/ImageSearcher returns for these inputs (``bundle`` as bytes,
        or as a path the Task Library maps itself)."""

    def embed_bundle(
        self, *, bundle: bytes | str | Path, texts: list[str] | None = None, images: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """The bundle's own embedder's vectors for these inputs, not normalised (float32, one row
        each): the Task Library's TextEmbedder/ImageEmbedder, which computes exactly the vector its
        searcher searches with, for libscannlite to search."""
