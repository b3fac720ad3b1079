"""scannlite.plugin: everything that runs models.

Everything here runs models, in one of three kinds of process:

* the **store** process (the CLI, the library, Datasette): numpy, pyarrow, SQLite, ScaNN.
  It never imports TensorFlow nor tflite-support's native modules;
* the **device** process: tflite-support's index builder and Task Library, run with
  ``sys.modules["tensorflow"] = None`` and ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``
  set before anything else (see :mod:`scannlite.store.workers.worker`);
* the **tensorflow** process: training, conversion to TFLite, Keras inference.

TensorFlow and tflite-support's native modules cannot share a process (both register a
pybind type named ``StatusCode``), so work for the other two kinds is shipped to a fresh
interpreter with :func:`scannlite.store.workers.boundary.run_in` (the door, in the bottom layer so
that every layer may use it).

This ``__init__`` must stay import-free: it is imported first in every kind of process.
"""
