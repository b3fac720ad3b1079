"""Attach an on-device ScaNN index to a TFLite embedder: the Searcher bundle.

The Task Library finds the index as the first associated file of type SCANN_INDEX_FILE on the
output tensor it searches with, read by name from the stored zip glued to the model. This is
Model Maker's recipe (../shared/docs/ondevice-format.md 3.1), with three differences that matter here:

* files the model already packs (a tokenizer's vocab.txt) are handed back to the populator
  explicitly, and the index joins them, so nothing depends on how the populator copies an
  existing archive;
* an index the model already carries is *replaced*, not shadowed by a second one that the
  Task Library would never read;
* the zip is rewritten with fixed timestamps (see :mod:`.tflite_zip`), so the same model and
  index always give byte-identical bundles.

Runs in a device process: ``MetadataPopulator`` imports a native tflite-support module.
"""
from __future__ import annotations

import os
import warnings

import flatbuffers

from scannlite.store.ondevice.bundle_file import INDEX_FILE_NAME, MODEL_IDENTIFIER
from scannlite.store.ondevice.sstable import FOOTER_SIZE, MAGIC

from . import tflite_zip

INDEX_DESCRIPTION = "On-device Scann Index file with LevelDB format."
METADATA_NAME = "TFLITE_METADATA"


def _model_root(flatbuffer: bytes):
    from tensorflow_lite_support.metadata import schema_py_generated as fb

    if len(flatbuffer) < 8 or flatbuffer[4:8] != MODEL_IDENTIFIER:
        raise ValueError("the model is not a TFLite flatbuffer (no 'TFL3' identifier)")
    model = fb.Model.GetRootAsModel(flatbuffer, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("the TFLite model has no subgraph")
    return model


def _tensor_names(model, which: str) -> list[str]:
    graph = model.Subgraphs(0)
    count = getattr(graph, f"{which}Length")()
    return [graph.Tensors(getattr(graph, which)(i)).Name().decode("utf-8", "replace") for i in range(count)]


def read_metadata(flatbuffer: bytes):
    """The model's ``ModelMetadataT``, or None when it has no TFLITE_METADATA buffer."""
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md

    model = _model_root(flatbuffer)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is not None and entry.Name().decode("utf-8", "replace") == METADATA_NAME:
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            if isinstance(raw, int) or len(raw) == 0:
                raise ValueError("the model's TFLITE_METADATA buffer is empty")
            raw = raw.tobytes()
            if not md.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0):
                raise ValueError("the model's TFLITE_METADATA buffer is not TFLite metadata (no 'M001' identifier)")
            return md.ModelMetadataT.InitFromPackedBuf(raw, 0)
    return None


def _empty_metadata(model):
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md

    def tensors(names: list[str]):
        out = []
        for name in names:
            t = md.TensorMetadataT()
            t.name = name
            out.append(t)
        return out

    graph = md.SubGraphMetadataT()
    graph.inputTensorMetadata = tensors(_tensor_names(model, "Inputs"))
    graph.outputTensorMetadata = tensors(_tensor_names(model, "Outputs"))
    meta = md.ModelMetadataT()
    meta.subgraphMetadata = [graph]
    return meta


def searcher_output_index(model, metadata) -> int:
    """Output tensor the Task Library searches with: 1 for 3-input USE-QA models, else 0.

    A 3-input text model *with* subgraph input process units is BERT-like (one output); one
    without is Universal Sentence Encoder QA, whose searcher uses ``response_encoding``.
    """
    graph = model.Subgraphs(0)
    units = None
    if metadata is not None and metadata.subgraphMetadata:
        units = metadata.subgraphMetadata[0].inputProcessUnits
    if graph.InputsLength() == 3 and not units and graph.OutputsLength() >= 2:
        return 1
    return 0


def _files_of_type(tensor_md, file_type: int) -> list:
    return [f for f in (tensor_md.associatedFiles or []) if f.type == file_type]


def _recorded_names(metadata) -> set[str]:
    """Every file name the metadata refers to (tensors, process units, subgraph, model)."""
    names: set[str] = set()

    def add(files) -> None:
        for f in files or []:
            if f.name is not None:
                names.add(os.path.basename(f.name.decode() if isinstance(f.name, bytes) else f.name))

    def add_units(units) -> None:
        for unit in units or []:
            options = unit.options
            for field in ("vocabFile", "sentencePieceModel"):
                add(getattr(options, field, None))

    add(metadata.associatedFiles)
    for graph in metadata.subgraphMetadata or []:
        add(graph.associatedFiles)
        add_units(graph.inputProcessUnits)
        add_units(graph.outputProcessUnits)
        for tensor_md in (graph.inputTensorMetadata or []) + (graph.outputTensorMetadata or []):
            add(tensor_md.associatedFiles)
            add_units(tensor_md.processUnits)
    return names


def _check_index(index: bytes) -> None:
    if not isinstance(index, (bytes, bytearray, memoryview)):
        raise TypeError(f"index must be bytes; got {type(index).__name__}")
    if len(index) < FOOTER_SIZE or int.from_bytes(index[-8:], "little") != MAGIC:
        raise ValueError("the index is not a LevelDB table (no SSTable footer magic)")


def _check_file_name(file_name: str) -> None:
    if not isinstance(file_name, str) or not file_name or file_name != os.path.basename(file_name) \
            or file_name in (".", ".."):
        raise ValueError(f"index file name must be a plain file name; got {file_name!r}")


def attach_index(model: bytes, index: bytes, file_name: str = INDEX_FILE_NAME) -> bytes:
    """Return ``model`` with ``index`` packed as its SCANN_INDEX_FILE (deterministic bytes).

    The index goes on the searcher's output tensor (:func:`searcher_output_index`); metadata
    and packed files the model has are kept, except an index it already carried, which is
    removed (from every output tensor) together with its packed file.
    """
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md
    from tensorflow_lite_support.metadata.python import metadata as tfl_metadata

    if not isinstance(model, (bytes, bytearray, memoryview)):
        raise TypeError(f"model must be bytes; got {type(model).__name__}")
    _check_index(index)
    _check_file_name(file_name)
    flatbuffer, packed = tflite_zip.split(bytes(model))
    root = _model_root(flatbuffer)
    metadata = read_metadata(flatbuffer)
    if metadata is None:
        metadata = _empty_metadata(root)
    if not metadata.subgraphMetadata:
        raise ValueError("the model's metadata has no subgraph metadata")
    graph_md = metadata.subgraphMetadata[0]
    out_idx = searcher_output_index(root, metadata)
    outputs = graph_md.outputTensorMetadata or []
    if len(outputs) != root.Subgraphs(0).OutputsLength():
        raise ValueError(f"the model has {root.Subgraphs(0).OutputsLength()} outputs but metadata "
                         f"for {len(outputs)}")

    old_names: set[str] = set()
    for tensor_md in outputs:
        old = _files_of_type(tensor_md, md.AssociatedFileType.SCANN_INDEX_FILE)
        old_names |= {os.path.basename(f.name.decode() if isinstance(f.name, bytes) else f.name) for f in old}
        tensor_md.associatedFiles = [f for f in (tensor_md.associatedFiles or []) if f not in old] or None
    still_recorded = _recorded_names(metadata)
    kept = [(name, data) for name, data in packed if name not in old_names or name in still_recorded]
    if file_name in still_recorded or file_name in {name for name, _ in kept}:
        raise ValueError(f"the model already packs a file named {file_name!r}; choose another index file name")

    entry = md.AssociatedFileT()
    entry.name = file_name
    entry.description = INDEX_DESCRIPTION
    entry.type = md.AssociatedFileType.SCANN_INDEX_FILE
    target = outputs[out_idx]
    target.associatedFiles = (target.associatedFiles or []) + [entry]

    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), tfl_metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    populator = tfl_metadata.MetadataPopulator.with_model_buffer(bytearray(flatbuffer))
    populator.load_metadata_buffer(builder.Output())
    files = dict(kept)
    files[file_name] = bytes(index)
    populator.load_associated_file_buffers(files)
    with warnings.catch_warnings():
        # Files packed but not named in the metadata are legal; the populator warns about each.
        warnings.simplefilter("ignore")
        populator.populate()
    bundle = bytes(populator.get_model_buffer())
    # The populator writes the zip in dict order with the current time; rewrite it fixed.
    return tflite_zip.normalize(bundle)


def packed_files(model: bytes) -> list[str]:
    """Names of the files packed in a model's zip, in archive order (pure python)."""
    return [name for name, _ in tflite_zip.split(bytes(model))[1]]


def index_of(model: bytes) -> tuple[str, bytes] | None:
    """The (name, bytes) of the SCANN_INDEX_FILE the searcher would read, or None."""
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md

    flatbuffer, packed = tflite_zip.split(bytes(model))
    root = _model_root(flatbuffer)
    metadata = read_metadata(flatbuffer)
    if metadata is None or not metadata.subgraphMetadata:
        return None
    outputs = metadata.subgraphMetadata[0].outputTensorMetadata or []
    out_idx = searcher_output_index(root, metadata)
    if out_idx >= len(outputs):
        return None
    found = _files_of_type(outputs[out_idx], md.AssociatedFileType.SCANN_INDEX_FILE)
    if not found:
        return None
    name = found[0].name.decode() if isinstance(found[0].name, bytes) else found[0].name
    data = dict(packed).get(name)
    return None if data is None else (name, data)
