"""The plugin's URLs: everything it serves lives under :data:`PREFIX`, a catalog's pages under its database's
name (tilde-encoded as Datasette encodes names), and Datasette's ``base_url`` applies."""

from __future__ import annotations

from datasette.utils import tilde_encode

PREFIX = "/-/scannlite"


def base_path(datasette, cdb_name: str, tail: str = "") -> str:
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(cdb_name)}{tail}")
