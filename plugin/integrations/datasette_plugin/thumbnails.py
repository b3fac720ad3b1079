"""Thumbnails of image items, served only from inside the catalog's ``thumbnails_root``.

An item is an image when its metadata, or else its id, is a relative path to an image file
under the root (``scannlite configure CATALOG --thumbnails-root DIR``). Paths are resolved
(symlinks included) before the containment check, so neither ``..`` nor a link pointing out
of the root can reach other files.
"""

from __future__ import annotations

import io
import os
from pathlib import Path, PurePosixPath

from scannlite.store.images import IMAGE_SUFFIXES

THUMBNAIL_SIDE = 160
MAX_PATH = 1024


class Refused(ValueError):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _looks_relative(rel: str) -> bool:
    return (
        0 < len(rel) <= MAX_PATH
        and "\x00" not in rel
        and "\n" not in rel
        and not rel.startswith(("/", "\\"))
        and not PurePosixPath(rel).is_absolute()
        and ":" not in rel.split("/")[0]
    )


def resolve(root: str | None, rel: str) -> Path:
    """The image file ``rel`` names under ``root``; :class:`Refused` (403/404) otherwise."""
    if not root:
        raise Refused("this catalog has no thumbnails root (scannlite configure --thumbnails-root DIR)", 404)
    if not _looks_relative(rel):
        raise Refused("the path must be relative to the thumbnails root", 403)
    # os.path rather than pathlib: this runs for every result of every search (a tenth of a
    # warm text query's time with pathlib), with the same meaning (Path.resolve is realpath).
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, rel))
    if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
        raise Refused("the path leads outside the thumbnails root", 403)
    if os.path.splitext(target)[1].lower() not in IMAGE_SUFFIXES:
        raise Refused(f"not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})", 404)
    if not os.path.isfile(target):
        raise Refused("no such image under the thumbnails root", 404)
    return Path(target)


def image_path_of(root: str | None, ident: str, metadata) -> str | None:
    """The relative path to show as this item's thumbnail, if it has one."""
    if not root:
        return None
    for candidate in (metadata, ident):
        if isinstance(candidate, str):
            candidate = candidate.strip()
            if os.path.splitext(candidate)[1].lower() in IMAGE_SUFFIXES:
                try:
                    resolve(root, candidate)
                    return candidate
                except Refused:
                    continue
    return None


def render_thumbnail(path: Path) -> tuple[bytes, str]:
    """A small PNG or JPEG of the image (the original may be a 20-megapixel photo)."""
    from scannlite.store.images import ImageSkipped, open_image

    try:
        with open_image(path) as im:  # the one decompression-bomb limit, Pillow's global untouched
            im.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            keep_alpha = im.mode in ("RGBA", "LA", "P")
            im = im.convert("RGBA" if keep_alpha else "RGB")
            buf = io.BytesIO()
            if keep_alpha:
                im.save(buf, format="PNG")
                return buf.getvalue(), "image/png"
            im.save(buf, format="JPEG", quality=85)
            return buf.getvalue(), "image/jpeg"
    except ImageSkipped as why:
        raise Refused(f"the image cannot be read ({why})", 404) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Refused(
            f"the image cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", 404
        ) from None
