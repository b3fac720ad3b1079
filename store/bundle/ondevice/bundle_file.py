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

This is scannlite's one TFLite model reader, in every process. :func:`.model_facts.describe_model` feeds
the acceptance policy (``scannlite.store.bundle.embedder_checks``), so it reports facts as the
Task Library reads them (tensor order from the subgraph, metadata matched by position, the
first tokenizer unit, ...) and lists the problems it can see.
"""

from __future__ import annotations

import contextlib
import functools
import io
import mmap
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from scannlite.store.bundle.ondevice.errors import IndexFormatError

METADATA_BUFFER_NAME = b"TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
INDEX_FILE_NAME = "on_device_scann_index.ldb"  # the name Model Maker gives the packed index
_NOT_TFLITE = "not a TFLite model"
_TOKENIZERS = {
    "RegexTokenizerOptions": "regex",
    "BertTokenizerOptions": "bert",
    "SentencePieceTokenizerOptions": "sentencepiece",
}
_TOKENIZER_FILES = ("vocabFile", "sentencePieceModel")  # fields of tokenizer options that name files


@functools.lru_cache(maxsize=1)
def _schemas():
    """Import the generated flatbuffer modules on first use (they are large): tflite-support's,
    else MediaPipe's (:mod:`.tflite_modules`)."""
    from scannlite.store.bundle.ondevice.tflite_modules import schemas

    return schemas()


@functools.cache
def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _name(enum_class, value: int) -> str:
    return _names(enum_class).get(value, f"UNKNOWN({value})")


def _kind(unit) -> str:
    """A process unit's options type name, e.g. "RegexTokenizerOptions"."""
    return _name(_schemas()[1].ProcessUnitOptions, unit.optionsType)


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
        raise IndexFormatError(
            f"the model names index file {self.index_name!r} but carries no zip entry with that name"
        )


# ---------------------------------------------------------------------------------------
# Model files


class _Map(mmap.mmap):
    """A read-only map of a model file. zipfile wants ``seekable()``, which mmap lacks before 3.13."""

    def seekable(self) -> bool:
        return True


@contextlib.contextmanager
def mapped(path):
    """A model file, memory-mapped read-only, for the readers below to take like bytes.

    Pages are read only where a parse looks, and packed files come out as views of the map:
    inspecting a 700 MB bundle reads its flatbuffer, its zip directory and its files'
    checksums (each parse checks them again), never a copy of its index. Views must be dropped
    before the block ends.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""  # an empty file cannot be mapped; the readers refuse it by its length
            return
        view = _Map(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        yield view
    finally:
        try:
            view.close()
        except BufferError:  # a caller kept a view; the map is unmapped once it is gone
            pass


# ---------------------------------------------------------------------------------------
# Flatbuffer access


def _parser(fn):
    """Decorator for the public readers: bytes (or a :func:`mapped` file) in, any low-level parse
    failure out as one IndexFormatError line."""

    @functools.wraps(fn)
    def parse(data):
        if not isinstance(data, (bytes, bytearray, memoryview, _Map)):
            raise TypeError(f"expected bytes or a mapped() file, not {type(data).__name__}")
        try:
            return fn(data if isinstance(data, (bytes, _Map)) else bytes(data))
        except IndexFormatError:
            raise
        except (struct.error, IndexError, ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise IndexFormatError(f"corrupt TFLite model: malformed flatbuffer ({detail})") from None

    return parse


def _count(n: int, data_len: int, what: str) -> int:
    # A vector of n offsets takes 4n bytes; a larger count is garbage, not a huge model.
    if n < 0 or 4 * n > data_len:
        raise IndexFormatError(f"{_NOT_TFLITE}: implausible {what} count {n}")
    return n


def _load_model(data: bytes):
    if not data:
        raise IndexFormatError(f"{_NOT_TFLITE}: the file is empty")
    if len(data) < 8 or data[4:8] != MODEL_IDENTIFIER:
        raise IndexFormatError(f"{_NOT_TFLITE}: no TFL3 file identifier at bytes 4..8")
    if struct.unpack_from("<I", data, 0)[0] + 4 > len(data):
        raise IndexFormatError(f"{_NOT_TFLITE}: the root table offset points past the end of the file")
    model = _schemas()[0].Model.GetRootAs(data, 0)
    # Refuse a truncated model: the TFLite verifier would, but lazy flatbuffer reads never look.
    for i in range(_count(model.BuffersLength(), len(data), "buffer")):
        tab = model.Buffers(i)._tab
        slot = tab.Offset(4)
        if slot and tab.Vector(slot) + tab.VectorLen(slot) > len(data):
            raise IndexFormatError(f"corrupt TFLite model: buffer {i} runs past the end of the file (truncated?)")
    return model


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
        start, size = (
            tab.Get(flatbuffers.number_types.Uint64Flags, tab.Pos + slot) for slot in (slot_offset, slot_size)
        )
        if start > 1 and start + size <= len(data):
            return data[start : start + size]
        raise IndexFormatError(f"{_NOT_TFLITE}: buffer {index} lies outside the file")
    return b""


def _metadata(model, data: bytes, problems: list[str]) -> tuple[bool, Any]:
    """Whether the model has a TFLITE_METADATA buffer, and its unpacked ModelMetadataT or None
    (with a problem noted) when unusable."""
    for i in range(_count(model.MetadataLength(), len(data), "metadata")):
        if (entry := model.Metadata(i)).Name() == METADATA_BUFFER_NAME:
            raw = _buffer_bytes(model, data, entry.Buffer())
            break
    else:
        return False, None
    if len(raw) < 8 or raw[4:8] != METADATA_IDENTIFIER:
        problems.append(
            f"TFLITE_METADATA has identifier {raw[4:8]!r}, expected {METADATA_IDENTIFIER!r} "
            "(the Task Library refuses the model)"
        )
        return True, None
    _, meta = _schemas()
    return True, meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAs(raw, 0))


def _read_zip(data: bytes, problems: list[str]) -> dict[str, bytes]:
    """Entries of the zip appended to the model ({} if there is none): bytes, or views of a
    :func:`mapped` file."""
    try:
        archive = zipfile.ZipFile(data if isinstance(data, mmap.mmap) else io.BytesIO(data))
    except zipfile.BadZipFile:
        return {}  # like the Task Library: no zip means no associated files
    except Exception as exc:  # zipfile raises many types on hostile input; all mean "corrupt"
        raise IndexFormatError(f"corrupt bundle: cannot read the appended zip: {exc}") from None
    files: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            try:
                if info.compress_type == zipfile.ZIP_STORED:
                    files[info.filename] = _stored_entry(data, info)
                    continue
                problems.append(
                    f"zip entry {info.filename!r} is compressed; the Task Library only "
                    "reads stored (uncompressed) entries and rejects the whole archive"
                )
                files[info.filename] = archive.read(info)
            except IndexFormatError:
                raise
            except Exception as exc:
                raise IndexFormatError(f"corrupt bundle: cannot read zip entry {info.filename!r}: {exc}") from None
    return files


_CRC_CHUNK = 1 << 24


def _stored_entry(data, info: zipfile.ZipInfo):
    """A stored entry's contents, found through its local header as the Task Library finds
    them, and held to the archive's CRC-32: a copy out of bytes, a view of a map."""
    at = info.header_offset
    head = data[at : at + 30]
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise IndexFormatError(f"corrupt bundle: zip entry {info.filename!r} has no local header")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    start = at + 30 + name_len + extra_len
    end = start + info.file_size
    if info.compress_size != info.file_size:
        raise IndexFormatError(
            f"corrupt bundle: stored zip entry {info.filename!r} has a compressed size "
            f"({info.compress_size}) unlike its size ({info.file_size})"
        )
    if end > len(data):
        raise IndexFormatError(f"corrupt bundle: zip entry {info.filename!r} runs past the end of the file")
    view = memoryview(data)[start:end]
    crc = 0
    for a in range(0, len(view), _CRC_CHUNK):
        crc = zlib.crc32(view[a : a + _CRC_CHUNK], crc)
        if isinstance(data, mmap.mmap):
            # Checked pages need not stay mapped: a check must not hold a large index resident.
            low = (start + a) // mmap.PAGESIZE * mmap.PAGESIZE
            data.madvise(mmap.MADV_DONTNEED, low, min(start + a + _CRC_CHUNK, end) - low)
    if crc != info.CRC:
        raise IndexFormatError(f"corrupt bundle: zip entry {info.filename!r} fails its CRC-32 check")
    if isinstance(data, mmap.mmap):
        return view
    out = bytes(view)
    view.release()
    return out


# ---------------------------------------------------------------------------------------
# Metadata walking


def _unit_files(unit) -> list:
    """The AssociatedFileT entries a (tokenizer) process unit's options name."""
    options = getattr(unit, "options", None)
    return [f for attr in _TOKENIZER_FILES for f in getattr(options, attr, None) or []]


def _files_of(entries, where: str, packed: dict[str, bytes]) -> list[AssociatedFileInfo]:
    file_types = _schemas()[1].AssociatedFileType
    return [
        AssociatedFileInfo(
            name=_text(f.name),
            type=_name(file_types, f.type),
            where=where,
            description=_text(f.description),
            locale=_text(f.locale),
            version=_text(f.version),
            packed=_text(f.name) in packed,
        )
        for f in entries or []
    ]


def _all_associated_files(meta, packed: dict[str, bytes]) -> list[AssociatedFileInfo]:
    found = _files_of(meta.associatedFiles, "model", packed)
    for s, sub in enumerate(meta.subgraphMetadata or []):
        prefix = "" if s == 0 else f"subgraph {s} "  # the Task Library only uses subgraph 0
        found += _files_of(sub.associatedFiles, f"subgraph {s}", packed)
        for side, tensors in (("input", sub.inputTensorMetadata), ("output", sub.outputTensorMetadata)):
            for i, tensor in enumerate(tensors or []):
                found += _files_of(tensor.associatedFiles, f"{prefix}{side} {i}", packed)
                for unit in tensor.processUnits or []:
                    found += _files_of(_unit_files(unit), f"{prefix}{side} {i} {_kind(unit)}", packed)
        for side, units in (("input", sub.inputProcessUnits), ("output", sub.outputProcessUnits)):
            for unit in units or []:
                found += _files_of(_unit_files(unit), f"subgraph {s} {side}_process_units {_kind(unit)}", packed)
    return found


def _bundle_from(data: bytes, model):
    """The Bundle, plus the unpacked metadata (or None) for callers that look further."""
    problems: list[str] = []
    has_metadata, meta = _metadata(model, data, problems)
    files = _read_zip(data, problems)
    associated = _all_associated_files(meta, files) if meta is not None else []
    index_name = index_output = None
    for f in associated:
        if f.name is not None and not f.packed:
            problems.append(f"associated file {f.name!r} ({f.type}, {f.where}) is not packed in the model")
        if f.type == "SCANN_INDEX_FILE" and not f.where.startswith("output "):
            problems.append(
                f"index file {f.name!r} hangs on {f.where}; the Task Library only looks at output tensors of subgraph 0"
            )
        # The Task Library's index: the first named one on an output tensor of subgraph 0.
        output = re.fullmatch(r"output (\d+)", f.where)
        if index_name is None and output and f.type == "SCANN_INDEX_FILE" and f.name is not None:
            index_name, index_output = f.name, int(output.group(1))
    return Bundle(
        index_name,
        index_output,
        files.get(index_name) if index_name is not None else None,
        files,
        associated,
        has_metadata,
        _text(meta.minParserVersion) if meta is not None else None,
        problems,
    ), meta


@_parser
def read_bundle(data: bytes) -> Bundle:
    """Parse a ``.tflite`` bundle: metadata, associated files, zip entries and the packed index."""
    return _bundle_from(data, _load_model(data))[0]


@_parser
def read_metadata(data: bytes):
    """The model's metadata as an editable ``ModelMetadataT``; None if it has none usable."""
    return _metadata(_load_model(data), data, [])[1]
