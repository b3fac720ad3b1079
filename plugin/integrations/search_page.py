"""The offline search page: one folder a static server serves, with no CDN and no network.

``write(out)`` copies the page (libscannlite/wasm/page/), scannlite.mjs and scannlite.wasm (the C
searcher compiled to WebAssembly) and MediaPipe's TextEmbedder (the npm package `npm ci` installed
in libscannlite/wasm/page/node_modules) next to a bundle, so a browser embeds and searches offline
with the same results as the C library (docs/web.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scannlite.store.errors import ScannliteError

ROOT = Path(__file__).resolve().parents[2]
PAGE_SRC = ROOT / "libscannlite" / "wasm" / "page"
MEDIAPIPE = PAGE_SRC / "node_modules" / "@mediapipe" / "tasks-text"
PAGE = "search.html"
FOLDER = "search-page"


class SearchPageError(ScannliteError):
    """The page's parts are not built: scannlite.wasm (`make wasm`) or MediaPipe (`make web`)."""


def sources() -> dict[str, Path]:
    """Each file of the page, by its path under the output folder, and where it is copied from."""
    wasm = Path(os.environ.get("SCANNLITE_WASM") or ROOT / "libscannlite" / "build-wasm" / "scannlite.wasm")
    files = {
        f"{FOLDER}/search.mjs": PAGE_SRC / "search.mjs",
        f"{FOLDER}/scannlite.mjs": ROOT / "libscannlite" / "wasm" / "scannlite.mjs",
        f"{FOLDER}/scannlite.wasm": wasm,
        f"{FOLDER}/mediapipe/text_bundle.mjs": MEDIAPIPE / "text_bundle.mjs",
        f"{FOLDER}/mediapipe/package.json": MEDIAPIPE / "package.json",  # its version and license (Apache-2.0)
    }
    for name in ("text_wasm_internal", "text_wasm_nosimd_internal"):  # SIMD or not, chosen by the browser
        for ext in ("js", "wasm"):
            files[f"{FOLDER}/mediapipe/wasm/{name}.{ext}"] = MEDIAPIPE / "wasm" / f"{name}.{ext}"
    files[PAGE] = PAGE_SRC / "search.html"  # last: the page appears once everything it loads is there
    return files


def missing() -> list[Path]:
    """The page's sources that are not there (empty when the page can be written)."""
    return [src for src in sources().values() if not src.is_file()]


def write(out: Path) -> Path:
    """Copy the page into ``out`` (search.html and search-page/); returns search.html's path.

    Every file is written to a temporary name and renamed, so an interrupted copy leaves the old
    page or none, never a mix."""
    absent = missing()
    if absent:
        raise SearchPageError(
            f"the search page needs {absent[0]} (run `make web`: scannlite.wasm and MediaPipe's npm package)"
        )
    out = Path(out)
    for rel, src in sources().items():
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    return out / PAGE
