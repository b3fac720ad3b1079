"""The index config protos of the on-device ScaNN format, encoded by hand (no protobuf import).

Why by hand: the store process must read and write ``INDEX_CONFIG`` without depending on
which protobuf runtime is installed (tflite-support's generated code only runs on protobuf
5.x with the pure-Python implementation, see ../shared/docs/stack.md), and the messages are small.

Messages (proto2; field numbers from ``scann_ondevice/proto/index_config.proto`` and
``scann_ondevice/cc/core/serialized_searcher.proto``)::

    IndexConfig            1 scann_config  2 embedding_type  3 embedding_dim
                           4 global_partition_offsets (packed uint32)
    ScannOnDeviceConfig    1 query_distance  2 indexer  3 partitioner
    PartitionerProto       1 leaf (Leaf: 1 dimension, packed float)  2 search_fraction
                           3 query_distance
    IndexerProto           oneof: 1 asymmetric_hashing
    AsymmetricHashingProto 1 subspace (SubspaceCodebook: 1 entry (CodebookEntry:
                           1 dimension, packed float))  2 query_distance  3 lookup_type

Encoding matches what protobuf serializes for the same message byte for byte: fields in
ascending number order, repeated scalars packed, and proto2 optional scalars written only
when set. Presence is therefore tracked explicitly: ``None`` means "not set", and the
``effective_*`` properties give the value a reader sees (the proto default when unset).

Decoding accepts everything protobuf accepts: unpacked repeated scalars, repeated
occurrences of a message field (merged), unknown fields and groups (skipped), and enum
values outside the enum (treated as unset, as proto2 closed enums do). The one thing it
refuses is a ragged matrix (centroids or a codebook whose rows differ in width): the Task
Library cannot load those either.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from . import varint
from .errors import IndexFormatError

_U32 = 0xFFFFFFFF
_FLOAT_MAX = float(np.finfo(np.float32).max)
_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5


class DistanceMeasure(IntEnum):
    SQUARED_L2_DISTANCE = 0
    DOT_PRODUCT = 1
    UNSPECIFIED = 2


class LookupType(IntEnum):
    FLOAT = 0
    INT16 = 1
    INT8 = 2
    INT8_LUT16 = 3


class EmbeddingType(IntEnum):
    UNSPECIFIED = 0
    FLOAT = 1
    UINT8 = 2


# ---------------------------------------------------------------------------------------
# Wire-format primitives


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # negative int32/enum values take ten bytes, as in protobuf
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _len_field(number: int, payload: bytes) -> bytes:
    return _tag(number, _LENGTH) + _varint(len(payload)) + payload


def _floats_field(number: int, values: np.ndarray) -> bytes:
    """A packed repeated float field; protobuf writes nothing for an empty list."""
    if values.size == 0:
        return b""
    return _len_field(number, np.ascontiguousarray(values, dtype="<f4").tobytes())


def _pack_float(value: float) -> bytes:
    """float32 bytes; like protobuf's float field checker, out-of-range values become +-inf."""
    value = float(value)
    if value > _FLOAT_MAX:
        value = math.inf
    elif value < -_FLOAT_MAX:
        value = -math.inf
    return struct.pack("<f", value)


def _read_varint(buf: memoryview, pos: int, end: int, what: str) -> tuple[int, int]:
    try:
        value, pos = varint.decode(buf, pos, end, max_bytes=10)
    except varint.VarintError as exc:
        reason = "truncated varint" if str(exc) == "truncated" else "varint longer than 10 bytes"
        raise IndexFormatError(f"invalid {what} proto: {reason}") from None
    return value & 0xFFFFFFFFFFFFFFFF, pos


_MAX_GROUP_DEPTH = 100  # protobuf's default recursion limit


def _skip_group(buf: memoryview, pos: int, end: int, number: int, what: str, depth: int) -> int:
    if depth > _MAX_GROUP_DEPTH:
        raise IndexFormatError(f"invalid {what} proto: groups nested too deeply")
    for inner, wire_type, _, pos in _iter_raw(buf, pos, end, what, depth):
        if wire_type == _END_GROUP:
            if inner != number:
                raise IndexFormatError(f"invalid {what} proto: mismatched end of group {inner}")
            return pos
    raise IndexFormatError(f"invalid {what} proto: unterminated group {number}")


def _iter_raw(buf: memoryview, pos: int, end: int, what: str, depth: int = 0):
    """Yield (field number, wire type, value, position after the field)."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end, what)
        number, wire_type = key >> 3, key & 7
        if number == 0 or number >= 1 << 29:
            raise IndexFormatError(f"invalid {what} proto: bad field number {number}")
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos, end, what)
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            if pos + width > end:
                raise IndexFormatError(f"invalid {what} proto: truncated field {number}")
            value, pos = buf[pos:pos + width], pos + width
        elif wire_type == _LENGTH:
            length, pos = _read_varint(buf, pos, end, what)
            if length > end - pos:
                raise IndexFormatError(f"invalid {what} proto: field {number} runs past the end")
            value, pos = buf[pos:pos + length], pos + length
        elif wire_type == _START_GROUP:
            value, pos = None, _skip_group(buf, pos, end, number, what, depth + 1)
        elif wire_type == _END_GROUP:
            value = None
        else:
            raise IndexFormatError(f"invalid {what} proto: bad wire type {wire_type}")
        yield number, wire_type, value, pos


def _fields(data, what: str) -> Iterator[tuple[int, int, object]]:
    """Yield the fields of one message; stray end-group markers are errors at this level."""
    buf = memoryview(data).cast("B")
    for number, wire_type, value, _ in _iter_raw(buf, 0, len(buf), what):
        if wire_type == _END_GROUP:
            raise IndexFormatError(f"invalid {what} proto: unexpected end of group {number}")
        if wire_type != _START_GROUP:
            yield number, wire_type, value


def _enum(value: int, enum: type[IntEnum]):
    """Closed proto2 enums: unknown numbers leave the field unset (protobuf keeps them aside)."""
    if value >= 1 << 63:
        value -= 1 << 64
    try:
        return enum(value)
    except ValueError:
        return None


def _packed_varints(payload: memoryview, what: str) -> list[int]:
    values, pos, end = [], 0, len(payload)
    while pos < end:
        value, pos = _read_varint(payload, pos, end, what)
        values.append(value & _U32)
    return values


def _float_chunk(wire_type: int, value, what: str) -> np.ndarray | None:
    """One occurrence of a repeated float field, packed (wire type 2) or not (5)."""
    if wire_type == _LENGTH:
        if len(value) % 4:
            raise IndexFormatError(f"invalid {what} proto: packed floats of {len(value)} bytes")
        return np.frombuffer(value, dtype="<f4")
    if wire_type == _FIXED32:
        return np.frombuffer(value, dtype="<f4")
    return None  # wrong wire type: protobuf treats the field as unknown


def _decode_floats(data, what: str) -> np.ndarray:
    """Decode a message whose field 1 is ``repeated float dimension`` (Leaf, CodebookEntry)."""
    chunks = []
    for number, wire_type, value in _fields(data, what):
        if number == 1:
            chunk = _float_chunk(wire_type, value, what)
            if chunk is not None:
                chunks.append(chunk)
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def _stack(rows: list[np.ndarray], owner: str, row_name: str) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise IndexFormatError(f"invalid IndexConfig: {owner} {row_name} {i} has {len(row)} "
                                   f"dimensions but {row_name} 0 has {width}")
    return np.stack(rows).astype(np.float32, copy=False).reshape(len(rows), width)


def _as_matrix(value, name: str) -> np.ndarray:
    matrix = np.asarray(value, dtype=np.float32)
    if matrix.ndim == 1 and matrix.size == 0:
        matrix = matrix.reshape(0, 0)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {matrix.shape}")
    return matrix


class _Message:
    """Shared behaviour: equality by encoding, so numpy fields do not break ``==``."""

    def to_bytes(self) -> bytes:  # pragma: no cover - every message overrides it
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, like protobuf messages


# ---------------------------------------------------------------------------------------
# Messages


@dataclass(eq=False)
class PartitionerProto(_Message):
    """The tree partitioner: one centroid per leaf (row ``i`` of ``centroids`` is leaf ``i``)."""

    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    search_fraction: float | None = None
    query_distance: DistanceMeasure | None = None

    def __post_init__(self) -> None:
        self.centroids = _as_matrix(self.centroids, "centroids")

    @property
    def num_leaves(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def effective_search_fraction(self) -> float:
        return 1.0 if self.search_fraction is None else self.search_fraction

    @property
    def effective_query_distance(self) -> DistanceMeasure:
        return DistanceMeasure.SQUARED_L2_DISTANCE if self.query_distance is None else self.query_distance

    def to_bytes(self) -> bytes:
        out = [_len_field(1, _floats_field(1, row)) for row in self.centroids]
        if self.search_fraction is not None:
            out.append(_tag(2, _FIXED32) + _pack_float(self.search_fraction))
        if self.query_distance is not None:
            out.append(_tag(3, _VARINT) + _varint(int(self.query_distance)))
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data, into: PartitionerProto | None = None) -> PartitionerProto:
        msg = into if into is not None else cls()
        leaves = list(msg.centroids)
        for number, wire_type, value in _fields(data, "PartitionerProto"):
            if number == 1 and wire_type == _LENGTH:
                leaves.append(_decode_floats(value, "PartitionerProto.Leaf"))
            elif number == 2 and wire_type == _FIXED32:
                msg.search_fraction = struct.unpack("<f", value)[0]
            elif number == 3 and wire_type == _VARINT:
                enum = _enum(value, DistanceMeasure)
                if enum is not None:
                    msg.query_distance = enum
        msg.centroids = _stack(leaves, "partitioner", "leaf")
        return msg


@dataclass(eq=False)
class AsymmetricHashingProto(_Message):
    """Product-quantization codebooks: ``codebooks[s]`` is subspace ``s``, shape (K, d_s)."""

    codebooks: list[np.ndarray] = field(default_factory=list)
    query_distance: DistanceMeasure | None = None
    lookup_type: LookupType | None = None

    def __post_init__(self) -> None:
        self.codebooks = [_as_matrix(cb, f"codebooks[{i}]") for i, cb in enumerate(self.codebooks)]

    @property
    def num_subspaces(self) -> int:
        return len(self.codebooks)

    @property
    def subspace_dims(self) -> list[int]:
        return [int(cb.shape[1]) for cb in self.codebooks]

    @property
    def num_codes(self) -> list[int]:
        return [int(cb.shape[0]) for cb in self.codebooks]

    @property
    def dims(self) -> int:
        """Width of a query this quantizer accepts: the sum of the subspace widths."""
        return sum(self.subspace_dims)

    @property
    def effective_query_distance(self) -> DistanceMeasure:
        return DistanceMeasure.SQUARED_L2_DISTANCE if self.query_distance is None else self.query_distance

    @property
    def effective_lookup_type(self) -> LookupType:
        return LookupType.FLOAT if self.lookup_type is None else self.lookup_type

    def to_bytes(self) -> bytes:
        out = []
        for codebook in self.codebooks:
            entries = b"".join(_len_field(1, _floats_field(1, row)) for row in codebook)
            out.append(_len_field(1, entries))
        if self.query_distance is not None:
            out.append(_tag(2, _VARINT) + _varint(int(self.query_distance)))
        if self.lookup_type is not None:
            out.append(_tag(3, _VARINT) + _varint(int(self.lookup_type)))
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data, into: AsymmetricHashingProto | None = None) -> AsymmetricHashingProto:
        msg = into if into is not None else cls()
        for number, wire_type, value in _fields(data, "AsymmetricHashingProto"):
            if number == 1 and wire_type == _LENGTH:
                rows = [_decode_floats(entry, "AsymmetricHashingProto.CodebookEntry")
                        for num, wt, entry in _fields(value, "AsymmetricHashingProto.SubspaceCodebook")
                        if num == 1 and wt == _LENGTH]
                msg.codebooks.append(_stack(rows, f"codebook of subspace {len(msg.codebooks)}", "entry"))
            elif number == 2 and wire_type == _VARINT:
                enum = _enum(value, DistanceMeasure)
                if enum is not None:
                    msg.query_distance = enum
            elif number == 3 and wire_type == _VARINT:
                enum = _enum(value, LookupType)
                if enum is not None:
                    msg.lookup_type = enum
        return msg


@dataclass(eq=False)
class IndexerProto(_Message):
    """A oneof with a single option; an empty (set but unfilled) indexer is still "present"."""

    asymmetric_hashing: AsymmetricHashingProto | None = None

    def to_bytes(self) -> bytes:
        if self.asymmetric_hashing is None:
            return b""
        return _len_field(1, self.asymmetric_hashing.to_bytes())

    @classmethod
    def from_bytes(cls, data, into: IndexerProto | None = None) -> IndexerProto:
        msg = into if into is not None else cls()
        for number, wire_type, value in _fields(data, "IndexerProto"):
            if number == 1 and wire_type == _LENGTH:
                msg.asymmetric_hashing = AsymmetricHashingProto.from_bytes(value, msg.asymmetric_hashing)
        return msg


@dataclass(eq=False)
class ScannOnDeviceConfig(_Message):
    query_distance: DistanceMeasure | None = None
    indexer: IndexerProto | None = None
    partitioner: PartitionerProto | None = None

    @property
    def effective_query_distance(self) -> DistanceMeasure:
        return DistanceMeasure.UNSPECIFIED if self.query_distance is None else self.query_distance

    @property
    def asymmetric_hashing(self) -> AsymmetricHashingProto | None:
        return self.indexer.asymmetric_hashing if self.indexer is not None else None

    def resolve_distance(self) -> tuple[DistanceMeasure | None, str | None]:
        """The measure the Task Library searches with, or (None, its error message).

        Mirrors ``GetDistanceMeasure`` in ``cc/task/processor/embedding_searcher.cc``: the
        top level wins; if UNSPECIFIED, the indexer's, else the partitioner's, and only then
        is a partitioner disagreement an error.
        """
        measure = self.effective_query_distance
        if measure != DistanceMeasure.UNSPECIFIED:
            return measure, None
        if self.asymmetric_hashing is not None:
            measure = self.asymmetric_hashing.effective_query_distance
        elif self.partitioner is not None:
            measure = self.partitioner.effective_query_distance
        else:
            return None, "ScaNN config does not provide mandatory DistanceMeasure"
        if measure == DistanceMeasure.UNSPECIFIED:
            return None, "UNSPECIFIED is not a valid value for ScaNN config DistanceMeasure"
        if self.partitioner is not None and self.partitioner.effective_query_distance != measure:
            return None, (f"DistanceMeasure {measure.name} is different from DistanceMeasure "
                          f"{self.partitioner.effective_query_distance.name} found in partitioner config")
        return measure, None

    def to_bytes(self) -> bytes:
        out = []
        if self.query_distance is not None:
            out.append(_tag(1, _VARINT) + _varint(int(self.query_distance)))
        if self.indexer is not None:
            out.append(_len_field(2, self.indexer.to_bytes()))
        if self.partitioner is not None:
            out.append(_len_field(3, self.partitioner.to_bytes()))
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data, into: ScannOnDeviceConfig | None = None) -> ScannOnDeviceConfig:
        msg = into if into is not None else cls()
        for number, wire_type, value in _fields(data, "ScannOnDeviceConfig"):
            if number == 1 and wire_type == _VARINT:
                enum = _enum(value, DistanceMeasure)
                if enum is not None:
                    msg.query_distance = enum
            elif number == 2 and wire_type == _LENGTH:
                msg.indexer = IndexerProto.from_bytes(value, msg.indexer)
            elif number == 3 and wire_type == _LENGTH:
                msg.partitioner = PartitionerProto.from_bytes(value, msg.partitioner)
        return msg


@dataclass(eq=False)
class IndexConfig(_Message):
    """The ``INDEX_CONFIG`` value of an index (package ``tflite.scann_ondevice``)."""

    scann_config: ScannOnDeviceConfig | None = None
    embedding_type: EmbeddingType | None = None
    embedding_dim: int | None = None
    global_partition_offsets: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.global_partition_offsets = [int(v) for v in self.global_partition_offsets]

    @property
    def effective_embedding_type(self) -> EmbeddingType:
        return EmbeddingType.UNSPECIFIED if self.embedding_type is None else self.embedding_type

    @property
    def effective_embedding_dim(self) -> int:
        return 0 if self.embedding_dim is None else self.embedding_dim

    @property
    def effective_scann_config(self) -> ScannOnDeviceConfig:
        """What C++ ``scann_config()`` returns: the message, or an empty default one."""
        return self.scann_config if self.scann_config is not None else ScannOnDeviceConfig()

    def to_bytes(self) -> bytes:
        out = []
        if self.scann_config is not None:
            out.append(_len_field(1, self.scann_config.to_bytes()))
        if self.embedding_type is not None:
            out.append(_tag(2, _VARINT) + _varint(int(self.embedding_type)))
        if self.embedding_dim is not None:
            out.append(_tag(3, _VARINT) + _varint(_check_u32(self.embedding_dim, "embedding_dim")))
        if self.global_partition_offsets:
            packed = b"".join(_varint(_check_u32(v, "global_partition_offsets"))
                              for v in self.global_partition_offsets)
            out.append(_len_field(4, packed))
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data, into: IndexConfig | None = None) -> IndexConfig:
        msg = into if into is not None else cls()
        for number, wire_type, value in _fields(data, "IndexConfig"):
            if number == 1 and wire_type == _LENGTH:
                msg.scann_config = ScannOnDeviceConfig.from_bytes(value, msg.scann_config)
            elif number == 2 and wire_type == _VARINT:
                enum = _enum(value, EmbeddingType)
                if enum is not None:
                    msg.embedding_type = enum
            elif number == 3 and wire_type == _VARINT:
                msg.embedding_dim = value & _U32
            elif number == 4 and wire_type == _LENGTH:
                msg.global_partition_offsets.extend(_packed_varints(value, "IndexConfig"))
            elif number == 4 and wire_type == _VARINT:
                msg.global_partition_offsets.append(value & _U32)
        return msg


def _check_u32(value: int, name: str) -> int:
    value = int(value)
    if not 0 <= value <= _U32:
        raise ValueError(f"{name} must fit in uint32, got {value}")
    return value


def encode_index_config(config: IndexConfig) -> bytes:
    return config.to_bytes()


def decode_index_config(data: bytes) -> IndexConfig:
    return IndexConfig.from_bytes(data)

