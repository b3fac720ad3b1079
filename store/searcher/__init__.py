"""scannlite's own on-device searcher, libscannlite (C), from Python: search a TFLite Searcher
bundle or a bare on-device ScaNN index exactly as the Task Library does, without tflite-support.

:class:`~scannlite.store.searcher.native.NativeSearcher` opens a file (mapped read-only) or a
bytes-like buffer; see docs/native.md for the library, its memory and how it is built.
"""

from scannlite.store.searcher.native import (
    NativeError,
    NativeLibraryMissing,
    NativeSearcher,
    SearchResult,
    l2_normalize,
    library_path,
)

__all__ = ["NativeError", "NativeLibraryMissing", "NativeSearcher", "SearchResult", "l2_normalize", "library_path"]
