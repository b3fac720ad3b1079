"""Embedder plugins: loading them, listing them, and resolving what a user named.

Why pluggy: catalogs should not care what made their vectors. Every embedder type, scannlite's
own included, comes from a module named under the ``scannlite`` entry-point group and
implementing the hook in :mod:`scannlite.plugin.embedders.hookspecs` (the only module a plugin imports).
scannlite's built-ins (:mod:`scannlite.plugin.embedders.builtin`) are declared in its own
pyproject.toml exactly as a third-party package declares its embedders.

What a user names (``add --embedder``, ``configure --text-embedder``) and what a catalog
records (its ``text_embedder`` / ``image_embedder`` settings) is resolved by
:func:`resolve`, one rule for both:

* ``NAME``: an installed embedder type that needs no file (opened with ``""``);
* ``NAME:PATH``: that type with its model file or directory;
* ``PATH``: the one installed type of the wanted kind whose ``suffixes`` match the file
  (``.tflite`` -> ``tflite-text`` or ``tflite-image``, a directory -> ``dual-encoder-*``).
  Catalogs configured before types were recorded hold such bare paths, and keep working.

A catalog records ``NAME`` or ``NAME:ABSOLUTE_PATH`` (:func:`setting`).

This module runs in the CLI/store process: it imports neither TensorFlow nor tflite-support's
native modules; every model runs in a worker started by :func:`scannlite.store.workers.boundary.run_in`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from scannlite.plugin.embedders.hookspecs import (
    DIRECTORY,
    KINDS,
    PROJECT,
    Embedder,
    EmbedderError,
    EmbedderSpecs,
    EmbedderType,
)
from scannlite.store.errors import one_line

ENTRY_POINT_GROUP = "scannlite"


class EmbedderKindError(EmbedderError):
    """The embedder named is of another kind (``found``) than the one asked for."""

    def __init__(self, message: str, found: str):
        super().__init__(message)
        self.found = found


@dataclass
class Registry:
    pm: pluggy.PluginManager
    sources: dict[str, str] = field(default_factory=dict)  # plugin name -> "package version"
    problems: list[str] = field(default_factory=list)  # entry points that failed to load


@lru_cache(maxsize=1)
def registry() -> Registry:
    """Every ``scannlite`` entry point, loaded once per process; a plugin that fails to import
    is reported by :func:`survey`, never fatal."""
    reg = Registry(pluggy.PluginManager(PROJECT))
    reg.pm.add_hookspecs(EmbedderSpecs)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        source = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ep.value
        if reg.pm.get_plugin(ep.name) is not None or ep.name in reg.sources:
            reg.problems.append(
                f"plugin {ep.name!r} from {source} ignored: the name is taken by {reg.sources[ep.name]}"
            )
            continue
        reg.sources[ep.name] = source
        try:
            reg.pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break scannlite
            reg.problems.append(f"plugin {ep.name!r} from {source} failed to load: {one_line(exc, with_type=True)}")
    return reg


def plugin_manager() -> pluggy.PluginManager:
    return registry().pm


def survey() -> tuple[list[EmbedderType], list[str]]:
    """(every installed embedder type, with ``source`` set; one line per plugin problem)."""
    reg = registry()
    problems = list(reg.problems)
    seen: dict[str, EmbedderType] = {}
    for impl in reversed(reg.pm.hook.scannlite_embedders.get_hookimpls()):  # registration order
        name = reg.pm.get_name(impl.plugin) or "plugin"
        source = reg.sources.get(name, name)
        try:
            hook: Any = impl.function  # pluggy types it as a bare function object
            provided = list(hook() or [])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"plugin {name!r} from {source} failed: {one_line(exc, with_type=True)}")
            continue
        for et in provided:
            if not isinstance(et, EmbedderType) or et.kind not in KINDS:
                problems.append(
                    f"plugin {name!r} from {source} returned {et!r}, not an EmbedderType of a kind in "
                    f"{', '.join(KINDS)}"
                )
            elif et.name in seen:
                problems.append(f"embedder {et.name!r} from {source} ignored: {seen[et.name].source} provides it")
            else:
                seen[et.name] = replace(et, source=source)
    return list(seen.values()), problems


def list_embedders() -> list[EmbedderType]:
    return survey()[0]


def get_embedder_type(name: str) -> EmbedderType:
    types = {et.name: et for et in list_embedders()}
    if name not in types:
        raise EmbedderError(f"unknown embedder {name!r}; installed: {', '.join(sorted(types)) or 'none'}")
    return types[name]


def open_embedder(name: str, path: str | Path = "", **options) -> Embedder:
    """Open type ``name`` on ``path``; ``options`` are knobs that type's ``open`` takes."""
    return get_embedder_type(name).open(str(path), **options)


# ---- what a user names, what a catalog records ---------------------------------------------


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _by_suffix(value: str, kind: str, types: dict[str, EmbedderType]) -> EmbedderType:
    p = Path(value).expanduser()
    if not p.exists():
        raise EmbedderError(
            f"cannot read {value}: no such file, and no installed embedder has that name "
            f"(installed: {', '.join(sorted(types))})"
        )
    suffix = DIRECTORY if p.is_dir() else p.suffix.lower()
    what = "a directory" if suffix == DIRECTORY else f"{suffix or 'suffix-less'} files"
    claim = [et for et in types.values() if suffix in et.suffixes]
    mine = [et for et in claim if et.kind == kind]
    if len(mine) > 1:
        raise EmbedderError(
            f"several {kind} embedders open {what} ({', '.join(et.name for et in mine)}); name one as NAME:{value}"
        )
    if mine:
        return mine[0]
    if claim:
        raise EmbedderKindError(
            f"{value} is for {_a(claim[0].kind)} embedder ({claim[0].name}), not {_a(kind)} one", claim[0].kind
        )
    raise EmbedderError(
        f"no installed {kind} embedder opens {what} like {value}; name one as NAME:{value} (see `scannlite embedders`)"
    )


def resolve(value: str | Path, kind: str) -> tuple[EmbedderType, str]:
    """(embedder type, absolute model path or "") for ``NAME``, ``NAME:PATH`` or ``PATH``."""
    text = str(value)
    types = {et.name: et for et in list_embedders()}
    name, colon, rest = text.partition(":")
    if text in types:
        et, path = types[text], ""
    elif colon and name in types:
        et, path = types[name], _absolute(rest) if rest else ""
    else:
        et, path = _by_suffix(text, kind, types), _absolute(text)
    if et.kind != kind:
        raise EmbedderKindError(f"{et.name} is {_a(et.kind)} embedder, not {_a(kind)} one", et.kind)
    return et, path


def open_for(value: str | Path, kind: str, hints: dict[str, str] | None = None) -> tuple[EmbedderType, str, Embedder]:
    """Resolve and open an embedder of ``kind``. When a bare path fails to open as ``kind``
    but opens as another kind, say so; ``hints`` maps that kind to what the user should do
    instead (e.g. ``{"image": "pass it as --image-embedder"}``)."""
    try:
        et, path = resolve(value, kind)
        try:
            return et, path, et.open(path)
        except EmbedderError:
            found = _kind_that_opens(str(value), kind)
            if found is None:
                raise
            raise EmbedderKindError(f"{value} is {_a(found)} embedder, not {_a(kind)} one", found) from None
    except EmbedderKindError as exc:
        hint = (hints or {}).get(exc.found)
        if hint:
            raise EmbedderKindError(f"{exc}; {hint}", exc.found) from None
        raise


def _kind_that_opens(value: str, kind: str) -> str | None:
    for other in KINDS:
        if other == kind:
            continue
        try:
            et, path = resolve(value, other)
            if et.name != value and not value.startswith(f"{et.name}:"):  # bare paths only
                et.open(path)
                return other
        except EmbedderError:
            continue
    return None


def check_dim(et: EmbedderType, path: str, emb: Embedder, dim: int) -> None:
    """Refuse an embedder whose known output width is not the catalog's."""
    width = getattr(emb, "dim", None)
    if width is not None and int(width) != dim:
        raise EmbedderError(f"{path or et.name} outputs {width}-d vectors but the catalog holds {dim}-d vectors")


def setting(et: EmbedderType, path: str) -> str:
    """What a catalog records for this embedder: ``NAME`` or ``NAME:ABSOLUTE_PATH``."""
    return f"{et.name}:{path}" if path else et.name


def label(et: EmbedderType, path: str) -> str:
    """A short name for people: the model's file name, or the type's name."""
    return Path(path).name if path else et.name


# ---- the built-in TFLite embedders in one call (tests and benchmarks use these) ------------


def embed_texts(embedder_path: str | Path, texts: Iterable[str]) -> np.ndarray:
    """float32 (n, D): ``tflite-text`` (the Task Library's TextEmbedder, one device process)."""
    return open_embedder("tflite-text", embedder_path).embed(list(texts)).vectors


def embed_images(
    embedder_path: str | Path,
    image_paths: Iterable[str | Path],
    batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(vectors float32 (n, D), embedded paths, skipped (path, reason)) with ``tflite-image``.

    Images are decoded in this process with Pillow (any mode -> RGB; corrupt, truncated or too
    large files become skips) and sent as uint8 arrays to one device process per ``batch``.
    ``progress(done, total)`` is called after each batch.
    """
    options = {k: v for k, v in {"batch": batch, "max_pixels": max_pixels}.items() if v is not None}
    image_embedder: Any = open_embedder("tflite-image", embedder_path, **options)  # its embed takes progress=
    result = image_embedder.embed([str(p) for p in image_paths], progress=progress)
    return result.vectors, result.keys, result.skipped


def tflite_file(value: str | Path, kind: str) -> str | None:
    """The ``.tflite`` model a bundle of ``value``'s vectors ships with: the file of a ``tflite-*``
    embedder, the model a named embedder makes (``tflite_file()``, e.g. ``minilm``), else None."""
    et, path = resolve(value, kind)
    if et.name == f"tflite-{kind}" and path:
        return path
    maker = getattr(et.open(path), "tflite_file", None)
    return str(maker()) if callable(maker) else None


def bundle_model(value: str | Path) -> Path:
    """What ``export --embedder VALUE`` packs the index into: a file as given, or the ``.tflite``
    model a named embedder makes (``minilm``). An unknown name stays a path, so export names the
    missing file."""
    if Path(value).exists() or str(value).partition(":")[0] not in {et.name for et in list_embedders()}:
        return Path(value)
    for kind in ("text", "image"):
        try:
            made = tflite_file(value, kind)
        except EmbedderKindError:
            continue
        if made:
            return Path(made)
    raise EmbedderError(f"embedder {value} makes no .tflite model to pack an index into")
