"""The device runtime against the real tflite-support 0.4.4 Task Library (no mocks).

Every device call runs in a fresh worker process through ``run_in``; each costs about half a
second (mostly importing the Task Library), so tests share module-scoped fixtures.
"""

from __future__ import annotations

import time

import flatbuffers
import numpy as np
import pytest

from scannlite.plugin.device import tflite_zip
from scannlite.plugin.device.probe_model import probe_flatbuffer, probe_token, probe_vocabulary
from scannlite.store.bundle.ondevice.tflite_modules import schemas as tflite_schemas
from scannlite.store.workers.boundary import ProcessFailed, WorkerError, run_in
from tests.support.shared_fixtures import tflite_fixture

pytestmark = pytest.mark.device

RUNTIME = "scannlite.plugin.device.runtime:"
QUERY = "The weather was excellent."


def device(name: str, *args, **kwargs):
    return run_in("device", RUNTIME + name, *args, **kwargs)


def fixture_bytes(name: str) -> bytes:
    return tflite_fixture(name).read_bytes()


def payloads(n: int, seed: int) -> list[bytes]:
    """Binary metadata of varied length (up to ~2 KB) whose first 4 bytes are the point id."""
    rng = np.random.default_rng(seed)
    return [i.to_bytes(4, "little") + rng.bytes(int(rng.integers(0, 2000))) for i in range(n)]


def ids_of(neighbors) -> list[int]:
    return [int.from_bytes(meta[:4], "little") for meta, _ in neighbors]


def brute_force(
    queries: np.ndarray, database: np.ndarray, distance: str, k: int, candidates: list[np.ndarray] | None = None
):
    """Exact top-k (ids, device-style distances) per query, optionally within candidate ids."""
    q, x = queries.astype(np.float64), database.astype(np.float64)
    if distance == "dot":
        d = -(q @ x.T)
    else:
        d = (q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :]
    out = []
    for row in range(len(q)):
        allowed = np.arange(len(x)) if candidates is None else candidates[row]
        order = allowed[np.argsort(d[row, allowed], kind="stable")[:k]]
        out.append((order.tolist(), d[row, order]))
    return out


def assert_parity(got, want, rtol=1e-5, atol=1e-5):
    for neighbors, (want_ids, want_d) in zip(got, want, strict=True):
        assert ids_of(neighbors) == want_ids
        np.testing.assert_allclose([dist for _, dist in neighbors], want_d, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- probe model


@pytest.mark.parametrize("dim", [16, 128])
def test_probe_embedder_returns_each_vector_exactly(dim):
    rng = np.random.default_rng(dim)
    vectors = (rng.standard_normal((300, dim)) * rng.uniform(1e-3, 1e3, (300, 1))).astype(np.float32)
    model = device("make_probe_model", vectors)
    texts = [probe_token(i) for i in range(len(vectors))] + ["not a probe", ""]
    got = device("text_embed", model, texts)
    assert got.dtype == np.float32 and got.shape == (302, dim)
    assert np.abs(got[:300] - vectors).max() == 0.0
    assert not got[300:].any()  # <UNKNOWN> and <PAD> rows are zero


def test_probe_flatbuffer_is_pure_python_and_checks_input():
    vectors = np.eye(3, 5, dtype=np.float32)
    model = probe_flatbuffer(vectors)  # runs in this (store) process: no native module needed
    assert model[4:8] == b"TFL3" and model == probe_flatbuffer(vectors)
    assert probe_vocabulary(2) == "<PAD> 0\n<UNKNOWN> 1\nq0 2\nq1 3\n"
    for bad in (np.zeros(4), np.zeros((0, 3)), np.array([[np.nan]]), np.array([["a"]])):
        with pytest.raises(ValueError):
            probe_flatbuffer(bad)


# ----------------------------------------------------------------------------- index parity


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(7)
    database = rng.standard_normal((400, 16)).astype(np.float32)
    queries = rng.standard_normal((12, 16)).astype(np.float32)
    probe = device("make_probe_model", queries)
    return database, queries, probe, payloads(len(database), seed=3)


def search_probe(probe, queries, **kwargs):
    return device("text_search", probe, [probe_token(i) for i in range(len(queries))], **kwargs)


@pytest.mark.parametrize("distance", ["dot", "l2"])
@pytest.mark.task_library
def test_float_one_leaf_index_matches_numpy(dataset, distance):
    database, queries, probe, meta = dataset
    config = device("scann_config", distance=distance, centroids=np.zeros((1, 16)))
    index = device(
        "build_index",
        embedding_dim=16,
        serialized_config=config,
        user_info=b"u",
        partition_assignment=np.zeros(len(database), np.uint32),
        metadata=meta,
        float_database=database,
    )
    got = search_probe(probe, queries, max_results=10, l2_normalize=False, index=index)
    assert_parity(got, brute_force(queries, database, distance, 10))
    assert [m for m, _ in got[0]] == [meta[i] for i in ids_of(got[0])]  # binary payloads intact


@pytest.mark.parametrize("distance", ["dot", "l2"])
@pytest.mark.task_library
def test_ah_tree_index_matches_numpy_emulation(dataset, distance):
    """UINT8 codes, 4 leaves of which 2 are searched, FLOAT lookup: emulate the device exactly."""
    database, queries, probe, meta = dataset
    rng = np.random.default_rng(11)
    centroids = database[rng.choice(len(database), 4, replace=False)]
    score = (lambda a, c: -(a @ c.T)) if distance == "dot" else (lambda a, c: ((a[:, None, :] - c[None]) ** 2).sum(-1))
    assignment = score(database, centroids).argmin(1).astype(np.uint32)
    # 8 subspaces of width 2, 16 codes each; codes = nearest codebook entry per subspace.
    books = [database[rng.choice(len(database), 16, replace=False), 2 * s : 2 * s + 2] for s in range(8)]
    codes = np.stack(
        [((database[:, None, 2 * s : 2 * s + 2] - b[None]) ** 2).sum(-1).argmin(1) for s, b in enumerate(books)], axis=1
    ).astype(np.uint8)
    recon = np.concatenate([books[s][codes[:, s]] for s in range(8)], axis=1)

    config = device(
        "scann_config", distance=distance, centroids=centroids, leaves_to_search=2, codebooks=books, lookup_type="FLOAT"
    )
    index = device(
        "build_index",
        embedding_dim=8,
        serialized_config=config,
        user_info=b"",
        partition_assignment=assignment,
        metadata=meta,
        hashed_database=codes,
    )
    got = search_probe(probe, queries, max_results=10, l2_normalize=False, index=index)

    leaves = np.argsort(score(queries, centroids), axis=1)[:, :2]
    candidates = [np.flatnonzero(np.isin(assignment, row)) for row in leaves]
    assert_parity(got, brute_force(queries, recon, distance, 10, candidates), rtol=1e-4, atol=1e-4)


@pytest.mark.task_library
def test_build_index_refuses_bad_input_in_one_line():
    with pytest.raises(WorkerError, match=r"^partition_assignment has 2 entries for 3 metadata items$"):
        device(
            "build_index",
            embedding_dim=2,
            serialized_config=b"",
            user_info=b"",
            partition_assignment=[0, 0],
            metadata=[b"a", b"b", b"c"],
            float_database=np.zeros(6),
        )
    with pytest.raises(WorkerError, match=r"^index builder refused the index: .*Partition index 3"):
        device(
            "build_index",
            embedding_dim=2,
            serialized_config=device("scann_config", distance="dot", centroids=np.zeros((1, 2))),
            user_info=b"",
            partition_assignment=[0, 3, 0],
            metadata=[b"a", b"b", b"c"],
            float_database=np.zeros(6),
        )


@pytest.mark.task_library
def test_build_index_refuses_what_the_device_would_mis_serve():
    config = device("scann_config", distance="dot", centroids=np.zeros((1, 4)))
    with pytest.raises(WorkerError, match=r"^float vectors have dimension 3 but the centroids 4$"):
        device(
            "build_index",
            embedding_dim=3,
            serialized_config=config,
            user_info=b"",
            partition_assignment=[0],
            metadata=[b"a"],
            float_database=np.zeros(3),
        )
    books = [np.zeros((2, 2)), np.ones((2, 2))]
    ah = device("scann_config", distance="dot", centroids=np.zeros((1, 4)), codebooks=books)
    with pytest.raises(WorkerError, match=r"^codes in subspace 1 reach 5 but its codebook has 2 entries$"):
        device(
            "build_index",
            embedding_dim=2,
            serialized_config=ah,
            user_info=b"",
            partition_assignment=[0],
            metadata=[b"a"],
            hashed_database=np.array([[0, 5]], np.uint8),
        )


@pytest.mark.task_library
def test_build_index_copies_python_lists_safely():
    """The binding reads a list of floats through a freed temporary (garbage); we must not."""
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5
    config = device("scann_config", distance="l2", centroids=np.zeros((1, 4)))
    common = dict(
        embedding_dim=4, serialized_config=config, user_info=b"", metadata=[b"a", b"b", b"c"], compression=False
    )
    from_numpy = device("build_index", partition_assignment=np.zeros(3, np.uint32), float_database=vectors, **common)
    from_lists = device(
        "build_index", partition_assignment=[0, 0, 0], float_database=[float(v) for v in vectors.ravel()], **common
    )
    assert from_lists == from_numpy
    assert vectors.tobytes() in from_numpy  # uncompressed E_0 holds the raw float32 rows


# ----------------------------------------------------------------------------- bundles


@pytest.mark.task_library
def test_fixture_searcher_conformance():
    model = fixture_bytes("regex_searcher.tflite")
    (got,) = device("text_search", model, [QUERY], max_results=5, l2_normalize=True)
    want = [
        (b"The weather was excellent.", 0.0),
        (b"The sun was shining on that day.", 6e-5),
        (b"The cat is chasing after the mouse.", 9e-5),
        (b"It was a sunny day.", 1.1e-4),
        (b"He was very happy with his newly bought car.", 1.2e-4),
    ]
    assert [m for m, _ in got] == [m for m, _ in want]
    np.testing.assert_allclose([d for _, d in got], [d for _, d in want], atol=3e-3)
    assert device("user_info", model) == b"userinfo"
    (two,) = device("text_search", model, [QUERY], max_results=2, l2_normalize=True)
    assert two == got[:2]


@pytest.mark.task_library
def test_attach_keeps_vocab_and_matches_index_file():
    embedder = fixture_bytes("regex_one_embedding_with_metadata.tflite")
    index = fixture_bytes("regex_index.ldb")
    bundle = device("attach_index", embedder, index)
    names = [name for name, _ in tflite_zip.split(bundle)[1]]
    assert names == ["vocab.txt", "on_device_scann_index.ldb"]
    assert dict(tflite_zip.split(bundle)[1])["vocab.txt"] == dict(tflite_zip.split(embedder)[1])["vocab.txt"]
    packed = device("text_search", bundle, [QUERY, "It was a sunny day."], max_results=5, l2_normalize=True)
    separate = device(
        "text_search", embedder, [QUERY, "It was a sunny day."], max_results=5, l2_normalize=True, index=index
    )
    assert packed == separate
    assert packed[0][0] == (b"The weather was excellent.", 0.0)  # the vocab still tokenizes
    assert packed[1][0][0] == b"It was a sunny day."


@pytest.mark.task_library
def test_a_bundle_given_by_path_answers_as_its_bytes_do(tmp_path):
    # An export's bundle is checked from its file: the Task Library maps it (file_name) and the
    # reader judges it through a map, so no process holds a copy of a large bundle.
    bundle = fixture_bytes("regex_searcher.tflite")
    path = tmp_path / "bundle.tflite"
    path.write_bytes(bundle)
    queries = [QUERY, "It was a sunny day."]
    for name, kwargs in [("text_search", {"max_results": 5, "l2_normalize": True}), ("text_embed", {})]:
        by_path = device(name, str(path), queries, **kwargs)
        by_bytes = device(name, bundle, queries, **kwargs)
        if name == "text_embed":
            np.testing.assert_array_equal(by_path, by_bytes)
        else:
            assert by_path == by_bytes and by_path[0][0][0] == b"The weather was excellent."
    with pytest.raises(WorkerError, match=r"^cannot read the model .*missing.tflite: No such file or directory$"):
        device("text_search", str(tmp_path / "missing.tflite"), queries, max_results=5, l2_normalize=True)
    (tmp_path / "text.tflite").write_bytes(b"not a model at all")
    with pytest.raises(WorkerError, match=r"^the model is not a usable TFLite model: not a TFLite model"):
        device("text_embed", str(tmp_path / "text.tflite"), queries)


@pytest.mark.task_library
def test_attach_replaces_an_existing_index():
    searcher = fixture_bytes("regex_searcher.tflite")
    rng = np.random.default_rng(5)
    config = device("scann_config", distance="l2", centroids=np.zeros((1, 16)))
    index = device(
        "build_index",
        embedding_dim=16,
        serialized_config=config,
        user_info=b"new",
        partition_assignment=np.zeros(3, np.uint32),
        metadata=[b"x", b"y", b"z"],
        float_database=rng.standard_normal((3, 16)).astype(np.float32),
    )
    bundle = device("attach_index", searcher, index, file_name="replacement.ldb")
    assert [name for name, _ in tflite_zip.split(bundle)[1]] == ["vocab.txt", "replacement.ldb"]
    (got,) = device("text_search", bundle, [QUERY], max_results=5, l2_normalize=False)
    assert sorted(m for m, _ in got) == [b"x", b"y", b"z"]
    assert device("user_info", bundle) == b"new"


def test_attach_and_probe_are_deterministic():
    embedder = fixture_bytes("regex_one_embedding_with_metadata.tflite")
    index = fixture_bytes("regex_index.ldb")
    vectors = np.random.default_rng(1).standard_normal((20, 8)).astype(np.float32)
    first = device("attach_index", embedder, index), device("make_probe_model", vectors)
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    second = device("attach_index", embedder, index), device("make_probe_model", vectors)
    assert first == second
    # Re-attaching to the bundle replaces its index by name: a fixed point, not a second copy.
    assert device("attach_index", first[0], index) == first[0]


def test_attach_refuses_bad_input_in_one_line():
    embedder = fixture_bytes("regex_one_embedding_with_metadata.tflite")
    index = fixture_bytes("regex_index.ldb")
    for args, kwargs, message in [
        ((embedder, b"not an index" * 8), {}, "the index is not a LevelDB table"),
        ((b"garbage" * 20, index), {}, "the model is not a usable TFLite model"),
        # the one acceptance policy: a text model without tokenizer metadata is no embedder
        (
            (probe_flatbuffer(np.ones((3, 16), np.float32)), index),
            {},
            "the model: its int32 text input has no RegexTokenizer metadata",
        ),
        ((embedder, index), {"file_name": "vocab.txt"}, "the model already packs a file named 'vocab.txt'"),
        ((embedder, index), {"file_name": "../x.ldb"}, "index file name must be a plain file name"),
    ]:
        with pytest.raises(WorkerError, match="^" + message):
            device("attach_index", *args, **kwargs)


def test_attach_targets_response_encoding_of_three_input_models():
    """USE-QA-shaped models (3 string inputs, no input process units): the searcher uses output 1."""
    fb = tflite_schemas()[0]

    from scannlite.plugin.device.bundle import index_of
    from scannlite.store.bundle.ondevice.bundle_file import read_metadata

    graph = fb.SubGraphT()
    graph.tensors = []
    for name in ("inp_text", "res_context", "res_text", "query_encoding", "response_encoding"):
        tensor = fb.TensorT()
        tensor.name, tensor.shape = name, [1, 4] if name.endswith("encoding") else [1]
        tensor.type = fb.TensorType.FLOAT32 if name.endswith("encoding") else fb.TensorType.STRING
        graph.tensors.append(tensor)
    graph.inputs, graph.outputs, graph.operators = [0, 1, 2], [3, 4], []
    model = fb.ModelT()
    model.version, model.subgraphs, model.buffers = 3, [graph], [fb.BufferT()]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    index = fixture_bytes("regex_index.ldb")
    bundle = device("attach_index", bytes(builder.Output()), index)
    outputs = read_metadata(tflite_zip.split(bundle)[0]).subgraphMetadata[0].outputTensorMetadata
    assert outputs[0].associatedFiles is None and len(outputs[1].associatedFiles) == 1
    assert index_of(bundle) == ("on_device_scann_index.ldb", index)


# ----------------------------------------------------------------------------- images


def tiny_image_model(weights: np.ndarray, height: int, width: int) -> bytes:
    """uint8 [1,H,W,3] -> CAST -> RESHAPE [1,H*W*3] -> FULLY_CONNECTED -> float [1,D], no metadata."""
    from tests.support.model_builders import image_model

    return image_model(weights, height, width, "uint8")


@pytest.mark.task_library
def test_image_embed_search_and_attach():
    rng = np.random.default_rng(9)
    weights = (rng.standard_normal((8, 4 * 4 * 3)) / 255).astype(np.float32)
    model = tiny_image_model(weights, 4, 4)
    images = [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(40)]
    expected = np.stack([weights @ img.reshape(-1).astype(np.float32) for img in images])
    embedded = device("image_embed", model, images)
    np.testing.assert_allclose(embedded, expected, rtol=1e-5, atol=1e-5)

    config = device("scann_config", distance="l2", centroids=np.zeros((1, 8)))
    index = device(
        "build_index",
        embedding_dim=8,
        serialized_config=config,
        user_info=b"img",
        partition_assignment=np.zeros(40, np.uint32),
        metadata=payloads(40, seed=2),
        float_database=embedded,
    )
    got = device("image_search", model, images[:5], max_results=3, l2_normalize=False, index=index)
    assert_parity(got, brute_force(embedded[:5], embedded, "l2", 3), atol=1e-4)
    assert [ids_of(n)[0] for n in got] == [0, 1, 2, 3, 4]

    bundle = device("attach_index", model, index)
    assert device("image_search", bundle, images[:5], max_results=3, l2_normalize=False) == got
    assert device("user_info", bundle) == b"img"


# ----------------------------------------------------------------------------- crashes


@pytest.mark.task_library
def test_native_crash_becomes_process_failed():
    with pytest.raises(ProcessFailed, match="crashed"):
        run_in("device", "ctypes:string_at", 0)
    assert device("user_info", fixture_bytes("regex_searcher.tflite")) == b"userinfo"  # we live on


@pytest.mark.task_library
def test_searching_without_any_index_is_refused_before_the_library_crashes():
    # tflite-support 0.4.4's ImageSearcher segfaults on a model with no metadata and no index.
    model = tiny_image_model(np.ones((4, 12), np.float32), 2, 2)
    with pytest.raises(WorkerError, match="^the model carries no SCANN_INDEX_FILE and no index was given$"):
        device("image_search", model, [np.zeros((2, 2, 3), np.uint8)], max_results=1, l2_normalize=False)


@pytest.mark.task_library
def test_binary_user_info_is_refused_in_one_line():
    embedder = fixture_bytes("regex_one_embedding_with_metadata.tflite")
    config = device("scann_config", distance="dot", centroids=np.zeros((1, 16)))
    index = device(
        "build_index",
        embedding_dim=16,
        serialized_config=config,
        user_info=b"\xff\x00",
        partition_assignment=[0],
        metadata=[b"a"],
        float_database=np.ones(16),
    )
    with pytest.raises(WorkerError, match=r"^the index's USER_INFO is not UTF-8"):
        device("user_info", embedder, index)


@pytest.mark.task_library
def test_task_library_errors_are_one_line():
    embedder = fixture_bytes("regex_one_embedding_with_metadata.tflite")
    with pytest.raises(WorkerError, match=r"^TextSearcher could not load the bundle: .*not an sstable"):
        device("text_search", embedder, [QUERY], max_results=5, l2_normalize=False, index=b"x" * 64)
    with pytest.raises(WorkerError, match=r"^max_results must be an integer >= 1; got 0$"):
        device(
            "text_search", embedder, [QUERY], max_results=0, l2_normalize=False, index=fixture_bytes("regex_index.ldb")
        )
