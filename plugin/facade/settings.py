"""What a catalog records about how its vectors are made: its text and image embedders and the
folder its item images live in (``scannlite configure``, the Python API's ``configure``).

Readers (``scannlite search --text/--image``, the Datasette page, the Python API) embed queries
with these embedders, so each is checked before it is recorded rather than at the first search:
it resolves and opens through the embedder plugins (:mod:`scannlite.plugin.embedders.registry`), it is
of the right kind, and its output has the catalog's dimension. Embedders are recorded as
``NAME`` or ``NAME:ABSOLUTE_PATH``, the folder as an absolute path. Settings are no data
change: they commit no new catalog version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput

SETTINGS = ("text_embedder", "image_embedder", "thumbnails_root")
# How the Python API names each setting in its messages; the CLI passes its option names.
KEYWORDS = {key: f"{key}=" for key in SETTINGS}


def checked_embedder(value: str | Path, kind: str, dim: int, names: dict[str, str] = KEYWORDS) -> str:
    """What the catalog records for a ``kind`` embedder named ``value``, once it has passed the checks."""
    from scannlite.plugin.embedders import registry as embedders

    hints = {k: f"pass it as {names[f'{k}_embedder']}" for k in ("text", "image")}
    et, path, emb = embedders.open_for(str(value), kind, hints)
    embedders.check_dim(et, path, emb, dim)
    return embedders.setting(et, path)


def checked_folder(path: str | Path, names: dict[str, str] = KEYWORDS) -> str:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"{names['thumbnails_root']} {path} is not a directory")
    return str(folder.resolve())


def configure(
    cat: Catalog, values: Mapping[str, object], unset: Iterable[str] = (), names: dict[str, str] = KEYWORDS
) -> dict[str, str | None]:
    """Check and record ``values`` (setting -> embedder or folder; None leaves a setting as it
    is), forget the settings in ``unset``, all in one transaction; return every setting."""
    forget = list(dict.fromkeys(unset))
    for key in [*values, *forget]:
        if key not in SETTINGS:
            raise InvalidInput(f"unknown setting {key!r}; expected one of {', '.join(SETTINGS)}")
    clash = [key for key, v in values.items() if v is not None and key in forget]
    if clash:
        raise InvalidInput(f"setting and unsetting {names[clash[0]].rstrip('=')} contradict each other")
    checked = {}
    for key, value in values.items():
        if value is None:
            continue
        given = cast("str | Path", value)  # callers pass a path or a name; checked_* say when it is neither
        checked[key] = (
            checked_folder(given, names)
            if key == "thumbnails_root"
            else checked_embedder(given, key.split("_")[0], cat.dim, names)
        )
    if checked or forget:
        with cat.writing(), cat.transaction():
            for key, value in checked.items():
                cat.set_setting(key, value)
            for key in forget:
                cat.unset_setting(key)
    return {key: None if key in forget else checked.get(key, cat.settings.get(key)) for key in SETTINGS}
