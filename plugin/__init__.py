"""scannlite.plugin: everything that runs models.

Three kinds of process exist in scannlite, and this package is where the boundary is drawn:

* the **store** process (the CLI, the library, Datasette): numpy, pyarrow, SQLite, ScaNN.
  It never imports TensorFlow nor tflite-support's native modules;
* the **device** process: tflite-support's index builder and Task Library, run with
  ``sys.modules["tensorflow"] = None`` and ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``
  set before anything else (see :mod:`scannlite.plugin.worker`);
* the **tensorflow** process: training, conversion to TFLite, Keras inference.

TensorFlow and tflite-support's native modules cannot share a process (both register a
pybind type named ``StatusCode``), so work for the other two kinds is shipped to a fresh
interpreter with :func:`scannlite.plugin.boundary.run_in`.

This ``__init__`` must stay import-free: it is imported first in every kind of process.
"""
