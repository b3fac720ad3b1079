"""scannlite.plugin.dual_encoder: the dual encoder (image tower + text tower), trained offline, and the demo.

Nothing else in scannlite imports this package (tests/test_layers.py): the CLI's ``train``, ``convert`` and
``demo`` commands start it, and its embedder types (:mod:`.embedders`: ``dual-encoder-text``/``-image``) are
registered through their own entry point. The demo (:mod:`.demo`, :mod:`.demo_openmoji`) runs the whole path.

Why it exists: a TFLite Searcher bundle needs an embedder model the Task Library can run on
a phone. This package trains one (CLIP-style, in-batch negatives, learnable temperature) from
data that installs from PyPI (OpenMoji) or a local COCO-captions folder, and converts both
towers to ``.tflite`` files with the metadata the Task Library's TextEmbedder and
ImageEmbedder need. (The built-in embedder types that run the ``.tflite`` towers live in
:mod:`scannlite.plugin.embedders.builtin`.)

Which module runs in which process (see :mod:`scannlite.plugin`):

* anywhere (pure Python, numpy, Pillow): :mod:`.settings` (training knobs), :mod:`.modeldir`
  (model directory layout and marker), :mod:`.cache`, :mod:`.images` (resizing for the towers),
  :mod:`.captions` + :mod:`.openmoji`, :mod:`.coco`, :mod:`.datasets`, :mod:`.wordpiece`, :mod:`.words`,
  :mod:`.minilm_files`, :mod:`.recall`, :mod:`.progress_log` (errors and signature checks are the
  embedders': :mod:`scannlite.plugin.embedders.errors`, :mod:`scannlite.plugin.embedders.tflite_signature`);
* the CLI/store process, starting workers: :mod:`.jobs` (``train``, ``convert``), :mod:`.embedders`, the demo;
* tensorflow processes only: :mod:`.minilm`, :mod:`.caption_vectors`, :mod:`.towers`,
  :mod:`.clip_loss`, :mod:`.training`, :mod:`.keras_inference`, :mod:`.conversion`,
  :mod:`.tflite_metadata`;
* device processes only: :mod:`scannlite.plugin.device.runtime` (Task Library TextEmbedder/ImageEmbedder).

This ``__init__`` stays import-free so that importing any submodule costs nothing extra.
"""
