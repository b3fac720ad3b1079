"""scannlite.plugin.device: code that runs inside a *device* process.

A device process holds what a phone would run: tflite-support 0.4.4's index builder, its
Task Library (TextSearcher, ImageSearcher, TextEmbedder, ImageEmbedder) and its
MetadataPopulator. These native modules cannot share a process with TensorFlow, so the
functions here are called through :func:`scannlite.store.workers.boundary.run_in`, e.g.
``run_in("device", "scannlite.plugin.device.runtime:text_search", model, ["q3"], ...)``.

Modules:

* :mod:`.runtime` - the device-side entry points (tflite-support's index builder, attach, search,
  embed, user info);
* :mod:`.probe_model` - a TFLite text embedder, written without TensorFlow, that turns the
  token ``qI`` into vector I, so the text-only Task Library can search *any* vector;
* :mod:`.bundle` - attaching an index to a model's metadata, deterministically;
* :mod:`.tasks` - Task Library tasks opened once per process (a bounded cache of loaded models);
* :mod:`.processes` - the plugin layer's ``DeviceSide``, which runs the above through ``run_in``;
* :mod:`.exporter`, :mod:`.image_files` - the device-side halves of ``export`` and ``embed``;
* :mod:`.tflite_zip` - pure-python helpers for the zip a TFLite model carries at its end.

This ``__init__`` imports nothing: a worker imports the package before the function's module,
and nothing here may pull in protobuf or tflite-support early.
"""
