"""Protobuf helpers for tests/test_ondevice_format.py, for both kinds of process.

:func:`to_spec` describes a message as plain dicts and lists; it runs in the store process
(protobuf's upb implementation) and, through ``run_in("device", "ondevice_pb:...")`` with this
folder on PYTHONPATH, in a *device* worker (pure-Python protobuf, TensorFlow blocked), where
:func:`protobuf_reference` and :func:`build_many` also run: they need tflite-support's generated
serialized_searcher_pb2 and its real index builder.

A spec uses the proto field names, so a message class takes it as keyword arguments::

    {"scann_config": {"query_distance": 1,
                      "partitioner": {"leaf": [{"dimension": [...]}, ...], "search_fraction": 0.5},
                      "indexer": {"asymmetric_hashing": {"subspace": [{"entry": [{"dimension": [...]}]}],
                                                         "lookup_type": 2}}},
     "embedding_type": 1, "embedding_dim": 16, "global_partition_offsets": [0, 3]}

A key that is absent means the field is not set (proto2 presence); empty repeated fields are
left out too.
"""

from __future__ import annotations


def to_spec(msg) -> dict:
    """The fields of ``msg`` that are set, as a spec."""
    spec: dict = {}
    for field, value in msg.ListFields():
        repeated = field.label == field.LABEL_REPEATED
        if field.message_type is None:
            spec[field.name] = list(value) if repeated else value
        else:
            spec[field.name] = [to_spec(v) for v in value] if repeated else to_spec(value)
    return spec


def protobuf_reference(specs: list[dict], blobs: list[bytes]) -> dict:
    """What the codec tests need from a device process (pure-Python protobuf), in one call.

    ``index_configs``: each spec serialized by scannlite's IndexConfig; ``scann_configs``: its
    scann_config serialized by tflite-support's generated ScannOnDeviceConfig; ``parsed``: each
    blob parsed by scannlite's IndexConfig, as a spec; ``descriptors``: scannlite's declaration of
    serialized_searcher.proto and the generated module's, as text.
    """
    from google.protobuf import descriptor_pb2
    from google.protobuf.internal import api_implementation
    from tensorflow_lite_support.scann_ondevice.cc.core import serialized_searcher_pb2 as searcher

    from scannlite.store.bundle.ondevice import protos

    assert api_implementation.Type() == "python"
    generated = descriptor_pb2.FileDescriptorProto()
    searcher.DESCRIPTOR.CopyToProto(generated)
    return {
        "index_configs": [protos.IndexConfig(**s).SerializeToString() for s in specs],
        "scann_configs": [
            searcher.ScannOnDeviceConfig(**s["scann_config"]).SerializeToString() for s in specs if "scann_config" in s
        ],
        "parsed": [to_spec(protos.IndexConfig.FromString(b)) for b in blobs],
        "descriptors": [str(protos.file_descriptors()[0]), str(generated)],
    }


def build_index(
    embedding_dim: int,
    scann_config: bytes,
    userinfo: bytes,
    partition_assignment,
    metadata: list[bytes],
    compression: bool,
    hashed_database=None,
    float_database=None,
) -> bytes:
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
        embedding_dim=embedding_dim,
        serialized_config=scann_config,
        userinfo=userinfo,
        partition_assignment=np.asarray(partition_assignment, dtype=np.uint32),
        metadata=list(metadata),
        compression=compression,
        hashed_database=hashed_database,
        float_database=float_database,
    )


def build_many(jobs: list[dict]) -> list[bytes]:
    """Several :func:`build_index` calls in one process."""
    return [build_index(**job) for job in jobs]
