"""Read an on-device ScaNN index (``*.ldb``) into numpy arrays, and check what the device won't.

The Task Library loads an index with almost no consistency checks (docs/ondevice-format.md
section 3.3): wrong offsets, missing partitions or mismatched dimensions give empty or wrong
results, or crash the process. :meth:`OnDeviceIndex.validate` lists those problems so the
exporter and ``scannlite bundle info`` can refuse or explain a file before a phone sees it.

Reading is strict about the container (SSTable, proto wire format, a missing INDEX_CONFIG:
:class:`IndexFormatError`) and lenient about meaning: a readable index with inconsistent
content loads, and ``validate()`` says what is wrong with it.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.protos import AsymmetricHashing, ConfigView, EmbeddingType, LookupType
from scannlite.store.bundle.ondevice.sstable import SNAPPY_COMPRESSION, Table, check_blocks, lookup, read_table

CONFIG_KEY = b"INDEX_CONFIG"
USER_INFO_KEY = b"USER_INFO"
# The builder formats ids with "%lu": decimal, no zero padding. Anything else is never looked up.
_ID_KEY = re.compile(rb"([EM])_(0|[1-9][0-9]*)\Z")


@dataclass(frozen=True, eq=False)
class OnDeviceIndex(ConfigView):
    """An index as the searcher sees it: its INDEX_CONFIG (the :class:`ConfigView` it extends) and data.

    ``partitions[p]`` is ``E_p`` as a matrix: uint8 (n, embedding_dim) codes for UINT8,
    float32 (n, embedding_dim) vectors for FLOAT, or None when the key is missing. Like the
    Task Library, trailing bytes that do not fill a whole row are ignored (``validate()``
    reports them). The arrays are read-only views of the table's values. ``metadata[r]`` is
    the ``M_<id>`` (None if missing) of row r, rows counted in partition order: the searcher
    reports row i of partition p as id ``global_partition_offsets[p] + i``. The builder makes
    ids and rows equal; a slotted layout (:mod:`.layout`) leaves gaps between partitions.
    """

    table: Table
    partitions: list[np.ndarray | None]
    metadata: list[bytes | None]
    user_info: bytes
    has_user_info: bool
    extra_keys: list[bytes]

    # -- plain facts --------------------------------------------------------------------

    @cached_property  # the partitions never change; ids(p) asks once per partition
    def partition_sizes(self) -> list[int]:
        return [0 if part is None else int(part.shape[0]) for part in self.partitions]

    @property
    def num_items(self) -> int:
        return sum(self.partition_sizes)

    @property
    def query_dim(self) -> int | None:
        """Width of the query embedding this index expects (the model's output size)."""
        if self.asymmetric_hashing is not None:
            return self.asymmetric_hashing.dims
        if self.embedding_type == EmbeddingType.FLOAT:
            return self.embedding_dim
        return None

    @property
    def leaves_searched(self) -> int:
        """min(ceil(L * search_fraction), L) in float32, as the searcher computes it."""
        part = self.partitioner
        if part is None:
            return 1
        product = np.float32(part.num_leaves) * np.float32(part.search_fraction)
        if not np.isfinite(product):
            return 0 if np.isnan(product) else part.num_leaves
        return max(0, min(math.ceil(float(product)), part.num_leaves))

    def ids(self, p: int) -> range:
        """Point ids (``M_<id>``) the searcher reports for the rows of partition ``p``.

        The searcher adds ``global_partition_offsets[p]`` to the row number; without an
        offset for ``p`` (an invalid index) the builder's running count is used.
        """
        offsets = self.message.global_partition_offsets
        start = offsets[p] if p < len(offsets) else sum(self.partition_sizes[:p])
        return range(start, start + self.partition_sizes[p])

    def vectors(self) -> np.ndarray:
        """All rows in global id order (partition-grouped), for FLOAT or UINT8 indices."""
        parts = [p for p in self.partitions if p is not None]
        if not parts:
            dtype = np.float32 if self.embedding_type == EmbeddingType.FLOAT else np.uint8
            return np.zeros((0, self.embedding_dim), dtype=dtype)
        return np.concatenate(parts)

    # -- checks -------------------------------------------------------------------------

    def validate(self) -> list[str]:
        """One line per inconsistency, including the ones the Task Library never checks."""
        problems: list[str] = []
        etype, dim, indexer = self.embedding_type, self.embedding_dim, self.has_indexer
        ah, part = self.asymmetric_hashing, self.partitioner

        if not self.message.HasField("scann_config"):
            problems.append("INDEX_CONFIG has no scann_config")
        if etype == EmbeddingType.UNSPECIFIED:
            problems.append("embedding_type is UNSPECIFIED (the Task Library refuses the index)")
        elif etype == EmbeddingType.FLOAT and indexer:
            problems.append("embedding_type is FLOAT but the config has an indexer (product quantization)")
        elif etype == EmbeddingType.UINT8 and not indexer:
            problems.append("embedding_type is UINT8 but the config has no indexer (product quantization codebooks)")
        if indexer and ah is None:
            problems.append("the indexer is set but holds no asymmetric_hashing")
        if dim == 0:
            problems.append("embedding_dim is 0 or unset (the searcher divides by it)")

        measure, error = self.resolve_distance()
        if error:
            problems.append(f"distance: {error}")
        for scorer, owner in (("the partitioner scores leaves with", part), ("asymmetric hashing computes", ah)):
            if measure is not None and owner is not None and owner.query_distance != measure:
                problems.append(f"{scorer} {owner.query_distance.name} but the index searches with {measure.name}")

        problems += self._check_partitioner(part, ah, etype, dim)
        if ah is not None:
            problems += self._check_codebooks(ah, dim)
        problems += self._check_partitions_and_offsets(etype, dim)
        problems += self._check_metadata()
        return problems

    def _check_partitioner(self, part, ah, etype, dim) -> list[str]:
        if part is None:
            return []
        problems = []
        if part.num_leaves == 0:
            problems.append("the partitioner has 0 leaves: no partition is ever searched")
        elif self.leaves_searched < 1:
            problems.append(f"search_fraction {part.search_fraction:g} searches no leaf of {part.num_leaves}")
        if part.num_leaves:
            width = int(part.centroids.shape[1])
            expected = ah.dims if ah is not None else (dim if etype == EmbeddingType.FLOAT else None)
            if expected is not None and width != expected:
                problems.append(f"partitioner centroids have {width} dimensions but queries have {expected}")
        return problems

    def _check_codebooks(self, ah: AsymmetricHashing, dim: int) -> list[str]:
        problems = []
        if ah.num_subspaces == 0:
            return ["asymmetric hashing has no subspaces (the Task Library cannot load it)"]
        if dim != ah.num_subspaces:
            problems.append(
                f"embedding_dim is {dim} but asymmetric hashing has {ah.num_subspaces} subspaces (one code byte each)"
            )
        codes = ah.num_codes
        if codes[0] == 0:
            problems.append("the codebook of subspace 0 has no entries (the Task Library cannot load it)")
        uneven = next((s for s, k in enumerate(codes) if k != codes[0]), None)
        if uneven is not None:
            problems.append(
                f"subspace {uneven} has {codes[uneven]} codebook entries but subspace 0 has {codes[0]} "
                "(the Task Library cannot load it)"
            )
        if max(codes) > 256:
            problems.append(f"codebooks have up to {max(codes)} entries but a uint8 code addresses 256")
        empty = [s for s, d in enumerate(ah.subspace_dims) if d == 0]
        if empty:
            problems.append(f"subspace {empty[0]} has 0 dimensions")
        if ah.lookup_type == LookupType.INT8_LUT16:
            problems.append("lookup_type INT8_LUT16 is not implemented on device (every distance is -0.0)")
        # Codes are indices into the lookup table; a code past the codebook reads garbage.
        width = min(ah.num_subspaces, dim) if dim else 0
        limits = np.array(codes[:width], dtype=np.int64)
        if width and limits.min() >= 256:
            return problems  # every uint8 code is in range: no need to read them all
        for p, rows in enumerate(self.partitions):
            if rows is None or rows.size == 0 or rows.dtype != np.uint8 or not width:
                continue
            bad = rows[:, :width].max(axis=0) >= limits
            if bad.any():
                s = int(np.argmax(bad))
                problems.append(
                    f"E_{p} holds code {int(rows[:, s].max())} for subspace {s}, "
                    f"which has only {codes[s]} codebook entries"
                )
        return problems

    def _check_partitions_and_offsets(self, etype, dim) -> list[str]:
        problems = []
        expected = self.partitioner.num_leaves if self.partitioner is not None else 1  # what the searcher addresses
        missing = [p for p in range(min(expected, len(self.partitions))) if self.partitions[p] is None]
        if missing:
            problems.append(
                f"missing key E_{missing[0]}"
                + (f" (and {len(missing) - 1} more partitions)" if len(missing) > 1 else "")
            )
        if len(self.partitions) > expected:
            problems.append(
                f"partition keys up to E_{len(self.partitions) - 1} but the index addresses {expected} partitions"
            )
        row_bytes = (4 if etype == EmbeddingType.FLOAT else 1) * dim
        for p in range(len(self.partitions)):
            raw = self.table.get(b"E_%d" % p)
            if raw is not None and row_bytes and len(raw) % row_bytes:
                problems.append(f"E_{p} has {len(raw)} bytes, not a multiple of the {row_bytes}-byte row")
        offsets = self.offsets
        if len(offsets) != expected:
            problems.append(f"global_partition_offsets has {len(offsets)} entries for {expected} partitions")
        # Gaps between partitions are fine (the searcher only adds the offset); overlaps would
        # give two rows one metadata key.
        end = 0
        for p, size in enumerate(self.partition_sizes[: len(offsets)]):
            if offsets[p] < end:
                problems.append(
                    f"global_partition_offsets[{p}] is {offsets[p]} but the partitions "
                    f"before it use ids up to {end - 1}"
                )
                break
            end = offsets[p] + size
        return problems

    def _check_metadata(self) -> list[str]:
        problems = []
        missing = [j for j, m in zip(self.row_ids(), self.metadata) if m is None]
        if missing:
            problems.append(
                f"missing key M_{missing[0]}"
                + (f" (and {len(missing) - 1} more metadata keys)" if len(missing) > 1 else "")
            )
        if self.extra_keys:
            shown = ", ".join(k.decode("latin-1") for k in self.extra_keys[:3])
            more = f" and {len(self.extra_keys) - 3} more" if len(self.extra_keys) > 3 else ""
            problems.append(f"keys the searcher never reads: {shown}{more}")
        return problems

    def row_ids(self):
        """The point id of every row, in partition order, one at a time (there may be millions)."""
        return (j for p in range(len(self.partitions)) for j in self.ids(p))

    # -- reporting ----------------------------------------------------------------------

    def summary(self) -> dict:
        """A JSON-able description for ``scannlite bundle info``."""
        measure, error = self.resolve_distance()
        part, ah = self.partitioner, self.asymmetric_hashing
        table = self.table
        e_bytes = sum(len(table.get(b"E_%d" % p, b"")) for p in range(len(self.partitions)))
        m_bytes = sum(len(m) for m in self.metadata if m is not None)
        data_blocks = [b for b in table.blocks if b.kind == "data"]
        sizes = self.partition_sizes
        return {
            "file_bytes": table.file_size,
            "embedding_type": self.embedding_type.name,
            "embedding_dim": self.embedding_dim,
            "query_dim": self.query_dim,
            "distance": measure.name if measure is not None else None,
            "distance_error": error,
            "items": self.num_items,
            "partitions": len(self.partitions),
            "partition_sizes": {"min": min(sizes, default=0), "max": max(sizes, default=0), "empty": sizes.count(0)},
            "partitioner": None
            if part is None
            else {
                "leaves": part.num_leaves,
                "centroid_dim": int(part.centroids.shape[1]),
                "search_fraction": float(part.search_fraction),
                "leaves_searched": self.leaves_searched,
                "query_distance": part.query_distance.name,
            },
            "asymmetric_hashing": None
            if ah is None
            else {
                "subspaces": ah.num_subspaces,
                "codes_per_subspace": sorted(set(ah.num_codes)),
                "subspace_dims": sorted(set(ah.subspace_dims)),
                "lookup_type": ah.lookup_type.name,
                "query_distance": ah.query_distance.name,
            },
            "bytes": {
                "embeddings": e_bytes,
                "metadata": m_bytes,
                "config": len(table.get(CONFIG_KEY, b"")),
                "user_info": len(self.user_info),
            },
            "blocks": {
                "data": len(data_blocks),
                "snappy": sum(b.compression == SNAPPY_COMPRESSION for b in data_blocks),
            },
            "has_user_info": self.has_user_info,
            "problems": self.validate(),
        }


def read_index(data: bytes, *, verify_checksums: bool = True, release=None) -> OnDeviceIndex:
    """Decode an index file; raise :class:`IndexFormatError` if it cannot be read at all.
    ``release``: see :func:`~.sstable.read_table`."""
    table = read_table(data, verify_checksums=verify_checksums, release=release)
    if CONFIG_KEY not in table:
        raise IndexFormatError("not an on-device ScaNN index: the table has no INDEX_CONFIG key")
    config = ConfigView.decode(bytes(table[CONFIG_KEY]))  # large configs (many leaves) come as views

    part_ids: dict[int, bytes] = {}
    meta_ids = array("q")  # every M_<j>'s j: millions of them, kept as 8 bytes each
    extra: list[bytes] = []
    for key in table:
        digits = key[2:]
        # M_<j> keys are millions: told apart by bytes tests, which cost a tenth of the regex.
        if key[:2] == b"M_" and digits.isdigit() and (digits[:1] != b"0" or digits == b"0") and len(digits) < 19:
            meta_ids.append(int(digits))  # (longer ids are no row's: offsets are far smaller)
            continue
        match = _ID_KEY.match(key)
        if match is not None and match.group(1) == b"E":
            part_ids[int(match.group(2))] = key
        elif key not in (CONFIG_KEY, USER_INFO_KEY):
            extra.append(key)

    etype, dim = config.embedding_type, config.embedding_dim
    dtype = np.dtype("<f4") if etype == EmbeddingType.FLOAT else np.dtype(np.uint8)
    leaves = config.partitioner.num_leaves if config.partitioner is not None else 1
    count = max([leaves] + [p + 1 for p in part_ids])
    partitions = [_as_rows(table[part_ids[p]], dtype, dim) if p in part_ids else None for p in range(count)]
    index = OnDeviceIndex(
        config.message,
        config.partitioner,
        config.asymmetric_hashing,
        table=table,
        partitions=partitions,
        metadata=[],
        user_info=bytes(table.get(USER_INFO_KEY, b"")),
        has_user_info=USER_INFO_KEY in table,
        extra_keys=[],
    )
    get = table.get
    index.metadata.extend(get(b"M_%d" % j) for j in index.row_ids())
    for r in [r for r, m in enumerate(index.metadata) if m.__class__ is memoryview]:  # labels of 64 KiB or more
        label = index.metadata[r]
        if label is not None:
            index.metadata[r] = bytes(label)
    unused = [b"M_%d" % j for j in _outside(index, np.frombuffer(meta_ids, dtype=np.int64))]
    index.extra_keys.extend(sorted(extra + unused))  # table order
    return index


def _outside(index: OnDeviceIndex, ids: np.ndarray) -> np.ndarray:
    """The ids no partition's range of point ids covers (ranges may overlap in a bad index)."""
    ranges = [index.ids(p) for p in range(len(index.partitions))]
    starts = np.array([r.start for r in ranges], dtype=np.int64)
    ends = np.array([r.stop for r in ranges], dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    starts, reach = starts[order], np.maximum.accumulate(ends[order]) if len(ends) else ends
    at = np.searchsorted(starts, ids, side="right") - 1  # the last range starting at or before each id
    covered = (at >= 0) & (ids < reach[np.maximum(at, 0)]) if len(starts) else np.zeros(len(ids), bool)
    return ids[~covered]


def read_user_info(data: bytes, *, release=None) -> bytes:
    """An index's USER_INFO (b"" if it has none), for a caller that hands the index to the Task
    Library rather than reading it: every block's checksum is checked (the Task Library reads
    whatever it is given) and INDEX_CONFIG must decode, but no entry beyond these two is parsed.
    ``release``: see :func:`~.sstable.read_table`."""
    check_blocks(data, release=release)
    config = lookup(data, CONFIG_KEY)
    if config is None:
        raise IndexFormatError("not an on-device ScaNN index: the table has no INDEX_CONFIG key")
    ConfigView.decode(bytes(config))
    return bytes(lookup(data, USER_INFO_KEY) or b"")


def _as_rows(raw: bytes, dtype: np.dtype, dim: int) -> np.ndarray:
    """View ``E_p`` as (n, dim) rows, dropping a partial last row as the searcher does."""
    if dim == 0:
        return np.zeros((0, 0), dtype=dtype.newbyteorder("="))
    rows = len(raw) // (dtype.itemsize * dim)
    flat = np.frombuffer(raw, dtype=dtype, count=rows * dim)
    return flat.astype(dtype.newbyteorder("="), copy=False).reshape(rows, dim)
