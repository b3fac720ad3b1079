"""scannlite.store: the storage layer (catalog, segments, partitions, snapshots, export).

The bottom layer: it imports nothing from :mod:`scannlite.plugin` or :mod:`scannlite.cli`,
and it is the only layer that writes SQL against a catalog. It never imports TensorFlow nor
tflite-support's native modules. What needs a device process (building and checking bundles)
it asks of a :class:`~scannlite.store.bundle.device_side.DeviceSide` that its caller hands in.

It also holds the process boundary every layer uses, :mod:`scannlite.store.workers.boundary`
(``run_in``) with its worker entry point :mod:`scannlite.store.workers.worker`: infrastructure, not
model code. This ``__init__`` must stay import-free: a worker imports it before it can block
TensorFlow or select protobuf's implementation.
"""
