"""scannlite.store.bundle.ondevice: the TFLite Searcher on-device index format, read and written in the store process.

No TensorFlow and no tflite-support native modules: numpy, pyarrow (Snappy), google-crc32c and
the protobuf runtime (docs/ondevice-format.md is the spec).

* :mod:`.sstable`      LevelDB table files (raw and Snappy blocks, CRC32C verified); :mod:`.sstable_writer` writes them
* :mod:`.protos`       IndexConfig and the ScaNN on-device protos, as protobuf message classes
* :mod:`.index_file`   ``read_index``: an index as numpy partitions, metadata and checks
* :mod:`.index_writer` ``write_index``: an index streamed to a file, ``scann_config`` its config
* :mod:`.layout`       slotted ids and content-cut blocks, so small changes stay small patches
* :mod:`.bundle_file`  ``read_bundle``: a ``.tflite`` bundle's pieces; :mod:`.model_facts` ``describe_model``

Every malformed input raises :class:`IndexFormatError` with a one-line message.
"""

from scannlite.store.bundle.ondevice.bundle_file import AssociatedFileInfo, Bundle, read_bundle
from scannlite.store.bundle.ondevice.errors import IndexFormatError
from scannlite.store.bundle.ondevice.index_file import OnDeviceIndex, read_index
from scannlite.store.bundle.ondevice.model_facts import describe_model
from scannlite.store.bundle.ondevice.protos import (
    AsymmetricHashingProto,
    ConfigView,
    DistanceMeasure,
    EmbeddingType,
    IndexConfig,
    IndexerProto,
    LookupType,
    PartitionerProto,
    ScannOnDeviceConfig,
)
from scannlite.store.bundle.ondevice.sstable import Table, read_table

__all__ = [
    "AssociatedFileInfo",
    "AsymmetricHashingProto",
    "Bundle",
    "ConfigView",
    "DistanceMeasure",
    "EmbeddingType",
    "IndexConfig",
    "IndexFormatError",
    "IndexerProto",
    "LookupType",
    "OnDeviceIndex",
    "PartitionerProto",
    "ScannOnDeviceConfig",
    "Table",
    "describe_model",
    "read_bundle",
    "read_index",
    "read_table",
]
