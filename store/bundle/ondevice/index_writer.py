"""Write an on-device ScaNN index (``*.ldb``) in the store process, streamed to a file.

tflite-support's builder (``index_builder.create_serialized_index_file``) takes the whole
database and every metadata string as Python objects, copies them into C++ containers, sorts
every entry in a btree and returns the table as one buffer, several times the index's size in
memory (docs/design-figures.md, "Writing the index"). The format is small and fully specified
(docs/ondevice-format.md 1), so scannlite writes it itself, one block at a time:
memory is the snapshot's own arrays plus one block, and the Task Library still has the last
word: an export is verified by it before it is published (unless ``--no-verify`` is asked for).

Two pitfalls of the format are settled here once (ondevice-format.md 3.3, 7): the distance is
written identically at the top level, on the partitioner and on the AH proto (mismatches go
unnoticed when the top level is set), and "search k of L leaves" is written as
``(k - 0.5) / L``, because the device computes ``ceil(L * fraction)`` in float32 and ``k / L``
can round up to k + 1 leaves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from google.protobuf.message import DecodeError

from scannlite.store.bundle.ondevice.index_file import CONFIG_KEY, USER_INFO_KEY
from scannlite.store.bundle.ondevice.layout import cut_blocks
from scannlite.store.bundle.ondevice.protos import (
    AsymmetricHashingProto,
    DistanceMeasure,
    EmbeddingType,
    IndexConfig,
    ScannOnDeviceConfig,
)
from scannlite.store.bundle.ondevice.sstable_writer import TableWriter
from scannlite.store.vocabulary import LOOKUP_TYPES, Distance

#: Metadata entries are produced this many at a time (keys sorted as the device's bytewise
#: comparator wants them: "M_10" before "M_2").
_METADATA_CHUNK = 65536


def _float_matrix(values, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be a non-empty numeric 2-D array; got shape {arr.shape}, dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return arr


def scann_config(
    *,
    distance: Distance | str,
    centroids,
    leaves_to_search: int | None = None,
    codebooks: Sequence | None = None,
    lookup_type: str = "FLOAT",
) -> bytes:
    """A serialized ``ScannOnDeviceConfig``.

    distance: a :class:`~scannlite.store.vocabulary.Distance` (``"dot"``: device distances are
        negative dot products; ``"l2"``: squared L2).
    centroids: (leaves, dim) partition centres; one row (any values) gives the one-leaf index
        that stands for "no partitioner" (tflite-support's Python builder cannot write that form).
    leaves_to_search: leaves a query visits; default all.
    codebooks: None for a FLOAT index; else asymmetric hashing, one (codes, width) array per
        subspace (codes <= 256; widths sum to dim), and ``lookup_type`` FLOAT, INT16 or INT8
        (never INT8_LUT16: the device builds no lookup table for it).
    """
    try:
        measure = DistanceMeasure[Distance(distance).device]
    except ValueError:
        raise ValueError(f"distance must be one of {[d.value for d in Distance]}; got {distance!r}") from None
    leaves = _float_matrix(centroids, "centroids")
    count, dim = leaves.shape
    if leaves_to_search is None:
        leaves_to_search = count
    if (
        isinstance(leaves_to_search, bool)
        or not isinstance(leaves_to_search, (int, np.integer))
        or not 1 <= leaves_to_search <= count
    ):
        raise ValueError(f"leaves_to_search must be an integer in [1, {count}]; got {leaves_to_search!r}")

    config = ScannOnDeviceConfig()
    config.query_distance = measure
    config.partitioner.query_distance = measure
    config.partitioner.search_fraction = 1.0 if leaves_to_search == count else (leaves_to_search - 0.5) / count
    for row in leaves:
        config.partitioner.leaf.add().dimension.extend(row.tolist())

    if codebooks is not None:
        if lookup_type not in LOOKUP_TYPES:
            raise ValueError(f"lookup_type must be one of {LOOKUP_TYPES}; got {lookup_type!r}")
        if isinstance(codebooks, np.ndarray) or not isinstance(codebooks, Sequence) or not codebooks:
            raise ValueError("codebooks must be a non-empty list of (codes, width) arrays")
        ah = config.indexer.asymmetric_hashing
        ah.query_distance = measure
        ah.lookup_type = getattr(AsymmetricHashingProto, lookup_type)
        width = 0
        for s, book in enumerate(codebooks):
            book = _float_matrix(book, f"codebooks[{s}]")
            if book.shape[0] > 256:
                raise ValueError(f"codebooks[{s}] has {book.shape[0]} codes; one byte holds at most 256")
            subspace = ah.subspace.add()
            for centre in book:
                subspace.entry.add().dimension.extend(centre.tolist())
            width += book.shape[1]
        if width != dim:
            raise ValueError(f"codebook widths sum to {width}, but centroids have dimension {dim}")
    elif lookup_type != "FLOAT":
        raise ValueError("lookup_type applies to asymmetric hashing only; give codebooks")
    return config.SerializeToString()


def check_index_inputs(serialized_config: bytes, embedding_dim: int, database: np.ndarray, hashed: bool):
    """The parsed ``ScannOnDeviceConfig``, once this refuses, in one line, what the builder
    accepts but the device then mis-serves.

    tflite-support's builder checks counts only. Unchecked by it and by the Task Library: a
    float index whose rows differ in width from the centroids (the device silently returns
    nothing or wrong neighbours), AH codes beyond their codebook, and an indexer/database
    mismatch the searcher rejects only when a phone loads the bundle ("Invalid IndexConfig").
    """
    config = ScannOnDeviceConfig()
    try:
        config.ParseFromString(bytes(serialized_config))
    except DecodeError:
        raise ValueError("serialized_config is not a serialized ScannOnDeviceConfig") from None
    leaves = config.partitioner.leaf
    if not leaves:
        raise ValueError(
            "the config has no partitioner leaves; an index needs at least one "
            "(one leaf with search_fraction 1.0 stands for 'no partitioner')"
        )
    widths = {len(leaf.dimension) for leaf in leaves}
    if len(widths) != 1:
        raise ValueError(f"partitioner centroids differ in dimension: {sorted(widths)}")
    dim = widths.pop()
    has_ah = config.HasField("indexer") and config.indexer.HasField("asymmetric_hashing")
    if not hashed:
        if config.HasField("indexer"):
            raise ValueError("a float database needs a config without an indexer (asymmetric hashing)")
        if embedding_dim != dim:
            raise ValueError(f"float vectors have dimension {embedding_dim} but the centroids {dim}")
        return config
    if not has_ah:
        raise ValueError("a hashed (uint8) database needs a config with asymmetric hashing codebooks")
    subspaces = config.indexer.asymmetric_hashing.subspace
    if len(subspaces) != embedding_dim:
        raise ValueError(f"hashed codes have {embedding_dim} bytes per point but the config {len(subspaces)} subspaces")
    total = 0
    for s, subspace in enumerate(subspaces):
        if not subspace.entry:
            raise ValueError(f"codebook {s} is empty")
        total += len(subspace.entry[0].dimension)
    if total != dim:
        raise ValueError(f"codebook widths sum to {total} but the centroids have dimension {dim}")
    if database.size:
        codes = database.reshape(-1, embedding_dim)
        sizes = np.array([len(subspace.entry) for subspace in subspaces])
        bad = np.flatnonzero(codes.max(axis=0) >= sizes)
        if bad.size:
            s = int(bad[0])
            raise ValueError(
                f"codes in subspace {s} reach {int(codes[:, s].max())} but its codebook has {int(sizes[s])} entries"
            )
    return config


def _metadata_entries(labels: Sequence[bytes], ids: np.ndarray) -> Iterator[tuple[bytes, bytes]]:
    """``(M_<id>, label)`` for every row, in bytewise key order; ``ids[r]`` is row r's id."""
    if not len(ids):
        return
    keys = ids.astype(f"S{len(str(int(ids.max())))}")
    # numpy pads shorter byte strings with NULs, which sort first: "1" < "10" < "2", as LevelDB.
    order = np.argsort(keys, kind="stable")
    for start in range(0, len(order), _METADATA_CHUNK):
        rows = order[start : start + _METADATA_CHUNK]
        for key, row in zip(keys[rows].tolist(), rows.tolist()):
            yield b"M_" + key, labels[row]


def write_index(
    out,
    *,
    config: bytes,
    database: np.ndarray,
    sizes: Sequence[int] | np.ndarray,
    labels: Sequence[bytes],
    user_info: bytes | None,
    offsets: Sequence[int] | np.ndarray | None = None,
    blocks: str = "content",
    compress_metadata: bool = False,
) -> int:
    """Write an index to the binary file ``out``; return its size in bytes.

    ``config``: a serialized ``ScannOnDeviceConfig`` (:func:`scann_config`). ``database``:
    (n, embedding_dim) uint8 asymmetric-hashing codes or float32 vectors, **grouped by leaf**
    (``sizes[p]`` rows for leaf p, in leaf order); ``labels[r]``: what a search returns for row
    r. ``offsets``: the first result id of each leaf (default: the running count, as
    tflite-support's builder numbers them; see :mod:`.layout` for slotted ids). ``blocks`` and
    ``compress_metadata``: :func:`~.layout.cut_blocks`.
    """
    database = np.asarray(database)
    if database.ndim != 2 or database.dtype not in (np.uint8, np.float32):
        raise ValueError(f"database must be a 2-D uint8 or float32 array; got {database.dtype} {database.shape}")
    hashed = database.dtype == np.uint8
    n, dim = database.shape
    sizes = np.asarray(sizes, dtype=np.int64)  # one array from here on
    if sizes.sum() != n or len(labels) != n or (sizes < 0).any():
        raise ValueError(f"{n} rows, {len(labels)} labels and leaf sizes summing to {int(sizes.sum())} disagree")
    scann = check_index_inputs(config, dim, database, hashed)
    if len(sizes) != len(scann.partitioner.leaf):
        raise ValueError(f"{len(sizes)} leaf sizes for {len(scann.partitioner.leaf)} leaves")
    rows = np.concatenate([[0], np.cumsum(sizes)])
    offsets = rows[:-1] if offsets is None else np.asarray(offsets, dtype=np.int64)
    if len(offsets) != len(sizes) or (offsets < 0).any() or (offsets[1:] < offsets[:-1] + sizes[:-1]).any():
        raise ValueError("offsets must give each leaf its own range of ids, in leaf order")
    index_config = IndexConfig(
        scann_config=scann,
        embedding_dim=dim,
        embedding_type=EmbeddingType.UINT8 if hashed else EmbeddingType.FLOAT,
        global_partition_offsets=[int(o) for o in offsets],
    )
    ids = np.repeat(offsets - rows[:-1], sizes) + np.arange(n, dtype=np.int64)

    def entries() -> Iterator[tuple[bytes, bytes]]:
        for p in sorted(range(len(sizes)), key=str):  # "E_10" comes before "E_2"
            yield b"E_%d" % p, database[rows[p] : rows[p + 1]].tobytes()
        yield CONFIG_KEY, index_config.SerializeToString()
        yield from _metadata_entries(labels, ids)
        if user_info is not None:
            yield USER_INFO_KEY, bytes(user_info)

    writer = TableWriter(out)
    for block in cut_blocks(entries(), blocks=blocks, compress_metadata=compress_metadata):
        writer.add_block(*block)
    return writer.finish()
