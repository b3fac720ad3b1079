"""scannlite.store.index: the ScaNN partitions of a catalog and how a phone searches them.

Settings (:mod:`.config`), training (:mod:`.training`, :mod:`.partition_model`), when to retrain (:mod:`.health`),
``build`` (:mod:`.build`, with the recall it records in :mod:`.build_recall` and its report in
:mod:`.build_result`), what builds stored, read back
(:mod:`.stored`), snapshots (:mod:`.snapshot`), the recall estimate (:mod:`.recall_estimate`) and
device-equivalent search (:mod:`.device_search`). Import-free.
"""
