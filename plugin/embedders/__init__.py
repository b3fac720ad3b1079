"""scannlite.plugin.embedders.registry: embedder plugins (docs/plugins.md).

The hook specification (:mod:`.hookspecs`), the registry that loads and resolves them (:mod:`.registry`), the
built-in types (:mod:`.builtin`), TFLite signature checks (:mod:`.tflite_signature`) and :mod:`.errors`.
Import-free.
"""
