"""``bundle query``: what a phone returns for texts, images or vectors, from a bundle made anywhere, with the
Task Library in a device process or with libscannlite here (docs/native.md, "Two runtimes").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scannlite.store.bundle import parity
from scannlite.store.bundle import runtimes as rt
from scannlite.store.bundle.device_side import DeviceSide
from scannlite.store.bundle.embedder_checks import inspect_embedder
from scannlite.store.bundle.manifest import l2_normalize_said, manifest_beside, scannlite_user_info
from scannlite.store.bundle.ondevice.bundle_file import mapped, read_bundle
from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.index_file import read_user_info
from scannlite.store.bundle.opening import dropper, is_tflite_model
from scannlite.store.errors import InvalidInput


def query(
    path: Path,
    *,
    device: DeviceSide,
    texts: list[str] | None = None,
    images: list[Path] | None = None,
    vectors: np.ndarray | None = None,
    k: int = 10,
    runtime: str | None = None,
) -> list[parity.Neighbors]:
    """What a phone returns for these inputs: (metadata, distance) per query, nearest first.

    ``runtime``: ``"task-library"`` (TextSearcher/ImageSearcher in a device process) or
    ``"scannlite"`` (the bundle's embedder in a device process, :func:`.runtimes.prepared`, then
    libscannlite here); both give the same answers to the bit (docs/native.md, "Two runtimes").
    ``vectors`` (one query per row, as the embedder outputs them) are searched by libscannlite
    only: the Task Library has no way to search by vector. None: :func:`.runtimes.default_query_runtime`.
    """
    path = Path(path)
    if runtime is None:
        runtime = rt.default_query_runtime()[0]
    if runtime not in rt.RUNTIMES:
        raise InvalidInput(f"unknown runtime {runtime!r}; use one of {', '.join(rt.RUNTIMES)}")
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    if sum(x is not None and len(x) > 0 for x in (texts, images, vectors)) != 1:
        raise InvalidInput("give exactly one of --text, --image or --vector-file")
    if runtime == rt.SCANNLITE and (missing := rt.native_missing()) is not None:
        raise InvalidInput(f"--runtime scannlite: {missing}")
    if runtime == rt.TASK_LIBRARY and (missing := rt.task_library_missing()) is not None:
        raise InvalidInput(f"--runtime task-library: {missing}")
    with mapped(path) as data:  # the index's blocks are checked, but only its USER_INFO is parsed
        is_model = is_tflite_model(data)
        try:
            if not is_model:
                read_user_info(data, release=dropper(data))
                raise InvalidInput(
                    f"{path.name} is a bare index; querying needs a bundle (an embedder with the index packed)"
                )
            user_info = read_user_info(read_bundle(data).require_index(), release=dropper(data))
        except IndexFormatError as exc:
            kind = "bundle" if is_model else "TFLite model or on-device index"
            raise InvalidInput(f"{path.name} is not a valid {kind}: {exc}") from None
        facts = inspect_embedder(data, path.name)
    l2_normalize = l2_normalize_said(scannlite_user_info(user_info), manifest_beside(path))
    bundle = str(path.absolute())  # the device process maps the file itself
    if vectors is not None:
        if runtime != rt.SCANNLITE:
            raise InvalidInput("--vector-file needs --runtime scannlite: the Task Library cannot search by vector")
        return _native_query(path, np.asarray(vectors), k, l2_normalize)
    inputs: dict = {}
    if texts:
        if facts.kind != "text":
            raise InvalidInput(f"{path.name} embeds images; use --image")
        inputs["texts"] = list(texts)
    else:
        if facts.kind != "image":
            raise InvalidInput(f"{path.name} embeds text; use --text")
        from scannlite.store.images import load_rgb

        arrays = []
        for p in images or []:
            if not Path(p).is_file():
                raise InvalidInput(f"cannot read {p}: no such file")
            try:
                arrays.append(load_rgb(Path(p)))
            except ValueError as exc:
                raise InvalidInput(f"cannot read image {exc}") from None
        inputs["images"] = arrays
    if runtime == rt.TASK_LIBRARY:
        return device.query_bundle(bundle=bundle, max_results=k, l2_normalize=l2_normalize, **inputs)
    return _native_query(path, device.embed_bundle(bundle=bundle, **inputs), k, l2_normalize)


def _native_query(path: Path, vectors: np.ndarray, k: int, l2_normalize: bool) -> list[parity.Neighbors]:
    from scannlite.store.searcher import NativeError

    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2 or not len(vectors) or vectors.dtype.kind not in "fiu":
        raise InvalidInput(
            f"query vectors must be a non-empty 1-D or 2-D array of numbers; got {vectors.dtype} {vectors.shape}"
        )
    q = vectors.astype(np.float32)
    if not np.isfinite(q).all():
        raise InvalidInput("query vectors must be finite (no NaN or infinity)")
    try:
        return rt.native_search(path, q, k, l2_normalize)
    except NativeError as exc:
        raise InvalidInput(str(exc)) from None
