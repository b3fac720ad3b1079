"""From request fields to one query vector, the way the catalog's own vectors were made.

Text goes through the catalog's configured text embedder and images through its image
embedder (``scannlite configure``, or what ``add --texts/--images`` used), exactly as
``scannlite search --text/--image`` and the Python API embed them (:mod:`scannlite.plugin.facade.search`):
a ``.tflite`` model runs in the Task Library in a warm device worker (the Datasette process
never imports tflite-support or TensorFlow), a plugin's embedder runs as its plugin says.
These calls block, so the views run them in a thread (``asyncio.to_thread``), never on
Datasette's event loop. Without a text embedder the text box takes a vector (comma-separated
numbers); a ``.npy`` file works too.
Every bad input becomes one :class:`BadQuery` line.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from tokenize import TokenError
from typing import Any

import numpy as np

from scannlite.plugin.integrations.datasette_plugin.forms import Fields
from scannlite.store.catalog.catalog import Catalog

MAX_K = 1000
TRUE = {"1", "true", "on", "yes"}
FALSE = {"", "0", "false", "off", "no"}


class BadQuery(ValueError):
    """A one-line reason the search cannot run as asked."""


@dataclass
class SearchParams:
    text: str
    vector: str | list | None
    image: bytes | None
    image_name: str | None
    npy: bytes | None
    snapshot: int | None
    k: int
    leaves: int | None
    exact: bool

    @property
    def has_query(self) -> bool:
        return bool(self.text or self.vector or self.image or self.npy)


def _whole(value, name: str, minimum: int, maximum: int | None = None) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "latest", "default")):
        return None
    if isinstance(value, bool) or not re.fullmatch(r"\s*\d+\s*", str(value)):
        raise BadQuery(f"{name} must be a whole number, got {str(value)[:40]!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise BadQuery(f"{name} must be {bounds}, got {number}")
    return number


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise BadQuery(f"{name} must be true or false, got {text[:40]!r}")


def parse_params(fields: Fields, default_k: int = 10) -> SearchParams:
    image = fields.files.get("image")
    npy = fields.files.get("npy")
    vector: Any = fields.values.get("vector")  # text from a form, or a list from JSON
    if isinstance(vector, str):
        vector = vector.strip() or None
    params = SearchParams(
        text=fields.text("q"),
        vector=vector,
        image=image.data if image else None,
        image_name=image.filename if image else None,
        npy=npy.data if npy else None,
        snapshot=_whole(fields.values.get("snapshot"), "snapshot", 1),
        k=_whole(fields.values.get("k"), "k", 1, MAX_K) or default_k,
        leaves=_whole(fields.values.get("leaves"), "leaves", 1),
        exact=_flag(fields.values.get("exact"), "exact"),
    )
    given = [
        name
        for name, v in (
            ("text", params.text),
            ("vector", params.vector),
            ("image", params.image),
            (".npy file", params.npy),
        )
        if v
    ]
    if len(given) > 1:
        raise BadQuery(f"give one query, not both {given[0]} and {given[1]}")
    return params


def parse_vector(value, dim: int) -> np.ndarray:
    """A vector from a JSON list or from numbers separated by commas and/or spaces."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise BadQuery("the vector is not a valid JSON list of numbers") from None
        else:
            value = [t for t in re.split(r"[,\s]+", text) if t]
    if not isinstance(value, list) or not value:
        raise BadQuery("the vector must be a list of numbers")
    numbers = []
    for i, item in enumerate(value):
        try:
            if isinstance(item, bool):
                raise ValueError
            numbers.append(float(item))
        except (TypeError, ValueError):
            raise BadQuery(f"vector value {i + 1} ({str(item)[:20]!r}) is not a number") from None
    if len(numbers) != dim:
        raise BadQuery(f"the vector has {len(numbers)} numbers, the catalog has {dim}-d vectors")
    return np.asarray(numbers, dtype=np.float64)


def parse_npy(data: bytes, dim: int) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, TokenError):  # TokenError, SyntaxError: damaged headers
        raise BadQuery("the uploaded file is not a valid .npy file") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise BadQuery(f"the .npy file holds {arr.dtype}, not numbers")
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise BadQuery(f"the .npy file must hold one vector, shape ({dim},) or (1, {dim}); got {arr.shape}")
    if arr.shape[0] != dim:
        raise BadQuery(f"the .npy vector has {arr.shape[0]} numbers, the catalog has {dim}-d vectors")
    return arr.astype(np.float64)


def decode_image(data: bytes) -> np.ndarray:
    """RGB uint8 (height, width, 3): the pixels the image embedder will see (the store's decoder)."""
    from scannlite.store.images import ImageSkipped, load_rgb

    try:
        return load_rgb(data)
    except ImageSkipped as why:
        raise BadQuery(f"the uploaded file is {why}") from None


def _embed(cat: Catalog, kind: str, item) -> tuple[np.ndarray, str]:
    """``item`` is the text, or the uploaded image's bytes (checked once the embedder is known
    to exist, so that a catalog without one says so first), embedded the way the CLI and the
    Python API embed queries (:mod:`scannlite.plugin.facade.search`)."""
    from scannlite.plugin.facade.search import QueryError, query_embedder

    try:
        emb = query_embedder(cat, kind)
        if kind == "image":
            decode_image(item)  # a bad upload is one clear line before any worker is asked
        return emb.embed([item])[0], emb.label
    except QueryError as exc:
        raise BadQuery(str(exc)) from None


def query_vector(cat: Catalog, params: SearchParams) -> tuple[np.ndarray, dict]:
    """The query vector and a description of where it came from (shown on the page)."""
    started = time.perf_counter()
    how: dict[str, Any]
    if params.image:
        vector, model = _embed(cat, "image", params.image)
        how = {"kind": "image", "file": params.image_name, "embedder": model}
    elif params.npy:
        vector, how = parse_npy(params.npy, cat.dim), {"kind": "vector", "source": ".npy file"}
    elif params.vector:
        vector, how = parse_vector(params.vector, cat.dim), {"kind": "vector"}
    elif params.text:
        if cat.settings.get("text_embedder"):
            vector, model = _embed(cat, "text", params.text)
            how = {"kind": "text", "text": params.text, "embedder": model}
        else:
            try:
                vector, how = parse_vector(params.text, cat.dim), {"kind": "vector"}
            except BadQuery as exc:
                raise BadQuery(
                    f"this catalog has no text embedder (set one with `scannlite configure CATALOG "
                    f"--text-embedder MODEL.tflite`), so type a vector of {cat.dim} comma-separated "
                    f"numbers or upload a .npy file ({exc})"
                ) from None
    else:
        raise BadQuery("give a query: text (q=), a vector (vector=), an image or a .npy file")
    how["seconds"] = round(time.perf_counter() - started, 3)
    return vector, how
