"""Inspecting, verifying and querying bundles made earlier or elsewhere.

``verify`` re-runs the export's checks on any bundle: the static checks the Task Library
lacks, then parity. With ``--catalog`` the reference is the catalog's snapshot the bundle
came from; without, it is the index file itself, decoded by scannlite's own SSTable reader
and searched by the device-equivalent search, so a bundle from anywhere can be checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from scannlite.store.bundle import parity
from scannlite.store.bundle import runtimes as rt
from scannlite.store.bundle.device_side import DeviceSide
from scannlite.store.bundle.embedder_checks import EmbedderRefused, check_against_index, inspect_embedder
from scannlite.store.bundle.export import device_labels, probe_candidates
from scannlite.store.bundle.manifest import l2_normalize_said, manifest_beside, scannlite_user_info
from scannlite.store.bundle.ondevice.bundle_file import MODEL_IDENTIFIER as TFLITE_MAGIC
from scannlite.store.bundle.ondevice.bundle_file import mapped, read_bundle
from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.index_file import OnDeviceIndex, read_index, read_user_info
from scannlite.store.bundle.ondevice.model_facts import describe_model
from scannlite.store.bundle.ondevice.protos import DistanceMeasure, EmbeddingType, LookupType
from scannlite.store.bundle.ondevice.sstable import RELEASE_EVERY
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput
from scannlite.store.index import device_search
from scannlite.store.index.snapshot import load_snapshot
from scannlite.store.progress import SILENT, Progress
from scannlite.store.vocabulary import Distance


@dataclass
class OpenedBundle:
    """A bundle or bare index file, mapped read-only: ``data`` and ``index_bytes`` are the map and
    a view of it (the file is never read whole), so use it as a context manager, which drops
    everything read from the file when the block ends."""

    path: Path
    data: bytes
    is_model: bool
    index_bytes: bytes
    index: OnDeviceIndex
    manifest: dict | None
    user_info: dict | None
    describe: dict | None = None
    problems: list[str] = field(default_factory=list)
    _closing: contextlib.ExitStack | None = None

    @cached_property
    def sha256(self) -> str:
        """Of the mapped file itself, a slice at a time with the pages dropped between slices."""
        digest = hashlib.sha256()
        for piece in _slices(self.data):
            digest.update(piece)
        return digest.hexdigest()

    @cached_property
    def facts(self):
        """What the Task Library makes of the model (parsed once: each parse re-checks its CRCs)."""
        return inspect_embedder(self.data, self.path.name)

    def __enter__(self) -> OpenedBundle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.index = self.index_bytes = self.data = None  # the map's views, then the map
        if self._closing is not None:
            self._closing.close()


def open_bundle(path: Path) -> OpenedBundle:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    closing = contextlib.ExitStack()
    try:
        return _opened(path, closing.enter_context(mapped(path)), closing)
    except BaseException:
        closing.close()
        raise


def _opened(path: Path, data, closing: contextlib.ExitStack) -> OpenedBundle:
    is_model = _is_model(data)
    describe = None
    try:
        if is_model:
            bundle = read_bundle(data)
            index_bytes = bundle.require_index()
            describe = describe_model(data)
        else:
            index_bytes = memoryview(data)
        index = read_index(index_bytes, release=_dropper(data))
        _dropper(data)()
    except IndexFormatError as exc:
        kind = "bundle" if is_model else "TFLite model or on-device index"
        raise InvalidInput(f"{path.name} is not a valid {kind}: {exc}") from None
    return OpenedBundle(
        path,
        data,
        is_model,
        index_bytes,
        index,
        manifest_beside(path),
        scannlite_user_info(index.user_info),
        describe,
        _closing=closing,
    )


def _dropper(data) -> Callable[[], None]:
    """What drops a mapped file's resident pages (a no-op for bytes): pages read once for a
    check need not stay, and what is used again is faulted back in from the page cache."""
    if isinstance(data, mmap.mmap):
        return lambda: data.madvise(mmap.MADV_DONTNEED)
    return lambda: None


def _slices(data, drop: Callable[[], None] | None = None):
    """``data`` as views of :data:`~.ondevice.sstable.RELEASE_EVERY` bytes, calling ``drop`` (by
    default ``data``'s own dropper) after each: for one pass over a file too large to hold."""
    drop = drop or _dropper(data)
    view = memoryview(data)
    for at in range(0, len(view), RELEASE_EVERY):
        yield view[at : at + RELEASE_EVERY]
        drop()


def _is_model(data) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_MAGIC


def _distance_name(index: OnDeviceIndex) -> str:
    measure, _ = index.resolve_distance()
    return Distance.DOT if measure == DistanceMeasure.DOT_PRODUCT else Distance.L2


def l2_normalize_of(b: OpenedBundle) -> bool:
    return l2_normalize_said(b.user_info, b.manifest)


def info(path: Path) -> dict:
    from scannlite.store.bundle.manifest import size_split

    with open_bundle(path) as b:
        summary = b.index.summary()
        out = {
            "file": str(b.path),
            "bytes": len(b.data),
            "sha256": b.sha256,
            "kind": "bundle" if b.is_model else "index",
            "index": summary,
            "split": size_split(len(b.data), len(b.index_bytes), summary["bytes"]["metadata"], b.is_model),
            "user_info": b.user_info,
            "manifest": b.manifest,
        }
        if b.describe is not None:
            d = b.describe
            out["model"] = {
                "inputs": [
                    {k: i.get(k) for k in ("name", "shape", "dtype", "tokenizer", "normalization")} for i in d["inputs"]
                ],
                "outputs": [{k: o.get(k) for k in ("name", "shape", "dtype")} for o in d["outputs"]],
                "packed_files": d.get("packed_files"),
                "min_parser_version": d.get("min_parser_version"),
            }
        return out


def static_problems(b: OpenedBundle) -> list[str]:
    problems = [f"index: {p}" for p in b.index.validate()]
    ah = b.index.asymmetric_hashing
    if ah is not None and ah.lookup_type == LookupType.INT8_LUT16:
        problems.append("index: INT8_LUT16 lookup; the Task Library returns garbage (-0.0) for it")
    if b.is_model:
        try:
            facts = b.facts
            if b.index.query_dim is not None:
                check_against_index(facts, b.index.query_dim, b.path.name)
        except EmbedderRefused as exc:
            problems.append(str(exc))
    if b.manifest is not None:
        if b.manifest.get("sha256", {}).get("file") not in (None, b.sha256):
            problems.append("the file's sha256 differs from its manifest: it was changed after export")
    return problems


def _index_as_device(b: OpenedBundle) -> tuple[device_search.DeviceIndex, int, Callable[[np.ndarray], np.ndarray]]:
    """A DeviceIndex straight from the file, its item count, and a function giving float vectors
    for rows to probe it with (decoded from their codes only when asked: all of them would be
    4 bytes per dimension per item)."""
    index = b.index
    part, ah = index.partitioner, index.asymmetric_hashing
    dim = index.query_dim
    centroids = (
        part.centroids.astype(np.float32) if part is not None and part.num_leaves else np.zeros((1, dim), np.float32)
    )
    sizes = index.partition_sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = _gathered(b, [p for p in index.partitions if p is not None], index)
    if ah is not None:
        books = [np.asarray(b, dtype=np.float32) for b in ah.codebooks]

        def decoded(r: np.ndarray) -> np.ndarray:
            if not len(r):
                return np.zeros((0, dim), np.float32)
            return np.concatenate([books[s][rows[r, s]] for s in range(len(books))], axis=1)

        di = device_search.DeviceIndex(
            _distance_name(index), centroids, offsets, books, rows, None, ah.lookup_type.name
        )
        return di, len(rows), decoded
    vectors = rows.astype(np.float32, copy=False)
    di = device_search.DeviceIndex(_distance_name(index), centroids, offsets, None, None, vectors)
    return di, len(vectors), lambda r: vectors[r]


def _gathered(b: OpenedBundle, parts: list[np.ndarray], index: OnDeviceIndex) -> np.ndarray:
    """The partitions' rows in one array, copied out of the map a few partitions at a time, each
    batch's pages dropped again, so the file and its copy are never both resident."""
    if not parts:
        return index.vectors()
    out = np.empty((sum(len(p) for p in parts), parts[0].shape[1]), dtype=parts[0].dtype.newbyteorder("="))
    at = copied = 0
    for part in parts:
        out[at : at + len(part)] = part
        at += len(part)
        copied += part.nbytes
        if copied >= RELEASE_EVERY:
            _dropper(b.data)()
            copied = 0
    return out


@contextlib.contextmanager
def _as_files(b: OpenedBundle):
    """(index, bundle) as paths for the device process, which maps them itself: a bare index is
    its own file; a bundle's packed index is copied once into a temporary file (from the map,
    never held in memory; on a tmpfs ``TMPDIR`` that copy is memory too). The device opens the
    paths again: a file replaced between the checks above and the device's load is not caught."""
    if not b.is_model:
        yield str(b.path.absolute()), None
        return
    with tempfile.TemporaryDirectory(prefix="scannlite-verify-") as tmp:
        index = Path(tmp) / "index.ldb"
        with open(index, "wb") as f:
            for piece in _slices(b.index_bytes, _dropper(b.data)):
                f.write(piece)
        yield str(index), str(b.path.absolute())


def verify(
    path: Path,
    *,
    device: DeviceSide,
    catalog: Path | None = None,
    probe: Path | None = None,
    runtimes: tuple[str, ...] | None = None,
    progress: Progress = SILENT,
) -> tuple[list[str], parity.ParityReport]:
    """Static problems and the parity report; ``runtimes``: which to verify with (default: every
    one present, :func:`.runtimes.available`)."""
    with open_bundle(path) as b:
        return _verify(b, device, catalog, probe, runtimes, progress)


def _verify(
    b: OpenedBundle,
    device: DeviceSide,
    catalog: Path | None,
    probe: Path | None,
    runtimes: tuple[str, ...] | None,
    progress: Progress,
) -> tuple[list[str], parity.ParityReport]:
    problems = static_problems(b)
    _dropper(b.data)()  # validating read every code
    if problems:
        return problems, parity.ParityReport()
    l2n = l2_normalize_of(b)
    leaves = b.index.leaves_searched
    candidates: list[str] = []
    if catalog is not None:
        cat = Catalog.open(catalog)
        version = (b.user_info or b.manifest or {}).get("snapshot")
        if version is None:
            raise InvalidInput(f"{b.path.name} does not say which snapshot it holds; verify it without --catalog")
        snap = load_snapshot(cat, int(version))
        mode = (b.user_info or {}).get("device_metadata", "id")
        labels = device_labels(cat, snap, mode, 1 << 30)
        if labels != b.index.metadata:
            problems.append(f"the bundle's items differ from snapshot {version} of {catalog}")
            return problems, parity.ParityReport()
        lookup = b.index.asymmetric_hashing.lookup_type.name if b.index.asymmetric_hashing else None
        reference, count, l2n = snap.device_index(lookup), snap.count, cat.normalize
        vectors_of = lambda rows: cat.vectors_for(snap.items[rows])  # noqa: E731  (as export's check reads them)
        candidates = probe_candidates(cat, snap)
    else:
        reference, count, vectors_of = _index_as_device(b)
        labels = [m or b"" for m in b.index.metadata]
        # Only the probe texts' labels are kept decoded: all of them would be millions of strings.
        texts = (m.decode("utf-8", "ignore") for m in labels)
        nonblank = np.flatnonzero(np.fromiter((bool(t.strip()) for t in texts), bool, len(labels)))
        candidates = [
            labels[i].decode("utf-8", "ignore") for i in parity.evenly(nonblank.tolist(), parity.PROBE_INPUTS)
        ]
    if count == 0:
        return ["the index holds no items"], parity.ParityReport()
    texts = images = None
    if b.is_model:
        facts = b.facts
        texts, images = parity.probe_inputs(facts.kind, facts.description["inputs"][0]["shape"], candidates, probe)
    with _as_files(b) as (index, bundle):
        rep = parity.verify(
            device,
            index=index,
            bundle=bundle,
            reference=reference,
            labels=labels,
            count=count,
            vectors_of=vectors_of,
            l2_normalize=l2n,
            leaves=leaves,
            texts=texts,
            images=images,
            runtimes=runtimes,
            progress=progress,
        )
    return problems + rep.problems, rep


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
    with mapped(path) as data:  # the index's blocks are checked, but only its USER_INFO is parsed
        is_model = _is_model(data)
        try:
            if not is_model:
                read_user_info(data, release=_dropper(data))
                raise InvalidInput(
                    f"{path.name} is a bare index; querying needs a bundle (an embedder with the index packed)"
                )
            user_info = read_user_info(read_bundle(data).require_index(), release=_dropper(data))
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


__all__ = ["info", "verify", "query", "open_bundle", "EmbeddingType"]
