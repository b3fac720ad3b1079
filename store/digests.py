"""Where scannlite computes sha256: of bytes, and of files read by ``hashlib.file_digest``.

sha256 is the identity of segments and bundles everywhere (the catalog's tables, manifests, exports, patches;
docs/schema.md, docs/delta-bundles.md). A file is hashed as it streams by, never held whole in memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(data: bytes | bytearray | memoryview) -> str:
    """Hex sha256 of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's contents."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
