"""Serialized ``ScannOnDeviceConfig`` protos, made with tflite-support's generated module.

The proto module (``scann_ondevice.cc.core.serialized_searcher_pb2``) is old generated code
that protobuf 5.x accepts only with the pure-Python implementation, which a device process
selects; so this is a device-side function, called through ``run_in``.

Two pitfalls of the on-device format are settled here once (../shared/docs/ondevice-format.md 3.3, 7):
the distance is written identically at the top level, on the partitioner and on the AH proto
(mismatches go unnoticed when the top level is set), and "search k of L leaves" is written as
``(k - 0.5) / L``, because the device computes ``ceil(L * fraction)`` in float32 and ``k / L``
can round up to k + 1 leaves.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scannlite.store.vocabulary import LOOKUP_TYPES, Distance



def _float_matrix(values, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be a non-empty numeric 2-D array; got shape {arr.shape}, dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return arr


def scann_config(*, distance: Distance | str, centroids, leaves_to_search: int | None = None,
                 codebooks: Sequence | None = None, lookup_type: str = "FLOAT") -> bytes:
    """A serialized ``ScannOnDeviceConfig`` for :func:`runtime.build_index`.

    distance: a :class:`~scannlite.store.vocabulary.Distance` (``"dot"``: device distances are
        negative dot products; ``"l2"``: squared L2).
    centroids: (leaves, dim) partition centres; one row (any values) gives the one-leaf index
        the Python builder needs in place of "no partitioner".
    leaves_to_search: leaves a query visits; default all.
    codebooks: None for a FLOAT index; else asymmetric hashing, one (codes, width) array per
        subspace (codes <= 256; widths sum to dim), and ``lookup_type`` FLOAT, INT16 or INT8
        (never INT8_LUT16: the device builds no lookup table for it).
    """
    from tensorflow_lite_support.scann_ondevice.cc.core import serialized_searcher_pb2 as pb

    try:
        measure = getattr(pb, Distance(distance).device)
    except ValueError:
        raise ValueError(f"distance must be one of {[d.value for d in Distance]}; got {distance!r}") from None
    leaves = _float_matrix(centroids, "centroids")
    count, dim = leaves.shape
    if leaves_to_search is None:
        leaves_to_search = count
    if isinstance(leaves_to_search, bool) or not isinstance(leaves_to_search, (int, np.integer)) \
            or not 1 <= leaves_to_search <= count:
        raise ValueError(f"leaves_to_search must be an integer in [1, {count}]; got {leaves_to_search!r}")

    config = pb.ScannOnDeviceConfig()
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
        ah.lookup_type = getattr(pb.AsymmetricHashingProto, lookup_type)
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


def check_index_inputs(serialized_config: bytes, embedding_dim: int, database: np.ndarray, hashed: bool) -> None:
    """Refuse, in one line, what the builder accepts but the device then mis-serves.

    The builder checks counts only. Unchecked by it and by the Task Library: a float index
    whose rows differ in width from the centroids (the device silently returns nothing or
    wrong neighbours), AH codes beyond their codebook, and an indexer/database mismatch the
    searcher rejects only when a phone loads the bundle ("Invalid IndexConfig").
    """
    from google.protobuf.message import DecodeError
    from tensorflow_lite_support.scann_ondevice.cc.core import serialized_searcher_pb2 as pb

    config = pb.ScannOnDeviceConfig()
    try:
        config.ParseFromString(serialized_config)
    except DecodeError:
        raise ValueError("serialized_config is not a serialized ScannOnDeviceConfig") from None
    leaves = config.partitioner.leaf
    if not leaves:
        raise ValueError("the config has no partitioner leaves; the Python builder needs at least one "
                         "(one leaf with search_fraction 1.0 stands for 'no partitioner')")
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
        return
    if not has_ah:
        raise ValueError("a hashed (uint8) database needs a config with asymmetric hashing codebooks")
    subspaces = config.indexer.asymmetric_hashing.subspace
    if len(subspaces) != embedding_dim:
        raise ValueError(f"hashed codes have {embedding_dim} bytes per point but the config "
                         f"{len(subspaces)} subspaces")
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
            raise ValueError(f"codes in subspace {s} reach {int(codes[:, s].max())} but its codebook "
                             f"has {int(sizes[s])} entries")
