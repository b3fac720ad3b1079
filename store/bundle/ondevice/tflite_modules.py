"""Where the TFLite flatbuffer schemas and the metadata tools come from: tflite-support, else MediaPipe.

tflite-support 0.4.4 (the Task Library) has wheels for Python 3.11 only; MediaPipe ships the same
generated schema code and the same ``MetadataPopulator`` / metadata writers for every Python, so
scannlite reads and writes bundles on 3.12 and 3.13 with MediaPipe's copies (docs/python-versions.md).

* The generated schema modules (pure flatbuffers code) are loaded from their files, never through
  ``import mediapipe``: MediaPipe's package ``__init__`` imports OpenCV and its C library (seconds),
  which the store process must not pay to read a bundle.
* MediaPipe's ``metadata`` module imports a compiled helper its wheel lacks
  (``_pywrap_metadata_version``); it only stamps the minimum metadata parser version, which
  :func:`min_parser_version` computes from the schema (checked against tflite-support's helper
  in tests/test_python_versions.py).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
from importlib import metadata as importlib_metadata


@functools.cache
def task_library_installed() -> bool:
    """Whether tflite-support (the Task Library) is installed here (its wheels stop at cp311).
    ``SCANNLITE_TASK_LIBRARY=off`` makes a 3.11 environment behave as 3.13's (the tests use it)."""
    if os.environ.get("SCANNLITE_TASK_LIBRARY") == "off":
        return False
    try:
        importlib_metadata.version("tflite-support")
    except importlib_metadata.PackageNotFoundError:
        return False
    return True


def embedder_runtime() -> str:
    """Which runtime embeds with a bundle's ``.tflite`` model here: the Task Library where it is
    installed, else MediaPipe (docs/python-versions.md)."""
    return "Task Library" if task_library_installed() else "MediaPipe"


def _mediapipe_file_module(relative: str, name: str) -> types.ModuleType:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("neither tflite-support nor mediapipe is installed: cannot read TFLite metadata")
    path = f"{list(spec.submodule_search_locations)[0]}/{relative}"
    if name in sys.modules:
        return sys.modules[name]
    file_spec = importlib.util.spec_from_file_location(name, path)
    if file_spec is None or file_spec.loader is None:
        raise ImportError(f"mediapipe has no {relative}")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    file_spec.loader.exec_module(module)
    return module


@functools.cache
def schemas() -> tuple[types.ModuleType, types.ModuleType]:
    """(TFLite model schema, TFLite metadata schema): the generated flatbuffer modules."""
    if task_library_installed():
        from tensorflow_lite_support.metadata import metadata_schema_py_generated as meta
        from tensorflow_lite_support.metadata import schema_py_generated as schema

        return schema, meta
    schema = _mediapipe_file_module("tasks/metadata/schema_py_generated.py", "scannlite_tflite_schema_fb")
    meta = _mediapipe_file_module("tasks/metadata/metadata_schema_py_generated.py", "scannlite_tflite_metadata_fb")
    return schema, meta


# (version, test on the unpacked ModelMetadataT): the metadata parser version that first understood
# each schema feature, as the schema file's comments date them (metadata_schema.fbs).
def _features(meta_fb, md) -> list[tuple[tuple[int, int, int], bool]]:
    subgraphs = md.subgraphMetadata or []
    tensors = [t for g in subgraphs for t in (g.inputTensorMetadata or []) + (g.outputTensorMetadata or [])]
    files = list(md.associatedFiles or [])
    for g in subgraphs:
        files += list(g.associatedFiles or [])
    for t in tensors:
        files += list(t.associatedFiles or [])
    units = [u for g in subgraphs for u in (g.inputProcessUnits or []) + (g.outputProcessUnits or [])]
    units += [u for t in tensors for u in (t.processUnits or [])]
    kinds = {u.optionsType for u in units}
    opts = meta_fb.ProcessUnitOptions
    ftype = meta_fb.AssociatedFileType
    return [
        ((1, 0, 1), any(f.type == ftype.VOCABULARY for f in files)),
        ((1, 1, 0), any(g.inputProcessUnits or g.outputProcessUnits for g in subgraphs)),
        ((1, 1, 0), bool(kinds & {opts.BertTokenizerOptions, opts.SentencePieceTokenizerOptions})),
        ((1, 2, 0), any(g.inputTensorGroups or g.outputTensorGroups for g in subgraphs)),
        ((1, 2, 1), opts.RegexTokenizerOptions in kinds),
        (
            (1, 3, 0),
            any(
                t.content is not None and t.content.contentPropertiesType == meta_fb.ContentProperties.AudioProperties
                for t in tensors
            ),
        ),
        ((1, 4, 0), any(f.type == ftype.SCANN_INDEX_FILE for f in files)),
        ((1, 4, 1), any(f.version for f in files)),
        ((1, 5, 0), any(g.customMetadata for g in subgraphs)),
    ]


def min_parser_version(metadata_buffer: bytes) -> str:
    """The minimum metadata parser version that understands every field ``metadata_buffer`` uses."""
    _, meta_fb = schemas()
    md = meta_fb.ModelMetadataT.InitFromObj(meta_fb.ModelMetadata.GetRootAsModelMetadata(bytes(metadata_buffer), 0))
    version = max([(1, 0, 0)] + [v for v, used in _features(meta_fb, md) if used])
    return ".".join(map(str, version))


def _install_version_helper() -> None:
    """Give MediaPipe's metadata module the compiled helper its wheel leaves out."""
    names = ["mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata", "mediapipe.tasks.cc.metadata.python"]
    for name in names:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = []
            sys.modules[name] = package
    helper = types.ModuleType(names[-1] + "._pywrap_metadata_version")
    helper.GetMinimumMetadataParserVersion = min_parser_version  # type: ignore[attr-defined]
    sys.modules[helper.__name__] = helper
    sys.modules[names[-1]]._pywrap_metadata_version = helper  # type: ignore[attr-defined]


@functools.cache
def metadata_module() -> types.ModuleType:
    """The module with ``MetadataPopulator`` (tflite-support's, else MediaPipe's)."""
    if task_library_installed():
        from tensorflow_lite_support.metadata.python import metadata

        return metadata
    _install_version_helper()
    from mediapipe.tasks.python.metadata import metadata

    return metadata


@functools.cache
def metadata_writers() -> tuple[types.ModuleType, types.ModuleType]:
    """(metadata_info, writer_utils): the metadata description classes (tflite-support's, else MediaPipe's)."""
    if task_library_installed():
        from tensorflow_lite_support.metadata.python.metadata_writers import metadata_info, writer_utils

        return metadata_info, writer_utils
    metadata_module()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, writer_utils

    return metadata_info, writer_utils


def populate(
    model: bytes,
    *,
    general,
    inputs: list,
    outputs: list,
    associated_files: list[str] = (),  # type: ignore[assignment]
    input_process_units: list | None = None,
) -> bytes:
    """``model`` with TFLite metadata: ``general`` (a ``GeneralMd``), input and output
    ``TensorMetadataT`` lists, process units, and ``associated_files`` (paths) packed.

    One writer for every Python (tflite-support's ``MetadataWriter.create_from_metadata_info``
    has no MediaPipe twin), so the same tower gets the same bytes on 3.11 and on 3.13.
    """
    import flatbuffers

    _, meta_fb = schemas()
    metadata = metadata_module()
    graph = meta_fb.SubGraphMetadataT()
    graph.inputTensorMetadata = list(inputs)
    graph.outputTensorMetadata = list(outputs)
    if input_process_units:
        graph.inputProcessUnits = list(input_process_units)
    model_md = general.create_metadata()
    model_md.subgraphMetadata = [graph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model_md.Pack(builder), metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    populator = metadata.MetadataPopulator.with_model_buffer(bytearray(model))
    populator.load_metadata_buffer(builder.Output())
    if associated_files:
        populator.load_associated_files(list(associated_files))
    populator.populate()
    return bytes(populator.get_model_buffer())
