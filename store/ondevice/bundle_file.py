"""Read a TFLite Searcher bundle (``.tflite``) without TensorFlow or tflite-support's native code.

A bundle is a TFLite flatbuffer whose ``TFLITE_METADATA`` buffer holds model metadata (the
``M001`` flatbuffer of ``metadata_schema.fbs``) and which has a zip archive appended to it with
the associated files (vocabularies, the ScaNN index). The Task Library takes the index from
the first ``SCANN_INDEX_FILE`` associated file of the output tensor it searches with, and reads
it by name from the zip, which must store every entry uncompressed.

Parsing uses the pure-flatbuffer modules tflite-support ships
(``tensorflow_lite_support.metadata.schema_py_generated`` and ``...metadata_schema_py_generated``):
they import only ``flatbuffers`` and are safe in the store process. The flatbuffers runtime
does no bounds checking, so every access is wrapped and any failure becomes one
:class:`IndexFormatError`.

This is scannlite's one TFLite model reader, in every process. :func:`describe_model` feeds
the one acceptance policy (``scannlite.store.embedder_checks``), so it reports facts as the
Task Library reads them (tensor order from the subgraph, metadata matched by position, the
first tokenizer unit, ...) and lists the problems it can see.
"""
from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from .errors import IndexFormatError

METADATA_BUFFER_NAME = b"TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
INDEX_FILE_NAME = "on_device_scann_index.ldb"  # the name Model Maker gives the packed index
_NOT_TFLITE = "not a TFLite model"
_TOKENIZERS = {"RegexTokenizerOptions": "regex", "BertTokenizerOptions": "bert",
               "SentencePieceTokenizerOptions": "sentencepiece"}


@lru_cache(maxsize=1)
def _schemas():
    """Import the generated flatbuffer modules on first use (they are large)."""
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as meta
    from tensorflow_lite_support.metadata import schema_py_generated as schema
    return schema, meta


@lru_cache(maxsize=None)
def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, f"UNKNOWN({value})")


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


@dataclass(frozen=True)
class AssociatedFileInfo:
    """One ``AssociatedFile`` entry of the metadata, and where it hangs."""

    name: str | None
    type: str  # AssociatedFileType name, e.g. "SCANN_INDEX_FILE", "VOCABULARY"
    where: str  # "model", "subgraph", "input 0", "output 1", "input 0 RegexTokenizerOptions"...
    description: str | None = None
    locale: str | None = None
    version: str | None = None
    packed: bool = False  # a zip entry with this name exists

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Bundle:
    """The pieces of a bundle the store process needs."""

    index_name: str | None
    index_output: int | None  # output tensor (of subgraph 0) whose metadata names the index
    index_file: bytes | None
    files: dict[str, bytes]  # every zip entry, by name
    associated_files: list[AssociatedFileInfo]
    has_metadata: bool
    min_parser_version: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def other_files(self) -> dict[str, bytes]:
        return {k: v for k, v in self.files.items() if k != self.index_name}

    def require_index(self) -> bytes:
        """The packed index, or an :class:`IndexFormatError` saying why there is none."""
        if self.index_file is not None:
            return self.index_file
        if self.index_name is None:
            raise IndexFormatError("the model has no SCANN_INDEX_FILE associated file on its output tensors")
        raise IndexFormatError(f"the model names index file {self.index_name!r} but carries no zip entry with that name")


# ---------------------------------------------------------------------------------------
# Flatbuffer access


def _guard(what: str):
    """Decorator turning any low-level parse failure into one IndexFormatError line."""
    def wrap(fn):
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except IndexFormatError:
                raise
            except (struct.error, IndexError, ValueError, TypeError, AttributeError,
                    OverflowError, UnicodeDecodeError, RecursionError) as exc:
                detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise IndexFormatError(f"{what}: malformed flatbuffer ({detail})") from None
        inner.__name__, inner.__doc__ = fn.__name__, fn.__doc__
        return inner
    return wrap


def _count(n: int, data_len: int, what: str) -> int:
    # A vector of n offsets takes 4n bytes; a larger count is garbage, not a huge model.
    if n < 0 or 4 * n > data_len:
        raise IndexFormatError(f"{_NOT_TFLITE}: implausible {what} count {n}")
    return n


def _check_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, not {type(data).__name__}")
    return bytes(data)


def _load_model(data: bytes):
    if not data:
        raise IndexFormatError(f"{_NOT_TFLITE}: the file is empty")
    if len(data) < 8 or data[4:8] != MODEL_IDENTIFIER:
        raise IndexFormatError(f"{_NOT_TFLITE}: no TFL3 file identifier at bytes 4..8")
    schema, _ = _schemas()
    root = struct.unpack_from("<I", data, 0)[0]
    if root + 4 > len(data):
        raise IndexFormatError(f"{_NOT_TFLITE}: the root table offset points past the end of the file")
    model = schema.Model.GetRootAs(data, 0)
    _check_buffers(model, len(data))
    return model


def _check_buffers(model, size: int) -> None:
    """Refuse a truncated model: the TFLite verifier would, but lazy flatbuffer reads never look."""
    for i in range(_count(model.BuffersLength(), size, "buffer")):
        tab = model.Buffers(i)._tab
        slot = tab.Offset(4)
        if slot and tab.Vector(slot) + tab.VectorLen(slot) > size:
            raise IndexFormatError(f"corrupt TFLite model: buffer {i} runs past the end of the file (truncated?)")


def _buffer_bytes(model, data: bytes, index: int) -> bytes:
    """Contents of ``model.buffers[index]``, inline or (models over 2 GB) at offset/size."""
    if not 0 <= index < model.BuffersLength():
        raise IndexFormatError(f"{_NOT_TFLITE}: metadata points at missing buffer {index}")
    buf = model.Buffers(index)
    if buf.DataLength():
        return buf.DataAsNumpy().tobytes()
    # Newer schemas add `offset: ulong` (field 1) and `size: ulong` (field 2) to Buffer; the
    # generated module predates them, so read the two slots directly.
    import flatbuffers
    tab = buf._tab
    slot_offset, slot_size = tab.Offset(6), tab.Offset(8)
    if slot_offset and slot_size:
        start = tab.Get(flatbuffers.number_types.Uint64Flags, tab.Pos + slot_offset)
        size = tab.Get(flatbuffers.number_types.Uint64Flags, tab.Pos + slot_size)
        if start > 1 and start + size <= len(data):
            return data[start:start + size]
        raise IndexFormatError(f"{_NOT_TFLITE}: buffer {index} lies outside the file")
    return b""


def _metadata_buffer(model, data: bytes) -> bytes | None:
    for i in range(_count(model.MetadataLength(), len(data), "metadata")):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_BUFFER_NAME:
            return _buffer_bytes(model, data, entry.Buffer())
    return None


def _parse_metadata(raw: bytes | None, problems: list[str]):
    """The unpacked ModelMetadataT, or None (with a problem noted) when unusable."""
    if raw is None:
        return None
    if len(raw) < 8 or raw[4:8] != METADATA_IDENTIFIER:
        problems.append(f"TFLITE_METADATA has identifier {raw[4:8]!r}, expected {METADATA_IDENTIFIER!r} "
                        "(the Task Library refuses the model)")
        return None
    _, meta = _schemas()
    return meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAs(raw, 0))


def _read_zip(data: bytes, problems: list[str]) -> dict[str, bytes]:
    """Entries of the zip appended to the model ({} if there is none)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return {}  # like the Task Library: no zip means no associated files
    except Exception as exc:  # zipfile raises many types on hostile input; all mean "corrupt"
        raise IndexFormatError(f"corrupt bundle: cannot read the appended zip: {exc}") from None
    files: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                problems.append(f"zip entry {info.filename!r} is compressed; the Task Library only "
                                "reads stored (uncompressed) entries and rejects the whole archive")
            try:
                files[info.filename] = archive.read(info)
            except Exception as exc:
                raise IndexFormatError(f"corrupt bundle: cannot read zip entry {info.filename!r}: {exc}") from None
    return files


# ---------------------------------------------------------------------------------------
# Metadata walking


def _files_of(entries, where: str, file_types: dict[int, str], packed: dict[str, bytes]):
    for f in entries or []:
        name = _text(f.name)
        yield AssociatedFileInfo(name=name, type=_name(file_types, f.type), where=where,
                                 description=_text(f.description), locale=_text(f.locale),
                                 version=_text(f.version), packed=name in packed)


def _unit_files(unit, where: str, file_types, packed):
    options = unit.options
    for attr in ("vocabFile", "sentencePieceModel"):
        yield from _files_of(getattr(options, attr, None), where, file_types, packed)


def _all_associated_files(meta, packed: dict[str, bytes]) -> list[AssociatedFileInfo]:
    _, m = _schemas()
    file_types, unit_types = _names(m.AssociatedFileType), _names(m.ProcessUnitOptions)
    found = list(_files_of(meta.associatedFiles, "model", file_types, packed))
    for s, sub in enumerate(meta.subgraphMetadata or []):
        prefix = "" if s == 0 else f"subgraph {s} "  # the Task Library only uses subgraph 0
        found += _files_of(sub.associatedFiles, f"subgraph {s}", file_types, packed)
        for side, tensors in (("input", sub.inputTensorMetadata), ("output", sub.outputTensorMetadata)):
            for i, tensor in enumerate(tensors or []):
                found += _files_of(tensor.associatedFiles, f"{prefix}{side} {i}", file_types, packed)
                for unit in tensor.processUnits or []:
                    found += _unit_files(unit, f"{prefix}{side} {i} {_name(unit_types, unit.optionsType)}",
                                         file_types, packed)
        for side, units in (("input", sub.inputProcessUnits), ("output", sub.outputProcessUnits)):
            for unit in units or []:
                found += _unit_files(unit, f"subgraph {s} {side}_process_units "
                                           f"{_name(unit_types, unit.optionsType)}", file_types, packed)
    return found


def _find_index(meta) -> tuple[str | None, int | None]:
    """First SCANN_INDEX_FILE (with a name) on subgraph 0's output tensors, in output order."""
    _, m = _schemas()
    subs = (meta.subgraphMetadata or []) if meta is not None else []
    if not subs:
        return None, None
    for i, tensor in enumerate(subs[0].outputTensorMetadata or []):
        for f in tensor.associatedFiles or []:
            if f.type == m.AssociatedFileType.SCANN_INDEX_FILE and f.name is not None:
                return _text(f.name), i
    return None, None


def _bundle_from(data: bytes, model):
    """The Bundle, plus the unpacked metadata (or None) for callers that look further."""
    problems: list[str] = []
    raw_meta = _metadata_buffer(model, data)
    meta = _parse_metadata(raw_meta, problems)
    files = _read_zip(data, problems)
    associated = _all_associated_files(meta, files) if meta is not None else []
    index_name, index_output = _find_index(meta)
    for f in associated:
        if f.name is not None and not f.packed:
            problems.append(f"associated file {f.name!r} ({f.type}, {f.where}) is not packed in the model")
        if f.type == "SCANN_INDEX_FILE" and not f.where.startswith("output "):
            problems.append(f"index file {f.name!r} hangs on {f.where}; the Task Library only looks at "
                            "output tensors of subgraph 0")
    bundle = Bundle(
        index_name=index_name, index_output=index_output,
        index_file=files.get(index_name) if index_name is not None else None,
        files=files, associated_files=associated, has_metadata=raw_meta is not None,
        min_parser_version=_text(meta.minParserVersion) if meta is not None else None,
        problems=problems,
    )
    return bundle, meta


def read_bundle(data: bytes) -> Bundle:
    """Parse a ``.tflite`` bundle: metadata, associated files, zip entries and the packed index."""
    return _read_bundle(_check_bytes(data))


@_guard("corrupt TFLite model")
def _read_bundle(data: bytes) -> Bundle:
    return _bundle_from(data, _load_model(data))[0]


@_guard("corrupt TFLite model")
def read_metadata(data: bytes):
    """The model's metadata as an editable ``ModelMetadataT``; None if it has none usable."""
    data = _check_bytes(data)
    return _parse_metadata(_metadata_buffer(_load_model(data), data), [])


# ---------------------------------------------------------------------------------------
# describe_model


def _tensor_facts(sub, tensor_index: int) -> dict:
    schema, _ = _schemas()
    if not 0 <= tensor_index < sub.TensorsLength():
        raise IndexFormatError(f"{_NOT_TFLITE}: subgraph refers to missing tensor {tensor_index}")
    t = sub.Tensors(tensor_index)
    shape = [int(v) for v in t.ShapeAsNumpy()] if t.ShapeLength() else []
    signature = [int(v) for v in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else None
    facts = {"tensor": tensor_index, "name": _text(t.Name()), "shape": shape,
             "shape_signature": signature,
             "dtype": _name(_names(schema.TensorType), t.Type()).lower(),  # "float32", "int32", "string"
             "quantization": None}
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        facts["quantization"] = {
            "scale": [float(v) for v in q.ScaleAsNumpy()],
            "zero_point": [int(v) for v in q.ZeroPointAsNumpy()] if q.ZeroPointLength() else [],
        }
    return facts


def _unit_kinds(units, unit_types) -> list[str]:
    return [_name(unit_types, u.optionsType) for u in units or []]


def _metadata_facts(facts: dict, tensor_md, side: str, shared_tokenizer, problems: list[str]) -> None:
    """Fill the metadata-derived fields of one tensor's facts."""
    _, m = _schemas()
    unit_types, colors = _names(m.ProcessUnitOptions), _names(m.ColorSpaceType)
    content_types, file_types = _names(m.ContentProperties), _names(m.AssociatedFileType)
    facts.update({"metadata_name": None, "process_units": [], "content": None, "color_space": None,
                  "normalization": None, "associated_files": []})
    if side == "input":
        facts.update({"tokenizer": None, "tokenizer_source": None, "tokenizer_files": [],
                      "regex_pattern": None})
    units = []
    if tensor_md is not None:
        facts["metadata_name"] = _text(tensor_md.name)
        units = tensor_md.processUnits or []
        facts["process_units"] = _unit_kinds(units, unit_types)
        facts["associated_files"] = [{"name": _text(f.name), "type": _name(file_types, f.type)}
                                     for f in tensor_md.associatedFiles or []]
        content = tensor_md.content
        if content is not None and content.contentPropertiesType:
            kind = _name(content_types, content.contentPropertiesType)
            facts["content"] = kind.replace("Properties", "").lower()
            if kind == "ImageProperties" and content.contentProperties is not None:
                facts["color_space"] = _name(colors, content.contentProperties.colorSpace)
        norms = [u for u in units if u.optionsType == m.ProcessUnitOptions.NormalizationOptions]
        if norms:
            opts = norms[0].options  # None if the unit's table is missing
            mean, std = getattr(opts, "mean", None), getattr(opts, "std", None)
            facts["normalization"] = {"mean": [float(v) for v in (mean if mean is not None else [])],
                                      "std": [float(v) for v in (std if std is not None else [])]}
        for kind in set(facts["process_units"]):
            if facts["process_units"].count(kind) > 1:
                problems.append(f"{side} {facts['tensor']} has several {kind} units "
                                "(the Task Library expects at most one)")
    if side != "input":
        return
    own = [u for u in units if _name(unit_types, u.optionsType) in _TOKENIZERS]
    unit, source = (own[0], "tensor") if own else (shared_tokenizer, "subgraph" if shared_tokenizer else None)
    if unit is not None:
        facts["tokenizer"] = _TOKENIZERS[_name(unit_types, unit.optionsType)]
        facts["tokenizer_source"] = source
        files = []
        for attr in ("vocabFile", "sentencePieceModel"):
            files += [_text(f.name) for f in getattr(unit.options, attr, None) or []]
        facts["tokenizer_files"] = files
        facts["regex_pattern"] = _text(getattr(unit.options, "delimRegexPattern", None))


def describe_model(data: bytes) -> dict:
    """A JSON-able description of a TFLite model, as the Task Library would see it.

    Keys: ``inputs``/``outputs`` (subgraph 0, in order: name, shape, dtype, quantization,
    metadata name, process units, tokenizer kind and files, normalization, content kind,
    color space, associated files), ``custom_ops`` and ``flex_ops``, ``builtin_ops``,
    ``has_metadata``, ``min_parser_version``, ``subgraph_process_units``, ``packed_files``,
    ``associated_files`` (all of them), ``index`` (name, output, size) and ``problems``.
    """
    return _describe(_check_bytes(data))


@_guard("corrupt TFLite model")
def _describe(data: bytes) -> dict:
    model = _load_model(data)
    schema, m = _schemas()
    bundle, meta = _bundle_from(data, model)
    problems = list(bundle.problems)

    builtin_names = _names(schema.BuiltinOperator)
    custom, builtins = [], set()
    for i in range(_count(model.OperatorCodesLength(), len(data), "operator code")):
        op = model.OperatorCodes(i)
        code = max(op.BuiltinCode(), op.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            custom.append(_text(op.CustomCode()) or "")
        else:
            builtins.add(_name(builtin_names, code))

    n_sub = _count(model.SubgraphsLength(), len(data), "subgraph")
    if n_sub == 0:
        raise IndexFormatError(f"{_NOT_TFLITE}: the model has no subgraph")
    sub = model.Subgraphs(0)
    inputs = [_tensor_facts(sub, int(sub.Inputs(i)))
              for i in range(_count(sub.InputsLength(), len(data), "input"))]
    outputs = [_tensor_facts(sub, int(sub.Outputs(i)))
               for i in range(_count(sub.OutputsLength(), len(data), "output"))]

    sub_md = (meta.subgraphMetadata or [None])[0] if meta is not None else None
    unit_types = _names(m.ProcessUnitOptions)
    shared = None
    sub_units = {"input": [], "output": []}
    if sub_md is not None:
        sub_units = {"input": _unit_kinds(sub_md.inputProcessUnits, unit_types),
                     "output": _unit_kinds(sub_md.outputProcessUnits, unit_types)}
        tokenizers = [u for u in sub_md.inputProcessUnits or [] if _name(unit_types, u.optionsType) in _TOKENIZERS]
        shared = tokenizers[0] if tokenizers else None
        if len(tokenizers) > 1:
            problems.append("subgraph input_process_units holds several tokenizers")
        for side, facts_list, mds in (("input", inputs, sub_md.inputTensorMetadata),
                                      ("output", outputs, sub_md.outputTensorMetadata)):
            if mds is not None and len(mds) != len(facts_list):
                problems.append(f"metadata describes {len(mds)} {side} tensors but the model has {len(facts_list)}")
    if meta is not None and len(meta.subgraphMetadata or []) != n_sub:
        problems.append(f"metadata describes {len(meta.subgraphMetadata or [])} subgraphs but the model has {n_sub}")
    for side, facts_list in (("input", inputs), ("output", outputs)):
        mds = (sub_md.inputTensorMetadata if side == "input" else sub_md.outputTensorMetadata) if sub_md else None
        for i, facts in enumerate(facts_list):
            tensor_md = mds[i] if mds is not None and i < len(mds) else None
            _metadata_facts(facts, tensor_md, side, shared, problems)

    index = None
    if bundle.index_name is not None:
        index = {"name": bundle.index_name, "output": bundle.index_output,
                 "bytes": len(bundle.index_file) if bundle.index_file is not None else None}
    return {
        "tflite_schema_version": int(model.Version()),
        "description": _text(model.Description()),
        "subgraphs": n_sub,
        "inputs": inputs,
        "outputs": outputs,
        "custom_ops": custom,
        "flex_ops": [c for c in custom if c.startswith("Flex")],
        "builtin_ops": sorted(builtins),
        "has_metadata": bundle.has_metadata,
        "metadata_name": _text(meta.name) if meta is not None else None,
        "min_parser_version": bundle.min_parser_version,
        "subgraph_process_units": sub_units,
        "packed_files": [{"name": k, "bytes": len(v)} for k, v in bundle.files.items()],
        "associated_files": [f.to_dict() for f in bundle.associated_files],
        "index": index,
        "problems": problems,
    }
