"""Bundle patches: the bytes that turn one exported bundle into the next.

A patch is a standard zstd stream made in zstd's *patch-from* mode: the old bundle is the
compressor's raw-content dictionary, with a window that covers old and new, so every byte the
new bundle shares with the old one costs a back-reference. Any libzstd (Android, iOS, the
``zstd`` command: ``zstd -d --patch-from=OLD.tflite PATCH -o NEW.tflite``) applies it;
nothing here is a home-made diff format (why zstd: docs/delta-bundles.md).

The patch starts with a zstd *skippable frame* holding its own manifest (UTF-8 JSON: the
base's and the result's sha256, BLAKE3 and sizes, snapshots, format). Decoders skip such frames
by definition, so the file stays a plain zstd stream, while ``bundle patch`` can refuse a wrong
base before decoding anything and check the result before writing it. The zstd frame also
carries a content checksum (XXH64), so a corrupt patch fails inside the decoder too.

Bundles are known by their sha256 everywhere (exports, ``--delta-from``, manifests, the patch's
file name), so the manifest keeps it; applying checks the BLAKE3 digests instead: both are
cryptographic, and BLAKE3 (SIMD, a tree mode spread over the cores) costs a small share of what
sha256 does (docs/design-figures.md, "Applying patches").
"""

from __future__ import annotations

import json
import math
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from scannlite.store.atomic import replacing
from scannlite.store.digests import sha256
from scannlite.store.errors import InvalidInput

FORMAT = "zstd-patch-from"
#: /2 added the BLAKE3 digests that applying checks; /1 patches are refused (export again).
HEADER_FORMAT = "scannlite-patch/2"
#: Any magic 0x184D2A50..0x184D2A5F marks a skippable frame; this one is scannlite's.
SKIPPABLE_MAGIC = 0x184D2A5C
ZSTD_MAGIC = 0xFD2FB528
#: zstd's strongest regular level: patches are made once, on a server, and fetched by phones.
LEVEL = 19
#: Decoders accept windows up to 2^27 (128 MiB) without being told; larger needs --long=N.
DEFAULT_MAX_WINDOW_LOG = 27
#: No TFLite model exceeds 2 GiB (flatbuffers' 32-bit offsets); packed files may follow it, so allow 2^40.
MAX_BUNDLE_BYTES = 1 << 40
_HEX64 = re.compile(r"[0-9a-f]{64}")


def blake3_hex(data: bytes) -> str:
    """BLAKE3-256 of ``data`` in hex, on every core: faster than one thread on bundles (docs/design-figures.md)."""
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()


def patch_path_for(out: Path, base_sha256: str) -> Path:
    """``NEW.tflite`` + base hash -> ``NEW.from-<first 12 hex digits>.patch``, beside NEW."""
    out = Path(out)
    return out.with_name(f"{out.stem}.from-{base_sha256[:12]}.patch")


def window_log(base_size: int, result_size: int) -> int:
    """The smallest window that reaches from the end of the result back to the base's start."""
    return min(31, max(20, math.ceil(math.log2(max(base_size + result_size, 2)))))


def make_patch(base: bytes, result: bytes, header: dict, level: int = LEVEL) -> tuple[bytes, dict]:
    """(patch bytes, its manifest): ``header`` plus the hashes, sizes and format."""
    import zstandard

    wlog = window_log(len(base), len(result))
    manifest = {
        **header,
        "format": FORMAT,
        "header": HEADER_FORMAT,
        "base": {**header.get("base", {}), "sha256": sha256(base), "blake3": blake3_hex(base), "bytes": len(base)},
        "result": {
            **header.get("result", {}),
            "sha256": sha256(result),
            "blake3": blake3_hex(result),
            "bytes": len(result),
        },
        "zstd": {"level": level, "window_log": wlog, "long_distance_matching": True},
    }
    params = zstandard.ZstdCompressionParameters.from_level(
        level, source_size=len(result), window_log=wlog, enable_ldm=True, write_checksum=1, write_content_size=1
    )
    cdict = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    body = zstandard.ZstdCompressor(dict_data=cdict, compression_params=params).compress(result)
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return struct.pack("<II", SKIPPABLE_MAGIC, len(raw)) + raw + body, manifest


def read_header(patch: bytes, name: str = "the patch") -> tuple[dict, int]:
    """(manifest, offset of the zstd frame); one-line :class:`InvalidInput` if it is no patch."""
    if len(patch) < 8:
        raise InvalidInput(f"{name} is not a scannlite patch: {len(patch)} bytes is too short")
    magic, size = struct.unpack_from("<II", patch)
    if magic != SKIPPABLE_MAGIC:
        raise InvalidInput(f"{name} is not a scannlite patch (no patch manifest frame at its start)")
    if 8 + size + 4 > len(patch):
        raise InvalidInput(f"{name} is truncated: its manifest frame runs past the end of the file")
    try:
        manifest = json.loads(patch[8 : 8 + size].decode())
        header = manifest.get("header")
        ok = header == HEADER_FORMAT and manifest.get("format") == FORMAT
        ok = ok and all(
            isinstance(manifest[s]["sha256"], str)
            and isinstance(manifest[s]["bytes"], int)
            and 0 <= manifest[s]["bytes"] <= MAX_BUNDLE_BYTES
            and _HEX64.fullmatch(manifest[s]["blake3"])
            for s in ("base", "result")
        )
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        header, ok = None, False
    if not ok and isinstance(header, str) and header.startswith("scannlite-patch/") and header != HEADER_FORMAT:
        raise InvalidInput(
            f"{name} is a {header} patch; this scannlite applies {HEADER_FORMAT} patches only "
            "(export the bundle again with --delta-from)"
        )
    if not ok:
        raise InvalidInput(f"{name} has a corrupt patch manifest")
    if struct.unpack_from("<I", patch, 8 + size)[0] != ZSTD_MAGIC:
        raise InvalidInput(f"{name} is corrupt: no zstd frame after its manifest")
    return manifest, 8 + size


def apply_patch(
    base: bytes,
    patch: bytes,
    *,
    base_name: str = "the base",
    patch_name: str = "the patch",
    max_window_log: int = DEFAULT_MAX_WINDOW_LOG,
) -> tuple[bytes, dict]:
    """(result, manifest), after checking the base and the result (sizes and BLAKE3 digests; the
    sha256 in the manifest is the bundles' identity, not checked here).

    The base's digest is computed on a second thread while zstd decodes on this one (both let go
    of the GIL), which shortens an apply (docs/design-figures.md, "Applying patches"). A wrong base is still reported as such,
    before any decode error it caused, and nothing decoded from it is returned."""
    import zstandard

    manifest, start = read_header(patch, patch_name)
    want = manifest["base"]
    wlog = manifest.get("zstd", {}).get("window_log", 0)
    decodable = isinstance(wlog, int) and wlog <= max(max_window_log, 31)
    right_base, result, error = False, None, None
    if len(base) == want["bytes"]:
        with ThreadPoolExecutor(1) as pool:
            base_digest = pool.submit(lambda: blake3.blake3(base).hexdigest())  # one thread: zstd has the other
            if decodable:
                try:
                    result = _decode(base, memoryview(patch)[start:], manifest["result"]["bytes"], wlog)
                except Exception as exc:  # noqa: BLE001 - a wrong base explains any failure: it is told first
                    error = exc
            right_base = base_digest.result() == want["blake3"]
    if not right_base:
        snap = f" (snapshot {want['snapshot']})" if want.get("snapshot") is not None else ""
        raise InvalidInput(
            f"{base_name} is not the base of {patch_name}: it needs {want.get('file') or 'a bundle'}"
            f"{snap} with sha256 {want['sha256'][:12]}..., {base_name} has {sha256(base)[:12]}..."
        )
    if not decodable:
        raise InvalidInput(f"{patch_name} has a corrupt patch manifest (window log {wlog!r})")
    if error is not None:
        if isinstance(error, zstandard.ZstdError):
            raise InvalidInput(f"{patch_name} is corrupt or truncated: zstd says {str(error).strip()}") from None
        raise error
    if (
        result is None
        or len(result) != manifest["result"]["bytes"]
        or blake3_hex(result) != manifest["result"]["blake3"]
    ):
        raise InvalidInput(f"{patch_name} is corrupt: the patched bundle's BLAKE3 differs from the patch manifest's")
    return result, manifest


def _decode(base: bytes, frame: memoryview, expected: int, wlog: int) -> bytes:
    """The zstd frame decoded with ``base`` as its raw-content dictionary, at most ``expected`` bytes."""
    import zstandard

    ddict = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdDecompressor(dict_data=ddict, max_window_size=1 << max(wlog, 10)).decompress(
        frame, max_output_size=expected
    )


def apply_file(old: Path, patch: Path, out: Path) -> dict:
    """``bundle patch``: OLD + PATCH -> OUT, written atomically, only once the result's hash matches."""
    old, patch, out = Path(old), Path(patch), Path(out)
    for p in (old, patch):
        if not p.is_file():
            raise InvalidInput(f"cannot read {p}: no such file")
    if not out.parent.is_dir():
        raise InvalidInput(f"cannot write {out}: directory {out.parent} does not exist")
    if out.resolve() in (old.resolve(), patch.resolve()):
        raise InvalidInput(f"cannot write {out}: it is an input; give another -o")
    result, manifest = apply_patch(old.read_bytes(), patch.read_bytes(), base_name=old.name, patch_name=patch.name)
    with replacing(out) as (tmp,):
        tmp.write_bytes(result)
    return manifest
