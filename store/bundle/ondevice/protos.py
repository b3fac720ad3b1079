"""IndexConfig and the ScaNN on-device protos, as protobuf message classes built at import time.

tflite-support ships generated code for ``serialized_searcher.proto`` only, and it runs only on
protobuf's pure-Python implementation (docs/stack.md). So both files are declared here, field for
field as upstream (``scann_ondevice/cc/core/serialized_searcher.proto``,
``scann_ondevice/proto/index_config.proto``; tests compare the first with the generated module),
in a private descriptor pool: device processes load tflite-support's generated protos, under the
same full names, into the default one. Both implementations work (upb in the store process, pure
Python in device processes).

Unset fields read as the proto2 defaults the Task Library sees; ``HasField`` tells presence.
Readers use :class:`ConfigView`: numpy matrices, :class:`~enum.IntEnum` members, None for absent parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from scannlite.store.bundle.ondevice.errors import IndexFormatError

SEARCHER_PROTO = "tensorflow_lite_support/scann_ondevice/cc/core/serialized_searcher.proto"
INDEX_CONFIG_PROTO = "tensorflow_lite_support/scann_ondevice/proto/index_config.proto"


DistanceMeasure = IntEnum("DistanceMeasure", [("SQUARED_L2_DISTANCE", 0), ("DOT_PRODUCT", 1), ("UNSPECIFIED", 2)])
LookupType = IntEnum("LookupType", [("FLOAT", 0), ("INT16", 1), ("INT8", 2), ("INT8_LUT16", 3)])  # of AH
EmbeddingType = IntEnum("EmbeddingType", [("UNSPECIFIED", 0), ("FLOAT", 1), ("UINT8", 2)])  # IndexConfig.Type

_F = descriptor_pb2.FieldDescriptorProto
_CORE = ".tflite.scann_ondevice.core."


def _field(msg, name: str, number: int, kind: int, type_name: str = "", default: str = "", repeated: bool = False):
    field = msg.field.add(
        name=name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    )
    if type_name:
        field.type_name = type_name
    if default:
        field.default_value = default
    if repeated and kind != _F.TYPE_MESSAGE:
        field.options.packed = True  # every repeated scalar of these protos is packed
    return field


def _enum(container, name: str, values: type[IntEnum]) -> None:
    enum = container.add(name=name)
    for member in values:
        enum.value.add(name=member.name, number=member.value)


def file_descriptors() -> list[descriptor_pb2.FileDescriptorProto]:
    """The two .proto files, in dependency order."""
    searcher = descriptor_pb2.FileDescriptorProto(name=SEARCHER_PROTO, package="tflite.scann_ondevice.core")
    distance, message, floats = _CORE + "DistanceMeasure", _F.TYPE_MESSAGE, _F.TYPE_FLOAT
    part = searcher.message_type.add(name="PartitionerProto")
    _field(part, "leaf", 1, message, _CORE + "PartitionerProto.Leaf", repeated=True)
    _field(part, "search_fraction", 2, floats, default="1")
    _field(part, "query_distance", 3, _F.TYPE_ENUM, distance, "SQUARED_L2_DISTANCE")
    _field(part.nested_type.add(name="Leaf"), "dimension", 1, floats, repeated=True)
    ah = searcher.message_type.add(name="AsymmetricHashingProto")
    _field(ah, "subspace", 1, message, _CORE + "AsymmetricHashingProto.SubspaceCodebook", repeated=True)
    _field(ah, "query_distance", 2, _F.TYPE_ENUM, distance, "SQUARED_L2_DISTANCE")
    _field(ah, "lookup_type", 3, _F.TYPE_ENUM, _CORE + "AsymmetricHashingProto.LookupType", "FLOAT")
    _field(ah.nested_type.add(name="CodebookEntry"), "dimension", 1, floats, repeated=True)
    _field(
        ah.nested_type.add(name="SubspaceCodebook"),
        "entry",
        1,
        message,
        _CORE + "AsymmetricHashingProto.CodebookEntry",
        repeated=True,
    )
    _enum(ah.enum_type, "LookupType", LookupType)
    indexer = searcher.message_type.add(name="IndexerProto")
    _field(indexer, "asymmetric_hashing", 1, message, _CORE + "AsymmetricHashingProto").oneof_index = 0
    indexer.oneof_decl.add(name="indexer")
    scann = searcher.message_type.add(name="ScannOnDeviceConfig")
    _field(scann, "query_distance", 1, _F.TYPE_ENUM, distance, "UNSPECIFIED")
    _field(scann, "indexer", 2, message, _CORE + "IndexerProto")
    _field(scann, "partitioner", 3, message, _CORE + "PartitionerProto")
    _enum(searcher.enum_type, "DistanceMeasure", DistanceMeasure)

    index = descriptor_pb2.FileDescriptorProto(
        name=INDEX_CONFIG_PROTO, package="tflite.scann_ondevice", dependency=[SEARCHER_PROTO]
    )
    config = index.message_type.add(name="IndexConfig")
    _field(config, "scann_config", 1, message, _CORE + "ScannOnDeviceConfig")
    _field(config, "embedding_type", 2, _F.TYPE_ENUM, ".tflite.scann_ondevice.IndexConfig.Type")
    _field(config, "embedding_dim", 3, _F.TYPE_UINT32)
    _field(config, "global_partition_offsets", 4, _F.TYPE_UINT32, repeated=True)
    _enum(config.enum_type, "Type", EmbeddingType)
    return [searcher, index]


_POOL = descriptor_pool.DescriptorPool()
for _file in file_descriptors():
    _POOL.Add(_file)


def _message_class(full_name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


IndexConfig = _message_class("tflite.scann_ondevice.IndexConfig")
ScannOnDeviceConfig = _message_class("tflite.scann_ondevice.core.ScannOnDeviceConfig")
PartitionerProto = _message_class("tflite.scann_ondevice.core.PartitionerProto")
IndexerProto = _message_class("tflite.scann_ondevice.core.IndexerProto")
AsymmetricHashingProto = _message_class("tflite.scann_ondevice.core.AsymmetricHashingProto")


def decode_index_config(data: bytes):
    """Parse an ``INDEX_CONFIG`` value; malformed wire data raises :class:`IndexFormatError`."""
    try:
        return IndexConfig.FromString(bytes(data))
    except DecodeError as exc:
        raise IndexFormatError(f"invalid IndexConfig proto: {exc}") from None


def _matrix(rows, owner: str, row_name: str) -> np.ndarray:
    """Stack repeated ``dimension`` fields; a ragged matrix is refused (the Task Library cannot load it)."""
    rows = [np.fromiter(row.dimension, np.float32, len(row.dimension)) for row in rows]
    for i, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise IndexFormatError(
                f"invalid IndexConfig: {owner} {row_name} {i} has {len(row)} "
                f"dimensions but {row_name} 0 has {len(rows[0])}"
            )
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


@dataclass(frozen=True, eq=False)
class Partitioner:
    """A PartitionerProto as the searcher reads it: row ``i`` of ``centroids`` is leaf ``i``."""

    centroids: np.ndarray
    search_fraction: float
    query_distance: DistanceMeasure

    @property
    def num_leaves(self) -> int:
        return int(self.centroids.shape[0])


@dataclass(frozen=True, eq=False)
class AsymmetricHashing:
    """Product-quantization codebooks: ``codebooks[s]`` is subspace ``s``, shape (K, d_s)."""

    codebooks: list[np.ndarray]
    query_distance: DistanceMeasure
    lookup_type: LookupType

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


@dataclass(frozen=True, eq=False)
class ConfigView:
    """An IndexConfig as the Task Library reads it; ``message`` is the protobuf message."""

    message: Any  # a message class built at import time from descriptors: no static type
    partitioner: Partitioner | None
    asymmetric_hashing: AsymmetricHashing | None

    @classmethod
    def decode(cls, data: bytes) -> ConfigView:
        msg = decode_index_config(data)
        scann, part, ah = msg.scann_config, None, None
        if scann.HasField("partitioner"):
            p = scann.partitioner
            part = Partitioner(
                _matrix(p.leaf, "partitioner", "leaf"), p.search_fraction, DistanceMeasure(p.query_distance)
            )
        if scann.indexer.HasField("asymmetric_hashing"):
            a = scann.indexer.asymmetric_hashing
            books = [_matrix(s.entry, f"codebook of subspace {i}", "entry") for i, s in enumerate(a.subspace)]
            ah = AsymmetricHashing(books, DistanceMeasure(a.query_distance), LookupType(a.lookup_type))
        return cls(msg, part, ah)

    @property
    def embedding_type(self) -> EmbeddingType:
        return EmbeddingType(self.message.embedding_type)

    @property
    def embedding_dim(self) -> int:
        return self.message.embedding_dim

    @property
    def offsets(self) -> list[int]:
        return list(self.message.global_partition_offsets)

    @property
    def has_indexer(self) -> bool:
        return self.message.scann_config.HasField("indexer")

    def resolve_distance(self) -> tuple[DistanceMeasure | None, str | None]:
        """The measure the Task Library searches with, or (None, its error message).

        Mirrors ``GetDistanceMeasure`` in ``cc/task/processor/embedding_searcher.cc``: the
        top level wins; if UNSPECIFIED, the indexer's, else the partitioner's, and only then
        is a partitioner disagreement an error.
        """
        measure = DistanceMeasure(self.message.scann_config.query_distance)
        if measure != DistanceMeasure.UNSPECIFIED:
            return measure, None
        part = self.partitioner
        if self.asymmetric_hashing is not None:
            measure = self.asymmetric_hashing.query_distance
        elif part is not None:
            measure = part.query_distance
        else:
            return None, "ScaNN config does not provide mandatory DistanceMeasure"
        if measure == DistanceMeasure.UNSPECIFIED:
            return None, "UNSPECIFIED is not a valid value for ScaNN config DistanceMeasure"
        if part is not None and part.query_distance != measure:
            return None, (
                f"DistanceMeasure {measure.name} is different from DistanceMeasure "
                f"{part.query_distance.name} found in partitioner config"
            )
        return measure, None
