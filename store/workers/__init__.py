"""scannlite.store.workers: the process boundary (:mod:`.boundary`, ``run_in``) and its entry point (:mod:`.worker`).

Import-free: a worker imports this package before it can block TensorFlow or select protobuf's implementation.
"""
