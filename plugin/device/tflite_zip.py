"""The zip archive a TFLite model carries after its flatbuffer, read and rewritten reproducibly.

tflite-support packs associated files (vocabularies, the ScaNN index) by appending a zip to the
model; the Task Library reads them back by name and insists they are *stored* (uncompressed).
``MetadataPopulator`` writes each entry with ``ZipFile.writestr(name, data)``, which stamps the
current local time into the entry, so two identical exports made a second apart differ. This
module splits a model into flatbuffer + files and writes the archive back with a fixed
timestamp, so the same inputs always give the same bytes.

Pure python (zipfile, io): usable in any kind of process.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Sequence

#: The earliest date a zip entry can hold (DOS epoch). Any constant works; this one says
#: "no date" to anyone who lists the archive.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_COPY_CHUNK = 1 << 22


def split(model: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Return ``(flatbuffer, [(name, data), ...])``; files in archive order, none if no zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            infos = zf.infolist()
            files = [(info.filename, zf.read(info)) for info in infos]
    except zipfile.BadZipFile:
        return bytes(model), []
    if not infos:
        return bytes(model), []
    # zipfile reports header offsets relative to the file start even for an archive glued to
    # the end of other data, so the first local header is where the flatbuffer stops.
    start = min(info.header_offset for info in infos)
    return bytes(model[:start]), files


def write(out, flatbuffer: bytes, files: Sequence[tuple[str, bytes | str | os.PathLike]]) -> None:
    """Write ``flatbuffer`` and then ``files`` as a stored zip with fixed timestamps and modes to
    the binary file ``out``. A file's data may be bytes or the path of a file, copied in chunks
    (an index may be larger than is worth holding in memory): the bytes written are the same."""
    names = [name for name, _ in files]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate associated file names in the model: {sorted(names)}")
    out.write(flatbuffer)
    if not files:
        return
    # "w" on a stream positioned after the flatbuffer writes absolute offsets, as appending
    # does, but never scans the flatbuffer for a stray end-of-archive signature.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, whatever the host: part of the bytes
            info.external_attr = 0o644 << 16
            if isinstance(data, (bytes, bytearray, memoryview)):
                zf.writestr(info, data)
                continue
            # What writestr does, with the data read in chunks (its size known up front, so the
            # local header is the same as writestr's).
            info.file_size = os.path.getsize(data)
            with open(data, "rb") as src, zf.open(info, "w") as dest:
                shutil.copyfileobj(src, dest, _COPY_CHUNK)


def join(flatbuffer: bytes, files: list[tuple[str, bytes]]) -> bytes:
    """Append ``files`` to ``flatbuffer`` as a stored zip with fixed timestamps and modes."""
    out = io.BytesIO()
    write(out, flatbuffer, files)
    return out.getvalue()


def normalize(model: bytes) -> bytes:
    """Rewrite a model's appended zip reproducibly (same entries, same order, fixed dates)."""
    flatbuffer, files = split(model)
    return join(flatbuffer, files)
