"""scannlite.store.bundle: TFLite Searcher bundles, made, checked, inspected and patched.

``export`` (:mod:`.export`, its manifest and patch in :mod:`.manifest`), bundles made elsewhere (:mod:`.inspection`: info, verify; :mod:`.querying`: query;
:mod:`.opening`: a file mapped and parsed), the Task Library
parity check (:mod:`.parity`), patches (:mod:`.delta`), the embedder acceptance policy (:mod:`.embedder_checks`),
what the store asks of a device process (:mod:`.device_side`) and the on-device file formats (:mod:`.ondevice`,
specified in docs/ondevice-format.md). Import-free.
"""
