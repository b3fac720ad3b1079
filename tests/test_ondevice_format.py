"""The on-device index format, read and written by the store process (scannlite.store.bundle.ondevice).

References are real: Google's test indices and models (../shared/fixtures/tflite-support),
protobuf's own serializer and tflite-support's index builder, both run in a device process
through scannlite.store.workers.boundary. Helpers for that process live in tests/support/ondevice_pb.py.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scannlite.store.bundle.ondevice import (
    AsymmetricHashingProto,
    ConfigView,
    DistanceMeasure,
    EmbeddingType,
    IndexConfig,
    IndexFormatError,
    LookupType,
    PartitionerProto,
    ScannOnDeviceConfig,
    describe_model,
    read_bundle,
    read_index,
    read_table,
)
from scannlite.store.bundle.ondevice.protos import decode_index_config
from scannlite.store.bundle.ondevice.sstable import crc32c, mask, snappy_decompress, unmask
from scannlite.store.bundle.ondevice.tflite_modules import schemas as tflite_schemas
from tests.support.ondevice_pb import to_spec
from tests.support.shared_fixtures import tflite_fixture

pytestmark = pytest.mark.device

ROOT = Path(__file__).resolve().parents[1]

L2, DOT = DistanceMeasure.SQUARED_L2_DISTANCE, DistanceMeasure.DOT_PRODUCT
TEXT_ORDER = [
    b"It was a sunny day.",
    b"The weather was excellent.",
    b"The sun was shining on that day.",
    b"The cat is chasing after the mouse.",
    b"He was very happy with his newly bought car.",
]
FLOAT_FIXTURES = {  # file: (dim, metadata in stored order)
    "regex_index.ldb": (16, TEXT_ORDER),
    "mobilebert_index.ldb": (512, TEXT_ORDER),
    "universal_sentence_encoder_index.ldb": (100, TEXT_ORDER),
    "searcher_index.ldb": (1024, [b"bird", b"burger", b"car", b"cat", b"dog"]),
}


def fixture(name: str) -> bytes:
    return tflite_fixture(name).read_bytes()


def run_device(func: str, *args):
    """``tests.support.ondevice_pb.<func>(*args)`` in a device worker (conftest puts the project
    root on every worker's PYTHONPATH; warm workers outlive any per-test environment)."""
    from scannlite.store.workers.boundary import run_in

    return run_in("device", f"tests.support.ondevice_pb:{func}", *args, timeout=300)


# ---------------------------------------------------------------------------------------
# Upstream fixtures


@pytest.mark.parametrize("name", sorted(FLOAT_FIXTURES))
def test_upstream_float_indices_decode(name):
    dim, order = FLOAT_FIXTURES[name]
    data = fixture(name)
    index = read_index(data)
    assert index.embedding_type == EmbeddingType.FLOAT
    assert index.embedding_dim == dim == index.query_dim
    assert index.partitioner is None and index.asymmetric_hashing is None
    assert index.message.scann_config.query_distance == DistanceMeasure.SQUARED_L2_DISTANCE
    assert index.offsets == [0]
    assert [p.shape for p in index.partitions] == [(5, dim)]
    assert index.partitions[0].dtype == np.float32
    assert np.allclose(np.linalg.norm(index.partitions[0], axis=1), 1.0, atol=1e-4)  # unit-norm, section 5
    assert index.metadata == order
    assert index.user_info == b"userinfo" and index.has_user_info
    assert index.num_items == 5
    assert index.validate() == []
    assert list(index.table) == sorted(index.table)  # bytewise ascending, as Seek needs
    assert index.table[b"INDEX_CONFIG"] == index.message.SerializeToString()  # as C++ serialized it
    summary = index.summary()
    json.dumps(summary)
    assert summary["file_bytes"] == len(data)
    assert (summary["items"], summary["distance"]) == (5, "SQUARED_L2_DISTANCE")
    assert summary["bytes"]["embeddings"] == 20 * dim
    assert all(b.compression == 0 for b in index.table.blocks)  # section 1.1: upstream files are raw


def test_dummy_index_decodes_and_reports_its_problems():
    index = read_index(fixture("dummy_index.ldb"))
    assert index.embedding_type == EmbeddingType.UINT8 and index.embedding_dim == 4
    part = index.partitioner
    assert part is not None and part.num_leaves == 0 and part.search_fraction == 0.5
    assert part.centroids.shape == (0, 0)
    assert not index.has_indexer
    assert index.offsets == [0, 2]
    assert [p.shape for p in index.partitions] == [(2, 4), (1, 4)]
    assert index.partitions[0].dtype == np.uint8
    assert index.num_items == 3
    assert index.metadata == [b"metadata_0", b"metadata_1", b"metadata_2"]
    assert index.user_info == b"user info"
    problems = index.validate()
    assert any("UINT8 but the config has no indexer" in p for p in problems)
    assert any("0 leaves" in p for p in problems)
    assert any("global_partition_offsets has 2 entries for 0 partitions" in p for p in problems)
    assert all("\n" not in p for p in problems)
    assert index.summary()["partitioner"]["leaves_searched"] == 0


def parse_embedding_pbtxt(text: str) -> np.ndarray:
    """The ``value_float:`` lines of a text-format Embedding proto."""
    values = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.strip().startswith("value_float:")]
    return np.array(values, dtype=np.float32)


def test_recorded_burger_distances():
    query = parse_embedding_pbtxt(tflite_fixture("burger_jpg_embedding.pbtxt").read_text())
    assert query.shape == (1024,)
    index = read_index(fixture("searcher_index.ldb"))
    vectors = index.partitions[0]
    distances = ((vectors - query) ** 2).sum(axis=1)
    ranked = sorted(zip(distances.tolist(), index.metadata))
    expected = [(0.0, b"burger"), (1.82244, b"car"), (1.93094, b"bird"), (2.04736, b"dog"), (2.07587, b"cat")]
    assert [m for _, m in ranked] == [m for _, m in expected]
    for (got, _), (want, _) in zip(ranked, expected):
        assert got == pytest.approx(want, abs=1e-5)


def test_regex_searcher_bundle_packs_the_index():
    bundle = read_bundle(fixture("regex_searcher.tflite"))
    assert bundle.index_name == "index.ldb" and bundle.index_output == 0
    assert bundle.index_file == fixture("regex_index.ldb")
    assert bundle.require_index() == bundle.index_file
    assert set(bundle.other_files) == {"vocab.txt"}
    assert bundle.has_metadata and bundle.min_parser_version == "1.2.1"
    assert bundle.problems == []
    kinds = {(f.name, f.type, f.where, f.packed) for f in bundle.associated_files}
    assert ("index.ldb", "SCANN_INDEX_FILE", "output 0", True) in kinds
    assert ("vocab.txt", "VOCABULARY", "input 0 RegexTokenizerOptions", True) in kinds
    assert read_index(bundle.index_file).metadata == TEXT_ORDER


def test_describe_regex_embedder():
    info = describe_model(fixture("regex_one_embedding_with_metadata.tflite"))
    json.dumps(info)
    (inp,), (out,) = info["inputs"], info["outputs"]
    assert (inp["dtype"], inp["shape"]) == ("int32", [1, 256])
    assert (out["dtype"], out["shape"]) == ("float32", [1, 16])
    assert inp["tokenizer"] == "regex" and inp["tokenizer_source"] == "tensor"
    assert inp["tokenizer_files"] == ["vocab.txt"] and inp["regex_pattern"] == r"[^\w\']+"
    assert info["has_metadata"] and info["min_parser_version"] == "1.2.1"
    assert info["custom_ops"] == [] and info["flex_ops"] == []
    assert info["index"] is None and info["problems"] == []
    assert info["packed_files"] == [{"name": "vocab.txt", "bytes": 130899}]
    bundle = read_bundle(fixture("regex_one_embedding_with_metadata.tflite"))
    with pytest.raises(IndexFormatError, match="no SCANN_INDEX_FILE"):
        bundle.require_index()


def test_store_process_imports_nothing_native(fixtures_dir):
    """Reading indices and bundles pulls in neither TensorFlow, nor the Task Library, nor
    tflite-support's generated protos (which need pure-Python protobuf); protobuf runs on upb."""
    script = f"""
import sys
from scannlite.store.bundle.ondevice import read_index, read_bundle, describe_model
d = {str(fixtures_dir)!r}
read_index(open(d + '/regex_index.ldb', 'rb').read())
read_bundle(open(d + '/regex_searcher.tflite', 'rb').read())
describe_model(open(d + '/regex_one_embedding_with_metadata.tflite', 'rb').read())
from google.protobuf.internal import api_implementation
bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tflite_support')
       or m.startswith('tensorflow_lite_support.python')
       or m.startswith('tensorflow_lite_support.scann_ondevice')]
print(bad, api_implementation.Type())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] upb"


# ---------------------------------------------------------------------------------------
# Protos against protobuf


def _f32(rng, *shape) -> list:
    return rng.standard_normal(shape).astype(np.float32).tolist()


def _rows(matrix) -> list[dict]:
    """Leaf / CodebookEntry specs: one ``dimension`` list per row."""
    return [{"dimension": list(row)} for row in matrix]


def _subspaces(codebooks) -> list[dict]:
    return [{"entry": _rows(book)} for book in codebooks]


def _specs() -> list[dict]:
    rng = np.random.default_rng(7)
    codebooks_5d = [_f32(rng, 256, 2), _f32(rng, 256, 2), _f32(rng, 256, 1)]  # dims_per_block 2, short last
    return [
        {
            "scann_config": {
                "query_distance": 1,
                "partitioner": {"leaf": _rows(_f32(rng, 1, 8)), "search_fraction": 1.0, "query_distance": 1},
            },
            "embedding_type": 1,
            "embedding_dim": 8,
            "global_partition_offsets": [0],
        },
        {
            "scann_config": {
                "partitioner": {"leaf": _rows(_f32(rng, 21, 16)), "search_fraction": float(np.float32(2.5 / 21))}
            },
            "embedding_type": 1,
            "embedding_dim": 16,
            "global_partition_offsets": [0, 3, 3, 200, 70000, 2**32 - 1],
        },
        {
            "scann_config": {
                "query_distance": 1,
                "indexer": {
                    "asymmetric_hashing": {
                        "subspace": _subspaces(_f32(rng, 16, 1) for _ in range(4)),
                        "query_distance": 1,
                        "lookup_type": 1,
                    }
                },
                "partitioner": {"leaf": _rows(_f32(rng, 3, 4)), "query_distance": 1},
            },
            "embedding_type": 2,
            "embedding_dim": 4,
            "global_partition_offsets": [0, 10, 20],
        },
        {
            "scann_config": {
                "query_distance": 0,
                "indexer": {"asymmetric_hashing": {"subspace": _subspaces(codebooks_5d), "lookup_type": 2}},
                "partitioner": {"leaf": _rows(_f32(rng, 6, 5)), "search_fraction": 0.25, "query_distance": 0},
            },
            "embedding_type": 2,
            "embedding_dim": 3,
            "global_partition_offsets": [0, 1, 2, 3, 4, 5],
        },
        {
            "scann_config": {
                "query_distance": 2,
                "indexer": {
                    "asymmetric_hashing": {
                        "subspace": _subspaces([[[-0.0, 1.5]], [[float("inf"), -2.0]]]),
                        "query_distance": 2,
                        "lookup_type": 0,
                    }
                },
            },
            "embedding_type": 0,
            "embedding_dim": 0,
        },
        {},
        {"scann_config": {}},
        {"scann_config": {"indexer": {}, "partitioner": {"leaf": [{}, {}]}}},
        {"scann_config": {"partitioner": {}}, "embedding_dim": 300, "global_partition_offsets": [127, 128, 16384]},
    ]


def _v(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _ld(field: int, payload: bytes) -> bytes:
    return _v(field << 3 | 2) + _v(len(payload)) + payload


def _odd_encodings() -> list[bytes]:
    """Valid wire data protobuf accepts but never writes: unpacked, split, unknown, repeated."""
    f = lambda x: struct.pack("<f", x)  # noqa: E731
    unknown = (
        _v(15 << 3)
        + _v(300)
        + _v(16 << 3 | 1)
        + b"\x01" * 8
        + _ld(17, b"junk")
        + _v(18 << 3 | 3)
        + _v(1 << 3)
        + _v(5)
        + _v(18 << 3 | 4)
        + _v(19 << 3 | 5)
        + b"abcd"
    )
    leaf_unpacked = _v(1 << 3 | 5) + f(1.5) + _v(1 << 3 | 5) + f(-2.0) + _ld(1, f(3.0)) + unknown
    partitioner = _ld(1, leaf_unpacked) + _ld(1, _ld(1, f(4.0) + f(5.0) + f(6.0))) + _v(3 << 3) + _v(1) + unknown
    ah = _ld(1, _ld(1, _ld(1, f(0.5))) + _ld(1, _ld(1, f(0.25)))) + _v(3 << 3) + _v(9)  # lookup 9: unknown enum
    scann_a = _ld(3, partitioner) + _v(1 << 3) + _v(1) + unknown
    scann_b = _ld(3, _v(2 << 3 | 5) + f(0.5)) + _ld(2, _ld(1, ah))
    return [
        # unpacked offsets, a split packed run, a wrong-wire-type field, an unknown enum value
        _v(4 << 3)
        + _v(0)
        + _v(4 << 3)
        + _v(5)
        + _ld(4, _v(7) + _v(300))
        + _v(2 << 3)
        + _v(7)
        + _v(3 << 3 | 5)
        + b"\0\0\0\0"
        + _v(3 << 3)
        + _v(2**32 + 9),
        # scann_config twice (merged), unknown fields everywhere, embedding_type set last wins
        _ld(1, scann_a) + _v(2 << 3) + _v(1) + unknown + _ld(1, scann_b) + _v(2 << 3) + _v(2),
        # negative enum (ten-byte varint): unknown, so unset
        _v(2 << 3) + _v(2**64 - 1),
    ]


@pytest.mark.task_library
def test_protos_match_protobuf_byte_for_byte():
    """One codec in both protobuf implementations, and the same bytes as tflite-support's generated code."""
    specs = _specs()
    ours = [IndexConfig(**s).SerializeToString() for s in specs]  # upb, in this process
    odd = _odd_encodings()
    ref = run_device("protobuf_reference", specs, ours + odd)  # pure-Python protobuf

    assert ref["descriptors"][0] == ref["descriptors"][1]  # serialized_searcher.proto declared as upstream
    assert ours == ref["index_configs"]
    scann_ours = [ScannOnDeviceConfig(**s["scann_config"]).SerializeToString() for s in specs if "scann_config" in s]
    assert scann_ours == ref["scann_configs"]
    assert ref["parsed"][: len(specs)] == specs  # read back exactly what was meant, presence included
    for spec, blob in zip(specs, ours):
        assert to_spec(decode_index_config(blob)) == spec
    # Encodings protobuf accepts but does not write decode alike in both implementations.
    for blob, parsed in zip(odd, ref["parsed"][len(specs) :]):
        assert to_spec(decode_index_config(blob)) == parsed


def test_proto_presence_and_defaults():
    """Unset fields read as the proto2 defaults the Task Library sees; setting one to its default is written."""
    cfg = decode_index_config(b"")
    assert not cfg.HasField("scann_config") and cfg.SerializeToString() == b""
    assert cfg.embedding_type == EmbeddingType.UNSPECIFIED
    assert cfg.scann_config.query_distance == DistanceMeasure.UNSPECIFIED
    part = PartitionerProto(leaf=_rows(np.zeros((3, 2))))
    assert part.search_fraction == 1.0 and part.query_distance == L2
    assert (
        PartitionerProto(leaf=_rows(np.zeros((3, 2))), search_fraction=1.0).SerializeToString()
        != part.SerializeToString()
    )
    ah = AsymmetricHashingProto(subspace=_subspaces([np.zeros((16, 2)), np.zeros((16, 2)), np.zeros((16, 1))]))
    assert ah.lookup_type == LookupType.FLOAT
    view = ConfigView.decode(IndexConfig(scann_config={"indexer": {"asymmetric_hashing": ah}}).SerializeToString())
    assert view.partitioner is None and view.has_indexer
    got = view.asymmetric_hashing
    assert (got.dims, got.num_subspaces, got.num_codes, got.lookup_type) == (5, 3, [16] * 3, LookupType.FLOAT)


def test_ragged_matrices_are_refused():
    f = lambda *xs: b"".join(struct.pack("<f", x) for x in xs)  # noqa: E731
    ragged = _ld(1, _ld(3, _ld(1, _ld(1, f(1, 2))) + _ld(1, _ld(1, f(1, 2, 3)))))
    with pytest.raises(IndexFormatError, match="leaf 1 has 3 dimensions but leaf 0 has 2"):
        ConfigView.decode(ragged)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x08",  # truncated varint
        b"\x0a\x05ab",  # runs past the end
        b"\x00\x01",  # field number 0
        b"\x0e",  # wire type 6
        b"\x0b\x10\x01",  # unterminated group
        b"\x0c",  # end of a group never started
        b"\x22\x01\x80",  # truncated packed varint
        b"\x08" + b"\xff" * 10 + b"\x01",  # varint longer than 10 bytes
        b"\x0b" * 5000,  # groups nested too deeply
    ],
)
def test_malformed_protos(blob):
    with pytest.raises(IndexFormatError, match="invalid IndexConfig proto") as err:
        decode_index_config(blob)
    assert "\n" not in str(err.value)
    with pytest.raises(IndexFormatError, match="invalid IndexConfig proto"):
        read_index(write_table({b"INDEX_CONFIG": blob}))


# ---------------------------------------------------------------------------------------
# The real index builder


def _builder_jobs():
    rng = np.random.default_rng(3)
    # AH: D = 5 with dims_per_block 2 -> subspaces of width 2, 2, 1; 16 codes each.
    codebooks = [rng.standard_normal((16, w)).astype(np.float32) for w in (2, 2, 1)]
    centroids = rng.standard_normal((4, 5)).astype(np.float32)
    ah_cfg = ScannOnDeviceConfig(
        query_distance=DOT,
        indexer={
            "asymmetric_hashing": {
                "subspace": _subspaces(codebooks),
                "query_distance": DOT,
                "lookup_type": LookupType.INT8,
            }
        },
        partitioner={"leaf": _rows(centroids), "search_fraction": float(np.float32(1.5 / 4)), "query_distance": DOT},
    )
    n = 600
    assign = rng.choice([0, 1, 3], size=n)  # leaf 2 stays empty
    codes = ((np.arange(n)[:, None] // 7 + np.arange(3)) % 16).astype(np.uint8)  # compressible
    meta = [b"item %05d of the catalog, with a long and repetitive caption" % i for i in range(n)]
    # FLOAT, L2, 3 leaves, incompressible vectors.
    m = 90
    vectors = rng.standard_normal((m, 8)).astype(np.float32)
    f_assign = rng.integers(0, 3, m)
    f_cfg = ScannOnDeviceConfig(
        query_distance=L2,
        partitioner={
            "leaf": _rows(rng.standard_normal((3, 8)).astype(np.float32)),
            "search_fraction": 1.0,
            "query_distance": L2,
        },
    )
    f_meta = [f"vector {i} ✓".encode() for i in range(m)]
    cases = {
        "ah": dict(cfg=ah_cfg, dim=3, assign=assign, rows=codes, meta=meta, etype=EmbeddingType.UINT8),
        "float": dict(cfg=f_cfg, dim=8, assign=f_assign, rows=vectors, meta=f_meta, etype=EmbeddingType.FLOAT),
    }
    jobs = []
    for name, case in cases.items():
        for compression in (True, False):
            job = dict(
                embedding_dim=case["dim"],
                scann_config=case["cfg"].SerializeToString(),
                userinfo=b"user \x00 info",
                partition_assignment=case["assign"],
                metadata=case["meta"],
                compression=compression,
            )
            job["hashed_database" if name == "ah" else "float_database"] = case["rows"]
            jobs.append(job)
    return cases, jobs


@pytest.fixture(scope="module")
def built():
    """The four builder outputs, keyed by (case, compression), and the cases they came from."""
    cases, jobs = _builder_jobs()
    blobs = run_device("build_many", jobs)
    return cases, dict(zip([("ah", True), ("ah", False), ("float", True), ("float", False)], blobs))


@pytest.mark.task_library
@pytest.mark.parametrize("name", ["ah", "float"])
def test_builder_output_reads_back(built, name):
    cases, blobs = built
    case = cases[name]
    packed, raw = read_index(blobs[(name, True)]), read_index(blobs[(name, False)])
    # Snappy really happened, and decompressing it gives the uncompressed build's content.
    assert any(b.compression == 1 for b in packed.table.blocks)
    assert all(b.compression == 0 for b in raw.table.blocks)
    assert dict(packed.table) == dict(raw.table)
    assert list(packed.table) == sorted(packed.table)

    index = packed
    leaves = len(case["cfg"].partitioner.leaf)
    assign = np.asarray(case["assign"])
    assert index.embedding_type == case["etype"] and index.embedding_dim == case["dim"]
    assert [k for k in index.table if k.startswith(b"E_")] == sorted(b"E_%d" % p for p in range(leaves))
    expected_offsets = np.concatenate([[0], np.cumsum([np.sum(assign == p) for p in range(leaves)])[:-1]]).tolist()
    assert index.offsets == expected_offsets
    for p in range(leaves):
        members = np.flatnonzero(assign == p)
        assert np.array_equal(index.partitions[p], case["rows"][members])  # input order kept
        assert [index.metadata[j] for j in index.ids(p)] == [case["meta"][i] for i in members]
    if name == "ah":
        assert index.partitions[2].shape == (0, 3) and index.partitions[2].dtype == np.uint8
        assert b"E_2" in index.table
    assert index.user_info == b"user \x00 info"
    # The C++ builder's IndexConfig is byte-identical to ours for the same message.
    assert index.message.scann_config == case["cfg"]
    ours = IndexConfig(
        scann_config=case["cfg"],
        embedding_type=case["etype"],
        embedding_dim=case["dim"],
        global_partition_offsets=expected_offsets,
    )
    assert index.table[b"INDEX_CONFIG"] == ours.SerializeToString()
    assert index.validate() == []
    summary = index.summary()
    json.dumps(summary)
    assert summary["items"] == len(case["meta"]) and summary["blocks"]["snappy"] >= 1
    if name == "ah":
        assert summary["query_dim"] == 5 and summary["distance"] == "DOT_PRODUCT"
        assert summary["partitioner"]["leaves_searched"] == 2
        assert summary["asymmetric_hashing"]["lookup_type"] == "INT8"
        assert summary["partition_sizes"]["empty"] == 1


@pytest.mark.task_library
def test_corrupt_snappy_block_is_reported(built):
    _, blobs = built
    data = bytearray(blobs[("ah", True)])
    block = next(b for b in read_table(bytes(data)).blocks if b.compression == 1)
    data[block.offset] ^= 0x01  # the declared length of the Snappy block changes by one
    contents = bytes(data[block.offset : block.offset + block.size + 1])
    struct.pack_into("<I", data, block.offset + block.size + 1, mask(crc32c(contents)))
    with pytest.raises(IndexFormatError, match="bad snappy data in data block"):
        read_index(bytes(data))


# ---------------------------------------------------------------------------------------
# validate() on hand-made inconsistent indices


def write_table(items, sort: bool = True) -> bytes:
    """A minimal SSTable: one raw data block, every entry a restart point (keys sorted unless told)."""

    def block(entries):
        body, restarts = bytearray(), []
        for key, value in entries:
            restarts.append(len(body))
            body += _v(0) + _v(len(key)) + _v(len(value)) + key + value
        restarts = restarts or [0]
        return bytes(body) + struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))

    def with_trailer(contents):
        return contents + b"\0" + struct.pack("<I", mask(crc32c(contents + b"\0")))

    entries = list(items.items()) if isinstance(items, dict) else list(items)
    entries = sorted(entries) if sort else entries
    data = block(entries)
    out = with_trailer(data)
    meta_handle = _v(len(out)) + _v(8)
    out += with_trailer(block([]))
    index_block = block([(entries[-1][0], _v(0) + _v(len(data)))])
    index_handle = _v(len(out)) + _v(len(index_block))
    out += with_trailer(index_block)
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return out + footer


def _float_index(cfg: IndexConfig, parts: dict[int, np.ndarray], n_meta: int, extra=None) -> bytes:
    items = {
        b"INDEX_CONFIG": cfg.SerializeToString(),
        **{b"E_%d" % p: np.asarray(v).tobytes() for p, v in parts.items()},
        **{b"M_%d" % j: b"m%d" % j for j in range(n_meta)},
    }
    items.update(extra or {})
    return write_table(items)


def test_written_table_round_trips():
    cfg = IndexConfig(
        scann_config={"query_distance": L2},
        embedding_type=EmbeddingType.FLOAT,
        embedding_dim=2,
        global_partition_offsets=[0],
    )
    index = read_index(_float_index(cfg, {0: np.ones((3, 2), np.float32)}, 3))
    assert index.validate() == [] and index.user_info == b"" and not index.has_user_info


def _flat(offsets, dim=2, leaves=0, leaf_dim=2, top=L2, etype=EmbeddingType.FLOAT) -> IndexConfig:
    """A FLOAT index config; ``leaves`` > 0 adds a partitioner with zero centroids."""
    scann = ScannOnDeviceConfig(query_distance=top) if top is not None else ScannOnDeviceConfig()
    if leaves:
        scann.partitioner.leaf.extend(PartitionerProto.Leaf(dimension=[0.0] * leaf_dim) for _ in range(leaves))
    cfg = IndexConfig(scann_config=scann, embedding_dim=dim, global_partition_offsets=offsets)
    if etype is not None:
        cfg.embedding_type = etype
    return cfg


def test_validate_reports_inconsistencies():
    rows = lambda n, d=2: np.ones((n, d), np.float32)  # noqa: E731
    cases = [  # (config, partitions, number of M_ keys, expected problem)
        (
            _flat([0, 2], leaves=2),
            {0: rows(3), 1: rows(1)},
            4,
            "global_partition_offsets[1] is 2 but the partitions before it use ids up to 2",
        ),
        # A gap between partitions is a slotted layout (store/bundle/ondevice/layout.py), not a problem:
        # only the metadata key of the row after it matters.
        (_flat([0, 5], leaves=2), {0: rows(3), 1: rows(1)}, 4, "missing key M_5"),
        (_flat([0, 3], leaves=2), {0: rows(3)}, 3, "missing key E_1"),
        (_flat([0]), {0: rows(3)}, 2, "missing key M_2"),
        (
            _flat([0], leaves=1, leaf_dim=3),
            {0: rows(1)},
            1,
            "partitioner centroids have 3 dimensions but queries have 2",
        ),
        (
            _flat([0], leaves=1, top=DOT),
            {0: rows(1)},
            1,
            "scores leaves with SQUARED_L2_DISTANCE but the index searches with DOT_PRODUCT",
        ),
        (_flat([0, 0]), {0: rows(1)}, 1, "global_partition_offsets has 2 entries for 1 partitions"),
        (_flat([0], dim=3), {0: rows(2)}, 1, "E_0 has 16 bytes, not a multiple of the 12-byte row"),
        (_flat([0], top=None), {0: rows(1)}, 1, "does not provide mandatory DistanceMeasure"),
        (_flat([0, 1]), {0: rows(1), 1: rows(1)}, 2, "partition keys up to E_1 but the index addresses 1 partitions"),
        (_flat([0], etype=None), {0: rows(1)}, 1, "embedding_type is UNSPECIFIED"),
        (_flat([0], dim=0), {0: rows(1)}, 0, "embedding_dim is 0 or unset"),
    ]
    for cfg, parts, n_meta, message in cases:
        problems = read_index(_float_index(cfg, parts, n_meta)).validate()
        assert any(message in p for p in problems), (message, problems)
    extra = read_index(_float_index(_flat([0]), {0: rows(3)}, 4, {b"E_01": b"", b"junk": b"x"})).validate()
    assert any("keys the searcher never reads: E_01, M_3, junk" in p for p in extra), extra


def test_validate_reports_quantizer_problems():
    cb = lambda k, w: np.zeros((k, w), np.float32)  # noqa: E731
    ah = AsymmetricHashingProto(
        subspace=_subspaces([cb(16, 2), cb(8, 2), cb(16, 1)]), query_distance=L2, lookup_type=LookupType.INT8_LUT16
    )
    scann = ScannOnDeviceConfig(
        query_distance=DOT,
        indexer={"asymmetric_hashing": ah},
        partitioner={"leaf": _rows(np.zeros((1, 4))), "query_distance": DOT},
    )
    cfg = IndexConfig(
        scann_config=scann, embedding_type=EmbeddingType.UINT8, embedding_dim=4, global_partition_offsets=[0]
    )
    codes = np.array([[1, 2, 3, 0], [15, 9, 1, 0]], np.uint8)
    problems = read_index(_float_index(cfg, {0: codes}, 2)).validate()
    for message in [
        "embedding_dim is 4 but asymmetric hashing has 3 subspaces",
        "subspace 1 has 8 codebook entries but subspace 0 has 16",
        "INT8_LUT16 is not implemented on device",
        "asymmetric hashing computes SQUARED_L2_DISTANCE but the index searches with DOT_PRODUCT",
        "partitioner centroids have 4 dimensions but queries have 5",
        "E_0 holds code 9 for subspace 1, which has only 8 codebook entries",
    ]:
        assert any(message in p for p in problems), (message, problems)
    # Full 256-entry codebooks: no uint8 code can be out of range, and one one short is still read.
    for entries, expected in [(256, []), (255, ["E_0 holds code 255 for subspace 0, which has only 255"])]:
        ah = AsymmetricHashingProto(subspace=_subspaces([cb(entries, 1), cb(256, 1)]), query_distance=DOT)
        scann = ScannOnDeviceConfig(
            query_distance=DOT,
            indexer={"asymmetric_hashing": ah},
            partitioner={"leaf": _rows(np.zeros((1, 2))), "query_distance": DOT},
        )
        cfg = IndexConfig(
            scann_config=scann, embedding_type=EmbeddingType.UINT8, embedding_dim=2, global_partition_offsets=[0]
        )
        problems = read_index(_float_index(cfg, {0: np.array([[255, 255], [0, 7]], np.uint8)}, 2)).validate()
        assert [p for p in problems if "holds code" in p] == [p for p in problems if any(e in p for e in expected)]
        assert all(any(e in p for p in problems) for e in expected), problems


def test_index_without_config_is_refused():
    with pytest.raises(IndexFormatError, match="no INDEX_CONFIG key"):
        read_index(write_table({b"E_0": b"", b"USER_INFO": b"x"}))


# ---------------------------------------------------------------------------------------
# Corrupt inputs


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: b"", "not an on-device ScaNN index: the file is empty"),
        (lambda d: np.random.default_rng(1).bytes(1000), "bad SSTable magic number"),
        (lambda d: d[:300], "bad SSTable magic number"),
        (lambda d: d[:40], "too short for an SSTable"),
        (lambda d: d[:-1] + b"\x00", "bad SSTable magic number"),
        (lambda d: d[:100] + bytes([d[100] ^ 0x20]) + d[101:], "checksum mismatch in data block at offset 0"),
        (lambda d: d[:-48] + (_v(564) + _v(8) + _v(10**6) + _v(20)).ljust(40, b"\0") + d[-8:], "runs past the end"),
        (lambda d: d[:-48] + (_v(564) + _v(8) + _v(0) + _v(600)).ljust(40, b"\0") + d[-8:], "runs past the end"),
        (lambda d: d[:-48] + b"\xff" * 40 + d[-8:], "bad varint in the footer"),
    ],
)
def test_corrupt_index_files(make, message):
    with pytest.raises(IndexFormatError, match=message) as err:
        read_index(make(fixture("regex_index.ldb")))
    assert "\n" not in str(err.value)


def test_every_truncation_and_byte_flip_is_a_clean_error():
    data = fixture("regex_index.ldb")
    for n in range(len(data)):
        with pytest.raises(IndexFormatError):
            read_index(data[:n])
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :]
            for verify in (True, False):
                try:
                    read_index(bad, verify_checksums=verify).validate()
                except IndexFormatError:
                    pass


def test_sstable_structure_checks():
    good = {b"a": b"1", b"b": b"2"}
    table = write_table(good)
    assert dict(read_table(table)) == good
    with pytest.raises(IndexFormatError, match="not in strictly ascending order"):
        read_table(write_table({b"b": b"2", b"a": b"1"}, sort=False))
    with pytest.raises(IndexFormatError, match="not in strictly ascending order"):
        read_table(write_table([(b"a", b"1"), (b"a", b"2")], sort=False))


def test_corrupt_bundles():
    model = fixture("regex_searcher.tflite")
    for data, message in [
        (b"", "the file is empty"),
        (b"hello world!", "no TFL3 file identifier"),
        (fixture("regex_index.ldb"), "not a TFLite model"),
    ]:
        for fn in (read_bundle, describe_model):
            with pytest.raises(IndexFormatError, match=message):
                fn(data)
    with pytest.raises(IndexFormatError):
        describe_model(model[:2000])
    rng = np.random.default_rng(5)
    for i in rng.integers(0, 4096, 150):
        bad = model[:i] + bytes([model[i] ^ 0xFF]) + model[i + 1 :]
        try:
            describe_model(bad)
            read_bundle(bad)
        except IndexFormatError:
            pass


def test_mapped_files_read_like_bytes(tmp_path):
    from scannlite.store.bundle.ondevice.bundle_file import mapped

    for name in ("regex_searcher.tflite", "regex_one_embedding_with_metadata.tflite"):
        data = fixture(name)
        (tmp_path / name).write_bytes(data)
        with mapped(tmp_path / name) as view:
            assert describe_model(view) == describe_model(data)
            got, want = read_bundle(view), read_bundle(data)
            assert {k: bytes(v) for k, v in got.files.items()} == want.files
            assert (got.index_name, got.index_output, got.associated_files) == (
                want.index_name,
                want.index_output,
                want.associated_files,
            )
            if want.index_file is not None:  # a view of the map, not a copy
                assert isinstance(got.index_file, memoryview) and got.index_file == want.index_file
            del got
        assert view.closed  # no view of it outlived the parse
    (tmp_path / "empty.tflite").write_bytes(b"")
    with mapped(tmp_path / "empty.tflite") as view, pytest.raises(IndexFormatError, match="the file is empty"):
        read_bundle(view)


def test_zip_entries_are_held_to_their_crc(tmp_path):
    from scannlite.store.bundle.ondevice.bundle_file import mapped

    data = bytearray(fixture("regex_searcher.tflite"))
    at = bytes(data).rindex(fixture("regex_index.ldb")) + 100  # a byte inside the packed index
    data[at] ^= 0x01
    (tmp_path / "bad.tflite").write_bytes(data)
    with mapped(tmp_path / "bad.tflite") as view:
        for source in (bytes(data), view):
            for fn in (read_bundle, describe_model):
                with pytest.raises(IndexFormatError, match="zip entry 'index.ldb' fails its CRC-32 check"):
                    fn(source)


# ---------------------------------------------------------------------------------------
# describe_model on synthetic models (built with the pure-flatbuffer object API)


def _model(inputs, outputs, metadata=None, custom_codes=(), zip_entries=None):
    import flatbuffers

    s = tflite_schemas()[0]

    model = s.ModelT()
    model.version = 3
    codes = []
    for code in custom_codes:
        op = s.OperatorCodeT()
        op.builtinCode = op.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
        op.customCode = code
        codes.append(op)
    add = s.OperatorCodeT()
    add.builtinCode = add.deprecatedBuiltinCode = s.BuiltinOperator.ADD
    model.operatorCodes = codes + [add]
    sub = s.SubGraphT()
    sub.tensors = []
    for name, shape, dtype in inputs + outputs:
        t = s.TensorT()
        t.name, t.shape, t.type = name, shape, dtype
        sub.tensors.append(t)
    sub.inputs = list(range(len(inputs)))
    sub.outputs = list(range(len(inputs), len(inputs) + len(outputs)))
    model.subgraphs = [sub]
    model.buffers = [s.BufferT()]
    if metadata is not None:
        buf = s.BufferT()
        buf.data = list(metadata)
        model.buffers.append(buf)
        md = s.MetadataT()
        md.name, md.buffer = b"TFLITE_METADATA", 1
        model.metadata = [md]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = bytes(builder.Output())
    if zip_entries:
        stream = io.BytesIO(out)
        with zipfile.ZipFile(stream, "a") as z:
            for name, payload, method in zip_entries:
                z.writestr(zipfile.ZipInfo(name), payload, compress_type=method)
        out = stream.getvalue()
    return out


def _metadata(subgraph, identifier=b"M001"):
    import flatbuffers

    m = tflite_schemas()[1]

    meta = m.ModelMetadataT()
    meta.name, meta.minParserVersion = b"synthetic", b"1.4.0"
    meta.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(meta.Pack(builder), file_identifier=identifier)
    return bytes(builder.Output())


def _tensor_md(name, units=(), files=(), content=None):
    m = tflite_schemas()[1]

    t = m.TensorMetadataT()
    t.name = name
    t.processUnits = list(units) or None
    t.associatedFiles = list(files) or None
    t.content = content
    return t


def _unit(kind, options):
    m = tflite_schemas()[1]

    u = m.ProcessUnitT()
    u.optionsType, u.options = getattr(m.ProcessUnitOptions, kind), options
    return u


def _file(name, kind):
    m = tflite_schemas()[1]

    f = m.AssociatedFileT()
    f.name, f.type = name, getattr(m.AssociatedFileType, kind)
    return f


def test_describe_image_searcher_model():
    m = tflite_schemas()[1]
    s = tflite_schemas()[0]

    norm = m.NormalizationOptionsT()
    norm.mean, norm.std = [127.5], [127.5]
    image = m.ImagePropertiesT()
    image.colorSpace = m.ColorSpaceType.RGB
    content = m.ContentT()
    content.contentPropertiesType, content.contentProperties = m.ContentProperties.ImageProperties, image
    sub = m.SubGraphMetadataT()
    sub.inputTensorMetadata = [_tensor_md(b"image", [_unit("NormalizationOptions", norm)], content=content)]
    index_file = _file(b"idx.ldb", "SCANN_INDEX_FILE")
    sub.outputTensorMetadata = [_tensor_md(b"first"), _tensor_md(b"second", files=[index_file])]
    index = fixture("regex_index.ldb")
    data = _model(
        [(b"in", [1, 8, 8, 3], s.TensorType.FLOAT32)],
        [(b"a", [1, 4], s.TensorType.FLOAT32), (b"b", [1, 16], s.TensorType.UINT8)],
        metadata=_metadata(sub),
        custom_codes=[b"FlexAddV2", b"MyOp"],
        zip_entries=[("idx.ldb", index, zipfile.ZIP_STORED), ("notes.txt", b"x" * 100, zipfile.ZIP_DEFLATED)],
    )
    info = describe_model(data)
    json.dumps(info)
    (inp,) = info["inputs"]
    assert (inp["dtype"], inp["shape"], inp["content"], inp["color_space"]) == ("float32", [1, 8, 8, 3], "image", "RGB")
    assert inp["normalization"] == {"mean": [127.5], "std": [127.5]} and inp["tokenizer"] is None
    assert [o["dtype"] for o in info["outputs"]] == ["float32", "uint8"]
    assert info["custom_ops"] == ["FlexAddV2", "MyOp"] and info["flex_ops"] == ["FlexAddV2"]
    assert info["builtin_ops"] == ["ADD"] and info["min_parser_version"] == "1.4.0"
    assert info["index"] == {"name": "idx.ldb", "output": 1, "bytes": len(index)}
    assert any("'notes.txt' is compressed" in p for p in info["problems"])
    bundle = read_bundle(data)
    assert bundle.index_output == 1 and bundle.index_file == index
    assert bundle.other_files == {"notes.txt": b"x" * 100}


def test_describe_bert_and_plain_models():
    m = tflite_schemas()[1]
    s = tflite_schemas()[0]

    bert = m.BertTokenizerOptionsT()
    bert.vocabFile = [_file(b"vocab.txt", "VOCABULARY")]
    sub = m.SubGraphMetadataT()
    sub.inputTensorMetadata = [_tensor_md(n) for n in (b"ids", b"mask", b"segment_ids")]
    sub.outputTensorMetadata = [_tensor_md(b"embedding")]
    sub.inputProcessUnits = [_unit("BertTokenizerOptions", bert)]
    ints = [(n, [1, 128], s.TensorType.INT32) for n in (b"a", b"b", b"c")]
    info = describe_model(_model(ints, [(b"out", [1, 384], s.TensorType.FLOAT32)], metadata=_metadata(sub)))
    assert [i["metadata_name"] for i in info["inputs"]] == ["ids", "mask", "segment_ids"]
    assert {(i["tokenizer"], i["tokenizer_source"]) for i in info["inputs"]} == {("bert", "subgraph")}
    assert info["inputs"][0]["tokenizer_files"] == ["vocab.txt"]
    assert info["subgraph_process_units"] == {"input": ["BertTokenizerOptions"], "output": []}
    assert any("'vocab.txt'" in p and "not packed" in p for p in info["problems"])

    sp = m.SentencePieceTokenizerOptionsT()
    sp.sentencePieceModel = [_file(b"sp.model", "DESCRIPTIONS")]
    sub.inputProcessUnits = [_unit("SentencePieceTokenizerOptions", sp)]
    info = describe_model(_model(ints, [(b"out", [1, 384], s.TensorType.FLOAT32)], metadata=_metadata(sub)))
    assert info["inputs"][2]["tokenizer"] == "sentencepiece" and info["inputs"][2]["tokenizer_files"] == ["sp.model"]

    plain = describe_model(
        _model(
            [(b"text", [1], s.TensorType.STRING)],
            [(b"out", [1, 16], s.TensorType.FLOAT32)],
            custom_codes=[b"FlexStringSplit"],
        )
    )
    assert not plain["has_metadata"] and plain["inputs"][0]["dtype"] == "string"
    assert plain["flex_ops"] == ["FlexStringSplit"] and plain["min_parser_version"] is None

    wrong_id = describe_model(
        _model(ints, [(b"out", [1, 4], s.TensorType.FLOAT32)], metadata=_metadata(sub, identifier=b"XXXX"))
    )
    assert any("expected b'M001'" in p for p in wrong_id["problems"])


# ---------------------------------------------------------------------------------------
# Snappy and CRC32C


def test_snappy_blocks_round_trip():
    """Multi-byte length preambles included (70000 bytes takes three)."""
    import pyarrow as pa

    rng = np.random.default_rng(11)
    for raw in [b"", b"a", b"abc" * 5000, rng.bytes(5000), bytes(70000)]:
        assert snappy_decompress(pa.compress(raw, codec="snappy", asbytes=True), "a block") == raw


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "truncated varint in the snappy length of a block"),
        (b"\x05", "Corrupt snappy compressed data"),
        (b"\x05\x10ab", "Corrupt snappy compressed data"),
        (b"\x04\x05\x00", "Corrupt snappy compressed data"),  # a copy before any output
        (b"\x03\x00a\x06\x02", "Corrupt snappy compressed data"),
        (b"\xff\xff\xff\xff\xff\xff", "bad varint in the snappy length of a block"),
        (b"\xff\xff\xff\xff\x0f" + b"a" * 100, "declared length 4294967295 is impossible for 105 input bytes"),
    ],
)
def test_snappy_rejects_malformed_input(blob, message):
    with pytest.raises(IndexFormatError, match=message) as err:
        snappy_decompress(blob, "a block")
    assert "\n" not in str(err.value)


def test_crc32c_and_leveldb_mask():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 test vector
    data = np.random.default_rng(2).bytes(100003)
    assert crc32c(memoryview(data)[1000:], crc32c(data[:1000])) == crc32c(data)
    assert mask(0) == 0xA282EAD8 and unmask(mask(0xE3069283)) == 0xE3069283  # LevelDB's crc32c::Mask


def test_sstable_reads_every_varint_width_and_views_large_values():
    """Keys and values of every length class (one- and two-byte varints, shared prefixes, blocks
    above and below the size read as views, raw and Snappy) read back exactly, from bytes and
    from a view; large raw values are views of the data, not copies."""
    from scannlite.store.bundle.ondevice import sstable
    from scannlite.store.bundle.ondevice.sstable_writer import write_table

    rng = np.random.default_rng(11)
    items = {}
    for i in range(600):
        key = b"k%05d" % i + b"x" * int(rng.choice([0, 3, 130, 300]))
        items[key] = rng.bytes(int(rng.choice([0, 1, 127, 128, 200, 5000])))
    big = {b"E_%d" % p: rng.bytes(sstable.VIEW_BLOCKS_FROM + 17 * p) for p in range(3)}
    keys = sorted(items)
    blocks = [([(k, items[k]) for k in keys[i : i + 50]], None, bool(i % 100)) for i in range(0, len(keys), 50)]
    blocks += [([(k, v)], None, False) for k, v in sorted(big.items())]
    blocks.sort(key=lambda b: b[0][0][0])
    data = write_table(blocks)
    expected = {**items, **big}
    for source in (data, memoryview(data)):
        table = sstable.read_table(source)
        assert list(table) == sorted(expected) and all(table[k] == v for k, v in expected.items())
        for k in big:
            assert isinstance(table[k], memoryview) and table[k].obj is data  # a view, not a copy
        assert all(isinstance(table[k], bytes) for k in items)
        # One key through the index block, as Seek finds it: present, absent before, between, after.
        for k in [keys[0], keys[49], keys[50], keys[-1], *big]:
            assert sstable.lookup(source, k) == expected[k]
        for absent in (b"A", keys[10] + b"\0", b"zz"):
            assert sstable.lookup(source, absent) is None


def test_metadata_keys_the_searcher_cannot_look_up_are_extra():
    """Only canonical decimal M_<id> keys of some partition's id range are read; overlapping
    ranges (a bad index) still cover their ids, and a label of any size comes back as bytes."""
    rows = lambda n: np.ones((n, 2), np.float32)  # noqa: E731
    odd = {b"M_01": b"x", b"M_": b"x", b"M_1a": b"x", b"M_1\n": b"x", b"M_99": b"x"}
    index = read_index(_float_index(_flat([0, 1], leaves=2), {0: rows(3), 1: rows(2)}, 3, odd))
    # Ranges [0, 3) and [1, 3) overlap: M_0..M_2 are read, every other key is extra.
    assert index.metadata == [b"m0", b"m1", b"m2", b"m1", b"m2"]
    assert index.extra_keys == sorted(odd)
    big = b"L" * (1 << 17)
    index = read_index(_float_index(_flat([0]), {0: rows(2)}, 1, {b"M_1": big}))
    assert index.metadata == [b"m0", big] and all(type(m) is bytes for m in index.metadata)


def test_one_key_is_looked_up_after_every_block_is_checked():
    from scannlite.store.bundle.ondevice.index_file import read_user_info
    from scannlite.store.bundle.ondevice.sstable import check_blocks, lookup

    data = fixture("regex_index.ldb")
    assert read_user_info(data) == read_index(data).user_info == b"userinfo"
    assert lookup(data, b"M_0") == read_index(data).table[b"M_0"] and lookup(data, b"M_9") is None
    for bad, message in [(b"", "the file is empty"), (data[:-3], "magic"), (b"x" * 100, "magic")]:
        for fn in (check_blocks, read_user_info):
            with pytest.raises(IndexFormatError, match=message):
                fn(bad)
    damaged = bytearray(data)
    damaged[20] ^= 0xFF  # inside the first data block: only a checksum pass over every block sees it
    with pytest.raises(IndexFormatError, match="checksum mismatch in data block"):
        read_user_info(bytes(damaged))
    # A reader of a mapped file is asked to drop what it has checked, block after block.
    from scannlite.store.bundle.ondevice import sstable

    calls = []
    original = sstable.RELEASE_EVERY
    try:
        sstable.RELEASE_EVERY = 1
        table = read_table(data, release=lambda: calls.append("read"))
        assert calls == ["read"] * len(table.blocks)
        calls.clear()
        check_blocks(data, release=lambda: calls.append("check"))
        assert calls == ["check"] * sum(b.kind == "data" for b in table.blocks)
    finally:
        sstable.RELEASE_EVERY = original
    no_config = write_table({b"M_0": b"a", b"USER_INFO": b"u"})
    with pytest.raises(IndexFormatError, match="no INDEX_CONFIG"):
        read_user_info(no_config)
