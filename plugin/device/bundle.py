"""Attach an on-device ScaNN index to a TFLite embedder: the Searcher bundle.

The Task Library finds the index as the first associated file of type SCANN_INDEX_FILE on the
output tensor it searches with, read by name from the stored zip glued to the model. This is
Model Maker's recipe (docs/ondevice-format.md 3.1), with three differences that matter here:

* files the model already packs (a tokenizer's vocab.txt) are handed back to the populator
  explicitly, and the index joins them, so nothing depends on how the populator copies an
  existing archive;
* an index the model already carries is *replaced*, not shadowed by a second one that the
  Task Library would never read;
* the zip is rewritten with fixed timestamps (see :mod:`.tflite_zip`), so the same model and
  index always give byte-identical bundles.

The model is read by the model reader (:mod:`scannlite.store.bundle.ondevice.bundle_file`) and judged
by the acceptance policy (:mod:`scannlite.store.bundle.embedder_checks`): which output the searcher reads
is the policy's ``output_index``, never a rule of this module. Only the metadata *writing*
lives here. Runs in a device process: ``MetadataPopulator`` imports a native module.
"""

from __future__ import annotations

import os
import warnings

import flatbuffers

from scannlite.plugin.device import tflite_zip
from scannlite.store.bundle.embedder_checks import EmbedderFacts, inspect_embedder
from scannlite.store.bundle.ondevice import tflite_modules
from scannlite.store.bundle.ondevice.bundle_file import INDEX_FILE_NAME, read_bundle, read_metadata
from scannlite.store.bundle.ondevice.sstable import FOOTER_SIZE, MAGIC

INDEX_DESCRIPTION = "On-device Scann Index file with LevelDB format."


def _empty_metadata(description: dict):
    md = tflite_modules.schemas()[1]

    def tensors(facts: list[dict]):
        out = []
        for f in facts:
            t = md.TensorMetadataT()
            t.name = f["name"]
            out.append(t)
        return out

    graph = md.SubGraphMetadataT()
    graph.inputTensorMetadata = tensors(description["inputs"])
    graph.outputTensorMetadata = tensors(description["outputs"])
    meta = md.ModelMetadataT()
    meta.subgraphMetadata = [graph]
    return meta


def _check_index(index: bytes) -> None:
    if not isinstance(index, (bytes, bytearray, memoryview)):
        raise TypeError(f"index must be bytes; got {type(index).__name__}")
    if len(index) < FOOTER_SIZE or int.from_bytes(index[-8:], "little") != MAGIC:
        raise ValueError("the index is not a LevelDB table (no SSTable footer magic)")


def _check_file_name(file_name: str) -> None:
    if (
        not isinstance(file_name, str)
        or not file_name
        or file_name != os.path.basename(file_name)
        or file_name in (".", "..")
    ):
        raise ValueError(f"index file name must be a plain file name; got {file_name!r}")


def _name(f) -> str:
    return os.path.basename(f.name.decode() if isinstance(f.name, bytes) else f.name)


def attach_index(model: bytes, index: bytes, file_name: str = INDEX_FILE_NAME) -> bytes:
    """Return ``model`` with ``index`` packed as its SCANN_INDEX_FILE (deterministic bytes).

    The index goes on the output tensor the searcher reads (the acceptance policy's
    ``output_index``); metadata and packed files the model has are kept, except an index it
    already carried, which is removed (from every output tensor) with its packed file.
    """
    md = tflite_modules.schemas()[1]
    tfl_metadata = tflite_modules.metadata_module()

    if not isinstance(model, (bytes, bytearray, memoryview)):
        raise TypeError(f"model must be bytes; got {type(model).__name__}")
    _check_index(index)
    _check_file_name(file_name)
    model = bytes(model)
    facts = inspect_embedder(model, "the model")
    described = facts.description
    flatbuffer, packed = tflite_zip.split(model)
    metadata = read_metadata(flatbuffer)
    if metadata is None and described["has_metadata"]:
        raise ValueError("the model's TFLITE_METADATA buffer is not TFLite metadata (no 'M001' identifier)")
    metadata = metadata or _empty_metadata(described)
    if not metadata.subgraphMetadata:
        raise ValueError("the model's metadata has no subgraph metadata")
    outputs = metadata.subgraphMetadata[0].outputTensorMetadata or []
    if len(outputs) != len(described["outputs"]):
        raise ValueError(f"the model has {len(described['outputs'])} outputs but metadata for {len(outputs)}")

    old_names: set[str] = set()
    for tensor_md in outputs:
        old = [f for f in tensor_md.associatedFiles or [] if f.type == md.AssociatedFileType.SCANN_INDEX_FILE]
        old_names |= {_name(f) for f in old}
        tensor_md.associatedFiles = [f for f in (tensor_md.associatedFiles or []) if f not in old] or None
    # Every other file the metadata names (tensors, process units, subgraph, model) stays.
    still_recorded = {
        os.path.basename(f["name"])
        for f in described["associated_files"]
        if f["name"] and not (f["type"] == "SCANN_INDEX_FILE" and f["where"].startswith("output "))
    }
    kept = [(name, data) for name, data in packed if name not in old_names or name in still_recorded]
    if file_name in still_recorded or file_name in {name for name, _ in kept}:
        raise ValueError(f"the model already packs a file named {file_name!r}; choose another index file name")

    entry = md.AssociatedFileT()
    entry.name = file_name
    entry.description = INDEX_DESCRIPTION
    entry.type = md.AssociatedFileType.SCANN_INDEX_FILE
    target = outputs[facts.output_index]
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


def packs_index(facts: EmbedderFacts) -> bool:
    """Whether the searcher would find an index packed in the model ``facts`` describe: one
    the reader found, packed, on the output the policy says the searcher reads."""
    found = facts.description["index"]
    return found is not None and found["bytes"] is not None and found["output"] == facts.output_index


def index_of(model: bytes, facts: EmbedderFacts | None = None) -> tuple[str, bytes] | None:
    """The (name, bytes) of the packed index the searcher would read, or None (``model``: bytes,
    or a :func:`~scannlite.store.bundle.ondevice.bundle_file.mapped` file, which gives a view).

    The reader finds the index; the policy says which output the searcher reads (``facts``,
    when the caller has them already); an index on another output is never read.
    """
    if not packs_index(facts or inspect_embedder(model, "the model")):
        return None
    bundle = read_bundle(model)
    return bundle.index_name, bundle.index_file
