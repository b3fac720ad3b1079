"""scannlite's streamed index writer against tflite-support's own index builder (the reference).

The writer must produce the table the builder produces, key for key and value for value: the
same embeddings per leaf (every leaf, empty ones too), the same INDEX_CONFIG bytes, the same
metadata under the same ids, the same USER_INFO. Blocks may be cut differently (that is the
point of the delta-friendly layout), so tables are compared as key/value maps in key order; bytes
are never compared.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from scannlite.store.bundle.ondevice import read_index, read_table
from scannlite.store.bundle.ondevice.index_writer import scann_config, write_index
from scannlite.store.bundle.ondevice.layout import slotted_offsets
from scannlite.store.workers.boundary import WorkerError, run_in

pytestmark = pytest.mark.device

LEAVES = 13  # more than 10, so "E_10" sorts before "E_2"


def _case(kind: str, n: int = 700, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    dim = 8
    centroids = rng.standard_normal((LEAVES, dim)).astype(np.float32)
    # leaf 3 and leaf 11 stay empty
    assignment = rng.choice([p for p in range(LEAVES) if p not in (3, 11)], size=n).astype(np.uint32)
    labels = [b"" if i % 17 == 0 else f"item-{i}".encode() * (1 + i % 3) for i in range(n)]
    if kind == "ah":
        books = [rng.standard_normal((16, 2)).astype(np.float32) for s in range(dim // 2)]
        database = np.stack([rng.integers(0, len(b), n) for b in books], axis=1).astype(np.uint8)
        config = scann_config(
            distance="dot", centroids=centroids, leaves_to_search=3, codebooks=books, lookup_type="INT8"
        )
    else:
        database = rng.standard_normal((n, dim)).astype(np.float32)
        config = scann_config(distance="l2", centroids=centroids, leaves_to_search=2)
    return dict(config=config, assignment=assignment, labels=labels, database=database)


def _builder(case: dict, compression: bool = True) -> bytes:
    return run_in(
        "device",
        "scannlite.plugin.device.runtime:build_index",
        embedding_dim=case["database"].shape[1],
        serialized_config=case["config"],
        user_info=b"info",
        partition_assignment=case["assignment"],
        metadata=case["labels"],
        compression=compression,
        **{"hashed_database" if case["database"].dtype == np.uint8 else "float_database": case["database"]},
    )


def _ours(case: dict, **options) -> bytes:
    order = np.argsort(case["assignment"], kind="stable")  # grouped by leaf, input order kept
    out = io.BytesIO()
    size = write_index(
        out,
        config=case["config"],
        database=case["database"][order],
        sizes=np.bincount(case["assignment"], minlength=LEAVES),
        labels=[case["labels"][i] for i in order],
        user_info=b"info",
        **options,
    )
    assert size == len(out.getvalue())
    return out.getvalue()


@pytest.mark.task_library
@pytest.mark.parametrize("kind", ["ah", "float"])
def test_writer_table_equals_the_builders(kind):
    case = _case(kind)
    builder = read_table(_builder(case))
    for blocks in ("leveldb", "content"):
        ours = read_table(_ours(case, blocks=blocks))
        assert list(ours) == list(builder)  # same keys, same (bytewise) order
        assert dict(ours) == dict(builder), blocks
    assert b"E_3" in builder and builder[b"E_3"] == b""  # empty leaves still get a key


def test_slotted_ids_keep_every_label_with_its_row():
    case = _case("ah", seed=2)
    sizes = np.bincount(case["assignment"], minlength=LEAVES).tolist()
    offsets, moved = slotted_offsets(sizes)
    index = read_index(_ours(case, offsets=offsets))
    order = np.argsort(case["assignment"], kind="stable")
    assert index.offsets == offsets and moved == 0
    assert index.metadata == [case["labels"][i] for i in order]
    assert not index.validate()
    assert np.array_equal(np.concatenate(list(index.partitions)), case["database"][order])


def test_a_file_and_memory_get_the_same_bytes(tmp_path):
    case = _case("float", seed=3)
    order = np.argsort(case["assignment"], kind="stable")
    args = dict(
        config=case["config"],
        database=case["database"][order],
        sizes=np.bincount(case["assignment"], minlength=LEAVES),
        labels=[case["labels"][i] for i in order],
        user_info=None,
    )
    with open(tmp_path / "x.ldb", "wb") as f:
        write_index(f, **args)
    out = io.BytesIO()
    write_index(out, **args)
    assert (tmp_path / "x.ldb").read_bytes() == out.getvalue()
    assert b"USER_INFO" not in read_table(out.getvalue())


def test_bad_inputs_are_refused_before_anything_is_written():
    case = _case("ah", seed=4)
    order = np.argsort(case["assignment"], kind="stable")
    sizes = np.bincount(case["assignment"], minlength=LEAVES)
    good = dict(
        config=case["config"],
        database=case["database"][order],
        sizes=sizes,
        labels=[case["labels"][i] for i in order],
        user_info=b"",
    )
    bad = [
        (dict(sizes=np.append(sizes, 0)), "14 leaf sizes for 13 leaves"),
        (dict(sizes=sizes[:-1]), "sizes summing to 618 disagree"),
        (dict(labels=good["labels"][:-1]), "disagree"),
        (dict(offsets=[0] * LEAVES), "its own range of ids"),
        (dict(database=np.minimum(good["database"], 200) + 40), "codebook has 16 entries"),
        (dict(database=good["database"][:, :3]), "3 bytes per point"),
        (dict(database=good["database"].astype(np.float32)), "float database needs a config without an indexer"),
    ]
    for change, message in bad:
        out = io.BytesIO()
        with pytest.raises(ValueError, match=message):
            write_index(out, **{**good, **change})
        assert out.getvalue() == b""


@pytest.mark.task_library
def test_the_builder_refuses_what_the_writer_refuses():
    """Both take their checks from one place (check_index_inputs)."""
    case = _case("float", seed=5)
    case["database"] = case["database"][:, :5]
    with pytest.raises(WorkerError, match="float vectors have dimension 5 but the centroids 8"):
        _builder(case)
