"""scannlite.store: the storage layer (catalog, segments, partitions, snapshots, export).

This package never imports TensorFlow; work that needs it, or needs tflite-support's native
modules, runs in another process through :mod:`scannlite.plugin.boundary`.
"""
