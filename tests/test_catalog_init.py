import json
import sqlite3

import pytest

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.errors import InvalidInput, NotACatalog
from scannlite.store.index.config import IndexConfig


def test_init_records_settings_and_reopens(tmp_path):
    cat = Catalog.create(
        tmp_path / "c",
        32,
        "l2",
        metadata_type="bytes",
        metadata_limit=100,
        index=IndexConfig(num_leaves=7, lookup_type="INT16"),
    )
    cat.close()
    again = Catalog.open(tmp_path / "c")
    assert (again.dim, again.distance, again.normalize, again.metadata_type, again.metadata_limit) == (
        32,
        "l2",
        False,
        "bytes",
        100,
    )
    assert again.index_config.num_leaves == 7 and again.index_config.lookup_type == "INT16"
    # The schema is plain SQLite anyone can read.
    conn = sqlite3.connect(tmp_path / "c" / "catalog.db")
    assert json.loads(dict(conn.execute("SELECT key, value FROM catalog_config"))["dim"]) == 32
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_dot_normalises_by_default(tmp_path):
    assert Catalog.create(tmp_path / "a", 4).normalize is True
    assert Catalog.create(tmp_path / "b", 4, "dot", normalize=False).normalize is False


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dim=0), "dimension"),
        (dict(dim=8, distance="cosine"), "distance"),
        (dict(dim=8, metadata_type="json"), "metadata type"),
    ],
)
def test_init_rejects_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        Catalog.create(tmp_path / "c", **kwargs)
    assert not (tmp_path / "c" / "catalog.db").exists()


def test_init_refuses_existing_catalog_and_non_empty_dir(tmp_path):
    Catalog.create(tmp_path / "c", 4)
    with pytest.raises(InvalidInput, match="already a catalog"):
        Catalog.create(tmp_path / "c", 4)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "file.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not empty"):
        Catalog.create(tmp_path / "d", 4)


def test_open_rejects_paths_that_are_not_catalogs(tmp_path):
    with pytest.raises(NotACatalog, match="no such directory"):
        Catalog.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotACatalog, match="no catalog.db"):
        Catalog.open(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "catalog.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(NotACatalog, match="not a catalog"):
        Catalog.open(tmp_path / "junk")
    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / "catalog.db").execute("CREATE TABLE t(x)")
    with pytest.raises(NotACatalog):
        Catalog.open(other)
