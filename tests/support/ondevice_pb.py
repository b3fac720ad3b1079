"""Device-process helpers for tests/test_ondevice_format.py: the real protobuf code and builder.

These run only in a *device* worker (``run_in("device", "ondevice_pb:...")``, with this folder
on PYTHONPATH): protobuf's pure-Python implementation, TensorFlow blocked. They are the
reference the hand-written codec in ``scannlite.store.ondevice.protos`` is compared against.

Specs are plain dicts so that nothing of scannlite's own codec is involved on this side::

    {"scann_config": {"query_distance": 1,
                      "partitioner": {"leaves": [[...], ...], "search_fraction": 0.5, "query_distance": 1},
                      "indexer": {"asymmetric_hashing": {"subspaces": [[[...], ...], ...],
                                                         "query_distance": 1, "lookup_type": 2}}},
     "embedding_type": 1, "embedding_dim": 16, "global_partition_offsets": [0, 3]}

A key that is absent means the field is not set (proto2 presence); empty repeated fields
are left out too.
"""
from __future__ import annotations

from functools import lru_cache

_INDEX_CONFIG_PROTO = "tensorflow_lite_support/scann_ondevice/proto/index_config.proto"


@lru_cache(maxsize=1)
def _classes():
    """(IndexConfig class, serialized_searcher_pb2 module).

    tflite-support 0.4.4's wheel ships serialized_searcher_pb2 but not index_config_pb2, so
    IndexConfig is declared here from index_config.proto (field numbers, types, packed
    option) and built by protobuf's own runtime on top of the generated searcher protos.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow_lite_support.scann_ondevice.cc.core import serialized_searcher_pb2 as searcher

    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_INDEX_CONFIG_PROTO)
    except KeyError:
        proto = descriptor_pb2.FileDescriptorProto(
            name=_INDEX_CONFIG_PROTO, package="tflite.scann_ondevice", syntax="proto2",
            dependency=[searcher.DESCRIPTOR.name])
        msg = proto.message_type.add(name="IndexConfig")
        enum = msg.enum_type.add(name="Type")
        for name, number in (("UNSPECIFIED", 0), ("FLOAT", 1), ("UINT8", 2)):
            enum.value.add(name=name, number=number)
        msg.field.add(name="scann_config", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                      type_name=".tflite.scann_ondevice.core.ScannOnDeviceConfig")
        msg.field.add(name="embedding_type", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_ENUM,
                      type_name=".tflite.scann_ondevice.IndexConfig.Type")
        msg.field.add(name="embedding_dim", number=3, label=F.LABEL_OPTIONAL, type=F.TYPE_UINT32)
        offsets = msg.field.add(name="global_partition_offsets", number=4, label=F.LABEL_REPEATED,
                                type=F.TYPE_UINT32)
        offsets.options.packed = True
        pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("tflite.scann_ondevice.IndexConfig")
    return message_factory.GetMessageClass(descriptor), searcher


def _fill_partitioner(msg, spec: dict) -> None:
    msg.SetInParent()
    for row in spec.get("leaves", []):
        msg.leaf.add().dimension.extend(row)
    if "search_fraction" in spec:
        msg.search_fraction = spec["search_fraction"]
    if "query_distance" in spec:
        msg.query_distance = spec["query_distance"]


def _fill_ah(msg, spec: dict) -> None:
    msg.SetInParent()
    for subspace in spec.get("subspaces", []):
        codebook = msg.subspace.add()
        for entry in subspace:
            codebook.entry.add().dimension.extend(entry)
    if "query_distance" in spec:
        msg.query_distance = spec["query_distance"]
    if "lookup_type" in spec:
        msg.lookup_type = spec["lookup_type"]


def _fill_scann(msg, spec: dict) -> None:
    msg.SetInParent()
    if "query_distance" in spec:
        msg.query_distance = spec["query_distance"]
    if "indexer" in spec:
        msg.indexer.SetInParent()
        if "asymmetric_hashing" in spec["indexer"]:
            _fill_ah(msg.indexer.asymmetric_hashing, spec["indexer"]["asymmetric_hashing"])
    if "partitioner" in spec:
        _fill_partitioner(msg.partitioner, spec["partitioner"])


def serialize_index_config(spec: dict) -> bytes:
    """IndexConfig built from ``spec`` and serialized by protobuf."""
    index_config, _ = _classes()
    msg = index_config()
    if "scann_config" in spec:
        _fill_scann(msg.scann_config, spec["scann_config"])
    if "embedding_type" in spec:
        msg.embedding_type = spec["embedding_type"]
    if "embedding_dim" in spec:
        msg.embedding_dim = spec["embedding_dim"]
    msg.global_partition_offsets.extend(spec.get("global_partition_offsets", []))
    return msg.SerializeToString()


def serialize_scann_config(spec: dict) -> bytes:
    """ScannOnDeviceConfig from the *generated* serialized_searcher_pb2 module."""
    _, searcher = _classes()
    msg = searcher.ScannOnDeviceConfig()
    _fill_scann(msg, spec)
    return msg.SerializeToString()


def _scann_to_spec(msg) -> dict:
    spec: dict = {}
    if msg.HasField("query_distance"):
        spec["query_distance"] = msg.query_distance
    if msg.HasField("indexer"):
        spec["indexer"] = {}
        if msg.indexer.HasField("asymmetric_hashing"):
            ah = msg.indexer.asymmetric_hashing
            out = {"subspaces": [[list(e.dimension) for e in s.entry] for s in ah.subspace]} if ah.subspace else {}
            for name in ("query_distance", "lookup_type"):
                if ah.HasField(name):
                    out[name] = getattr(ah, name)
            spec["indexer"]["asymmetric_hashing"] = out
    if msg.HasField("partitioner"):
        p = msg.partitioner
        out = {"leaves": [list(leaf.dimension) for leaf in p.leaf]} if p.leaf else {}
        for name in ("search_fraction", "query_distance"):
            if p.HasField(name):
                out[name] = getattr(p, name)
        spec["partitioner"] = out
    return spec


def parse_index_config(data: bytes) -> dict:
    """Parse with protobuf and describe the message as a spec (presence included)."""
    index_config, _ = _classes()
    msg = index_config()
    msg.ParseFromString(data)
    spec: dict = {}
    if msg.HasField("scann_config"):
        spec["scann_config"] = _scann_to_spec(msg.scann_config)
    for name in ("embedding_type", "embedding_dim"):
        if msg.HasField(name):
            spec[name] = getattr(msg, name)
    if msg.global_partition_offsets:
        spec["global_partition_offsets"] = list(msg.global_partition_offsets)
    return spec


def build_index(embedding_dim: int, scann_config: bytes, userinfo: bytes, partition_assignment,
                metadata: list[bytes], compression: bool, hashed_database=None, float_database=None) -> bytes:
    """tflite-support's real index builder (LevelDB TableBuilder, Snappy when compressing).

    Databases must be contiguous numpy arrays of the exact element type (uint8 / float32):
    with a list or float64 array the binding converts into a temporary that is freed too
    early, and the first bytes of E_0 come out as garbage.
    """
    import numpy as np
    from tensorflow_lite_support.scann_ondevice.cc.python import index_builder

    if hashed_database is not None:
        hashed_database = np.ascontiguousarray(hashed_database, dtype=np.uint8).ravel()
    if float_database is not None:
        float_database = np.ascontiguousarray(float_database, dtype=np.float32).ravel()
    return index_builder.create_serialized_index_file(
        embedding_dim=embedding_dim, serialized_config=scann_config, userinfo=userinfo,
        partition_assignment=np.asarray(partition_assignment, dtype=np.uint32),
        metadata=list(metadata), compression=compression,
        hashed_database=hashed_database, float_database=float_database)


def protobuf_reference(specs: list[dict], blobs: list[bytes]) -> dict:
    """Everything the codec tests need from protobuf, in one device process (they are slow to start).

    ``index_configs``: each spec serialized as IndexConfig; ``scann_configs``: its scann_config
    serialized by the generated ScannOnDeviceConfig; ``parsed``: each blob parsed into a spec.
    """
    return {
        "index_configs": [serialize_index_config(s) for s in specs],
        "scann_configs": [serialize_scann_config(s["scann_config"]) for s in specs if "scann_config" in s],
        "parsed": [parse_index_config(b) for b in blobs],
    }


def build_many(jobs: list[dict]) -> list[bytes]:
    """Several :func:`build_index` calls in one process."""
    return [build_index(**job) for job in jobs]
