"""libscannlite (docs/native.md) against the real Task Library, bit for bit.

Every vector of tests/support/native_vectors.py (scannlite-written indexes and bundles: dot and
squared L2, FLOAT/INT16/INT8 lookup, float indexes, one leaf and many, gapped ids, Snappy
metadata, duplicated items and zero queries that tie; Google's fixtures) is searched by
TextSearcher through the probe model in a device process and by libscannlite: ids, order,
distance bits and metadata must be identical, ties included.
"""

from __future__ import annotations

import mmap
import subprocess
import sys
import threading

import numpy as np
import pytest

from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle.ondevice.index_file import read_index
from scannlite.store.bundle.ondevice.index_writer import scann_config, write_index
from scannlite.store.searcher import NativeError, NativeSearcher, l2_normalize
from scannlite.store.searcher.native import library_path
from tests.support import native_vectors
from tests.support.shared_fixtures import require_fixtures

CLI = library_path().parent / "scannlite-cli"
DEVICE = DeviceProcesses()


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    require_fixtures(*native_vectors.GOOGLE_INDEXES, native_vectors.GOOGLE_BUNDLE)
    return native_vectors.make_vectors(tmp_path_factory.mktemp("native"))


def _queries(v) -> np.ndarray:
    return np.fromfile(v["queries"], dtype="<f4").reshape(-1, v["dim"])


def _bits(x) -> int:
    return int(np.float32(x).view(np.uint32))


def _same(device, native, labels_are_ids: bool, what: str) -> None:
    """device: [(metadata, distance)]; native: a SearchResult. Identical, in order, to the bit."""
    got = [(m, _bits(d)) for m, d in zip(native.metadata, native.distances)]
    want = [(bytes(m), _bits(d)) for m, d in device]
    assert got == want, f"{what}: libscannlite {got[:5]} ... differs from the Task Library {want[:5]} ..."
    if labels_are_ids:
        assert [int(m) for m in native.metadata] == native.ids.tolist(), f"{what}: ids are not the M_<id> keys"


def _device_probe(index, queries, k, l2_normalize=False):
    return DEVICE.check_bundle(index=str(index), probe_vectors=queries, max_results=k, l2_normalize=l2_normalize)[
        "probe"
    ]


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.task_library
def test_results_are_the_task_librarys_bit_for_bit(vectors):
    compared = ties = 0
    for v in vectors:
        if v["leaves"]:
            continue  # an override: the Task Library has no such option (next test)
        queries = _queries(v)
        device = _device_probe(v["ldb"], queries, v["k"])
        with NativeSearcher(v["path"]) as s:
            for i, q in enumerate(queries):
                native = s.search(q, v["k"])
                _same(device[i], native, v["labels_are_ids"], f"{v['name']} query {i}")
                compared += len(native.ids)
                ties += int((np.diff(native.distances) == 0).sum())
    # The comparison covered real results, and many exact ties among them.
    assert compared > 10000 and ties > 1000, (compared, ties)


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.task_library
def test_leaves_override_and_normalised_queries_match_the_task_library(tmp_path):
    """Searching n leaves by override equals the device on the same index written to search n;
    l2_normalize is the device's to the bit (INT8 tables turn an ulp into a step)."""
    made = {}
    for search in (2, 7):
        path = tmp_path / f"search{search}.ldb"
        made[search] = native_vectors._ah_index(
            path,
            np.random.default_rng(7),
            distance="dot",
            lookup="INT8",
            widths=[3] * 8,
            codes=128,
            n=500,
            leaves=20,
            search=search,
            duplicates=True,
        )
    assert np.array_equal(made[2], made[7])
    queries = native_vectors._queries(np.random.default_rng(8), 24, 30, made[2]) * np.float32(3.7)
    device = _device_probe(tmp_path / "search7.ldb", queries, 12)
    device_normed = _device_probe(tmp_path / "search2.ldb", queries, 12, l2_normalize=True)
    with NativeSearcher(tmp_path / "search2.ldb") as s:
        assert s.info["leaves_to_search"] == 2
        for i, q in enumerate(queries):
            _same(device[i], s.search(q, 12, leaves=7), True, f"override query {i}")
            _same(device_normed[i], s.search(l2_normalize(q), 12), True, f"normalised query {i}")


def test_cli_prints_what_the_binding_returns(vectors):
    for v in vectors:
        out = subprocess.run(
            [str(CLI), "search", v["path"], v["queries"], str(v["k"]), str(v["leaves"])],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        lines = iter(out)
        with NativeSearcher(v["path"]) as s:
            for i, q in enumerate(_queries(v)):
                r = s.search(q, v["k"], leaves=v["leaves"] or None)
                for rank, (id_, d, m) in enumerate(zip(r.ids, r.distances, r.metadata)):
                    assert next(lines) == f"{i} {rank} {id_} {_c_hex(d)} {m.hex() or '-'}"
        assert next(lines, None) is None
        info = dict(
            line.split(" ", 1)
            for line in subprocess.run(
                [str(CLI), "info", v["path"]], capture_output=True, text=True, check=True
            ).stdout.splitlines()
        )
        with NativeSearcher(v["path"]) as s:
            assert info == {k: str(val) for k, val in s.info.items()}


def _c_hex(d) -> str:
    """printf's %a of a float32 widened to double (glibc: 0x1.8p+1, -0x0p+0, 0x1p-149)."""
    x = float(np.float32(d))
    if x == 0:
        return "-0x0p+0" if np.signbit(x) else "0x0p+0"
    h = x.hex()  # '0x1.8000000000000p+1'
    mant, exp = h.split("p")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{int(exp):+d}"


def test_empty_metadata_prints_a_dash(tmp_path):
    path = tmp_path / "tiny.ldb"
    vecs = np.eye(4, dtype=np.float32)
    with open(path, "wb") as f:
        write_index(
            f,
            config=scann_config(distance="dot", centroids=np.zeros((1, 4))),
            database=vecs,
            sizes=[4],
            labels=[b"", b"\x00\xff", b"x", b""],
            user_info=None,
        )
    (tmp_path / "q.f32").write_bytes(np.array([[1, 0.5, 0.25, 0]], "<f4").tobytes())
    out = subprocess.run(
        [str(CLI), "search", str(path), str(tmp_path / "q.f32"), "4"], capture_output=True, text=True, check=True
    ).stdout
    # A leaf this small takes Eigen's coefficient-based product: -1 * (q.x), so -0 for item 3.
    assert out == "0 0 0 -0x1p+0 -\n0 1 1 -0x1p-1 00ff\n0 2 2 -0x1p-2 78\n0 3 3 -0x0p+0 -\n"


def _oracle(index_path, query, allow, leaves):
    """Brute force over the index's own codes: the distance of every allowed item in the
    searched leaves, in the device's arithmetic (store/index/device_search.py, with 256-subspace
    blocks for INT8 over 16 codes)."""
    from scannlite.store.index import device_search as ds

    ix = read_index(open(index_path, "rb").read())
    ah = ix.asymmetric_hashing
    sizes = ix.partition_sizes
    dev = ds.DeviceIndex(
        distance="dot" if ah.query_distance == 1 else "l2",
        centroids=ix.partitioner.centroids,
        offsets=np.concatenate([[0], np.cumsum(sizes)]),
        codebooks=ah.codebooks,
        codes=ix.vectors(),
        vectors=None,
        lookup_type=ah.lookup_type.name,
    )
    n = ix.leaves_searched if leaves is None else min(leaves, ix.partitioner.num_leaves)
    visited = ds.select_leaves(dev, query[None, :], n)[0]
    lut = ds.lookup_table(dev, query)
    s = lut.shape[0]
    cpb = 256 if dev.lookup_type == "INT8" and lut.shape[1] == 16 else 32
    if dev.lookup_type != "FLOAT":
        table, lo, hi = ds.quantize_table(lut, dev.lookup_type)
        top = ds.MAX_QUANTIZED[dev.lookup_type]
        scale = np.float32(np.float32(hi - lo) / np.float32(top))
        off1 = np.float32(lo + scale / np.float32(2))
    out = {}
    allow = {int(a) for a in allow}
    for p in visited:
        for row, id_ in enumerate(ix.ids(p)):
            if id_ not in allow:
                continue
            codes = ix.partitions[p][row]
            d = np.float32(0)
            for b in range(0, s, cpb):
                idx = np.arange(b, min(s, b + cpb))
                if dev.lookup_type == "FLOAT":
                    acc = np.float32(lut[b, codes[b]])
                    for j in idx[1:]:
                        acc = np.float32(acc + lut[j, codes[j]])
                    d = np.float32(d + acc)
                else:
                    acc = np.float32(int(table[idx, codes[idx]].astype(np.int64).sum()) % 65536)
                    d = np.float32(d + np.float32(scale * acc + np.float32(np.float32(len(idx)) * off1)))
            out[id_] = d
    return out


@pytest.mark.parametrize("name", ["ah_dot_float_many", "ah_l2_int16_many", "ah_dot_int8_many", "ah_l2_int8_16codes"])
def test_filtered_search_is_brute_force_over_the_allowed_items(vectors, name):
    v = next(x for x in vectors if x["name"] == name)
    rng = np.random.default_rng(5)
    with NativeSearcher(v["path"]) as s:
        all_ids = [int(m) for m in s.search(np.zeros(v["dim"], np.float32), 100000, leaves=2**32 - 1).metadata]
        for i, q in enumerate(_queries(v)[:12]):
            allow = rng.choice(all_ids, size=len(all_ids) // 5, replace=False)
            allow = np.concatenate([allow, allow[:10], [10**9]])  # duplicates and an unknown id are ignored
            for leaves in (None, 2**32 - 1):
                k = v["k"]
                r = s.search_filtered(q, k, allow, leaves=leaves)
                truth = _oracle(v["path"], q, allow, None if leaves is None else leaves)
                assert len(r.ids) == min(k, len(truth)), (name, i, leaves)
                assert len(set(r.ids.tolist())) == len(r.ids)
                for id_, d in zip(r.ids.tolist(), r.distances):
                    assert id_ in truth and _bits(truth[id_]) == _bits(d), (name, i, id_, d, truth.get(id_))
                assert (np.diff(r.distances) >= 0).all()
                if len(r.ids) == k:  # nothing left out is nearer than the k-th
                    rest = [d for j, d in truth.items() if j not in set(r.ids.tolist())]
                    assert not rest or min(rest) >= r.distances[-1]


def test_concurrent_searches_give_the_same_results(vectors):
    v = next(x for x in vectors if x["name"] == "ah_l2_int16_many.bundle")
    queries = _queries(v)
    with NativeSearcher(v["path"]) as s:
        expected = [s.search(q, v["k"]) for q in queries]
        failures = []

        def work(seed):
            order = np.random.default_rng(seed).permutation(len(queries))
            for _ in range(5):
                for i in order:
                    r = s.search(queries[i], v["k"])
                    if r.ids.tolist() != expected[i].ids.tolist() or r.metadata != expected[i].metadata:
                        failures.append(i)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures


def test_bad_arguments_are_one_line_errors(vectors):
    v = next(x for x in vectors if x["name"] == "float_dot_many")
    with NativeSearcher(v["path"]) as s:
        q = _queries(v)[0]
        with pytest.raises(NativeError, match="the query has 12 dimensions but the index expects 13"):
            s.search(q[:12], 5)
        for k in (0, -3):
            with pytest.raises(NativeError, match="k must be > 0"):
                s.search(q, k)
        everything = s.search(q, 2**31 - 1, leaves=s.info["num_leaves"])  # no more memory than the index holds
        assert len(everything.ids) == s.info["size"] == len(set(everything.ids.tolist()))
        bad = q.copy()
        bad[3] = np.nan
        with pytest.raises(NativeError, match="NaN or infinite value at dimension 3"):
            s.search(bad, 5)
    s.close()
    with pytest.raises(NativeError, match="closed"):
        s.search(q, 5)


def test_empty_foreign_and_unsupported_files_are_refused(tmp_path, fixtures_dir):
    cases = {
        "empty.ldb": (b"", "the file is empty"),
        "text.ldb": (b"hello, this is not an index at all" * 3, "bad SSTable magic number"),
        "short.ldb": (b"tiny", "too short for an SSTable"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NativeError, match=message):
            NativeSearcher(tmp_path / name)
        with pytest.raises(NativeError, match=message):
            NativeSearcher(data)
        r = subprocess.run([str(CLI), "info", str(tmp_path / name)], capture_output=True, text=True)
        assert r.returncode == 1 and r.stdout == "" and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    with pytest.raises(NativeError, match="UINT8 but ScaNN config doesn't specify a product quantization codebook"):
        NativeSearcher(fixtures_dir / "dummy_index.ldb")
    with pytest.raises(NativeError, match="no SCANN_INDEX_FILE"):
        NativeSearcher(fixtures_dir / "regex_one_embedding_with_metadata.tflite")


@pytest.mark.parametrize("name", ["ah_l2_int16_many", "ah_l2_int16_many.bundle", "float_l2_one"])
def test_truncated_and_corrupted_files_fail_cleanly(vectors, tmp_path, name):
    """Every truncation and many single-byte flips: a one-line error or a valid answer, never a
    crash (the CLI runs each in its own process, so a crash would show as a signal)."""
    v = next(x for x in vectors if x["name"] == name)
    data = open(v["path"], "rb").read()
    rng = np.random.default_rng(3)
    cuts = sorted(set(list(range(0, 200, 7)) + list(rng.integers(0, len(data), 60)) + [len(data) - 1, len(data) - 48]))
    failures, detected = [], 0
    for n, cut in enumerate(cuts):
        path = tmp_path / f"cut{n}"
        path.write_bytes(data[:cut])
        r = subprocess.run([str(CLI), "search", str(path), v["queries"], "3"], capture_output=True, text=True)
        if r.returncode != 1 or not r.stderr.startswith("error: ") or r.stderr.count("\n") != 1:
            failures.append(("cut", cut, r.returncode, r.stderr[:200]))
    ldb = open(v["ldb"], "rb").read()
    start = data.find(ldb)  # flip bytes of the index (the rest of a bundle is a model no search reads)
    for n, at in enumerate(rng.integers(start, start + len(ldb), 80)):
        flipped = bytearray(data)
        flipped[at] ^= 0x5A
        path = tmp_path / f"flip{n}"
        path.write_bytes(bytes(flipped))
        r = subprocess.run([str(CLI), "search", str(path), v["queries"], "3"], capture_output=True, text=True)
        if r.returncode not in (0, 1) or (r.returncode == 1 and not r.stderr.startswith("error: ")):
            failures.append(("flip", int(at), r.returncode, r.stderr[:200]))
        detected += r.returncode == 1
    assert not failures, failures[:5]
    # Checksums catch flips in the blocks (the bundle's vocabulary and padding are not checked).
    assert detected >= 40, detected


def test_a_corrupted_codes_block_fails_its_checksum_on_first_use(vectors, tmp_path):
    v = next(x for x in vectors if x["name"] == "float_l2_one")
    data = bytearray(open(v["path"], "rb").read())
    ix = read_index(bytes(data))
    block = next(b for b in ix.table.blocks if b.kind == "data" and b.size > 20000)  # E_0's block
    data[block.offset + block.size // 2] ^= 1
    with NativeSearcher(bytes(data)) as s:  # opening reads no codes
        with pytest.raises(NativeError, match="checksum mismatch in a data block"):
            s.search(_queries(v)[0], 3)


def test_a_damaged_leaf_opens_and_fails_every_use_the_same_way(vectors):
    """Opening does not locate the leaves: a leaf whose block's restart array is damaged opens,
    then every search visiting it, and counting the items, fails with the same line."""
    v = next(x for x in vectors if x["name"] == "float_l2_one")
    data = bytearray(open(v["path"], "rb").read())
    ix = read_index(bytes(data))
    block = next(b for b in ix.table.blocks if b.kind == "data" and b.size > 20000)  # E_0's block
    data[block.offset + block.size - 4 : block.offset + block.size] = (10**6).to_bytes(4, "little")
    with NativeSearcher(bytes(data)) as s:
        messages = set()
        for _ in range(3):
            with pytest.raises(NativeError, match="restart points") as e:
                s.search(_queries(v)[0], 3, leaves=s.info_without_size["num_leaves"])
            messages.add(str(e.value))
            with pytest.raises(NativeError, match="restart points") as e:
                _ = s.size
            messages.add(str(e.value))
        assert len(messages) == 1, messages


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.task_library
@pytest.mark.parametrize("distance, lookup, dpb", [("dot", "INT8", 2), ("l2", "FLOAT", 1), ("dot", "INT16", 1)])
def test_exported_bundles_search_as_on_the_device(tmp_path, fixtures_dir, distance, lookup, dpb):
    """A real export (k-means leaves, ScaNN's codebooks, clustered data: near-duplicate leaves and
    many near-ties), queried with the catalog's own vectors and random ones, raw and normalised."""
    import zipfile

    from scannlite.store.bundle.export import export
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.catalog.synthetic import clustered
    from scannlite.store.index.build import build
    from scannlite.store.index.config import IndexConfig

    x = clustered(3000, 16, clusters=60, spread=0.8, seed=11) * (3.0 if distance == "l2" else 1.0)
    cat = Catalog.create(
        tmp_path / "c",
        16,
        distance,
        index=IndexConfig(num_leaves=24, leaves_to_search=3, dims_per_block=dpb, lookup_type=lookup),
    )
    cat.add([f"v{i}" for i in range(len(x))], x, [f"text {i}" for i in range(len(x))])
    build(cat)
    bundle = tmp_path / "b.tflite"
    export(cat, device=DEVICE, out=bundle, embedder=fixtures_dir / "regex_one_embedding_with_metadata.tflite")
    with zipfile.ZipFile(bundle) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".ldb"))
        (tmp_path / "index.ldb").write_bytes(zf.read(name))
    rng = np.random.default_rng(4)
    queries = np.concatenate([x[rng.choice(len(x), 150, replace=False)], rng.standard_normal((50, 16))]).astype(
        np.float32
    )
    with NativeSearcher(bundle) as s:
        for normalise in (False, True):
            device = _device_probe(tmp_path / "index.ldb", queries, 10, l2_normalize=normalise)
            for i, q in enumerate(queries):
                _same(
                    device[i],
                    s.search(l2_normalize(q) if normalise else q, 10),
                    False,
                    f"{distance}/{lookup} query {i} (normalised: {normalise})",
                )


def test_a_missing_library_is_one_clear_line(monkeypatch, tmp_path):
    from scannlite.store.searcher import NativeLibraryMissing, native

    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setenv("SCANNLITE_NATIVE_LIB", str(tmp_path / "libscannlite.so"))
    with pytest.raises(
        NativeLibraryMissing,
        match=r"libscannlite is not built: \$SCANNLITE_NATIVE_LIB names .*"
        r"libscannlite.so, which does not exist",
    ):
        NativeSearcher(b"")
    monkeypatch.delenv("SCANNLITE_NATIVE_LIB")
    assert native.library_path() == native._repo_lib() and native._repo_lib().parent.name == "build"


def test_a_library_built_from_older_sources_is_one_clear_line(monkeypatch, tmp_path):
    """A libscannlite.so left from an older checkout lacks newer functions: the binding names one and
    says to rebuild, rather than failing with ctypes' AttributeError at the first call."""
    import subprocess

    from scannlite.store.searcher import NativeLibraryMissing, native

    source = tmp_path / "old.c"
    source.write_text("int scannlite_open(void) { return 0; }\nint scannlite_close(void) { return 0; }\n")
    old = tmp_path / "libscannlite.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(old), str(source)], check=True)
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setenv("SCANNLITE_NATIVE_LIB", str(old))
    with pytest.raises(NativeLibraryMissing, match=r"built from older sources \(it lacks scannlite_get_info\)"):
        native.l2_normalize(np.ones(4, np.float32))
    monkeypatch.setattr(native, "_LIB", None)


def test_snappy_blocks_decode_to_the_written_bytes(tmp_path):
    """Metadata of every shape (empty, short, long literals, long repeats, random bytes) in
    Snappy-compressed blocks comes back byte for byte, and an unknown id is NOT_FOUND."""
    rng = np.random.default_rng(9)
    n = 400
    labels = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            labels.append(b"")
        elif kind == 1:
            labels.append(b"%d" % i)
        elif kind == 2:
            labels.append(rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes())
        elif kind == 3:
            labels.append((b"abc%d-" % i) * int(rng.integers(1, 2000)))
        else:
            labels.append(bytes(int(rng.integers(1, 70000))))
    vecs = rng.standard_normal((n, 8)).astype(np.float32)
    path = tmp_path / "snappy.ldb"
    with open(path, "wb") as f:
        write_index(
            f,
            config=scann_config(distance="l2", centroids=np.zeros((1, 8))),
            database=vecs,
            sizes=[n],
            labels=labels,
            user_info=b"info",
            compress_metadata=True,
        )
    table = read_index(path.read_bytes()).table
    assert sum(b.compression == 1 for b in table.blocks if b.kind == "data") >= 3
    with NativeSearcher(path) as s:
        assert [s.metadata(i) for i in range(n)] == labels
        assert s.user_info == b"info"
        with pytest.raises(NativeError, match="no item 400"):
            s.metadata(n)


_NO_CODES_PROBE = r"""
import ctypes, mmap, sys
lib_path, path, allowed = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
page = mmap.PAGESIZE
m = mmap.mmap(-1, (len(data) + page - 1) // page * page)
m[: len(data)] = data
buf = (ctypes.c_char * len(m)).from_buffer(m)
base = ctypes.addressof(buf)
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
keep = {int(p) for p in allowed.split(",")}
hidden = 0
for p in range(len(m) // page):
    if p not in keep:
        assert libc.mprotect(base + p * page, page, 0) == 0  # PROT_NONE: a touch is a SIGSEGV
        hidden += 1
lib = ctypes.CDLL(lib_path)
h = ctypes.c_void_p()
err = ctypes.create_string_buffer(256)
status = lib.scannlite_open(ctypes.c_void_p(base), ctypes.c_size_t(len(data)), ctypes.byref(h), err, 256)
info = (ctypes.c_uint64 * 5)()  # scannlite_info: 40 bytes; peeking reads no data block either
assert status != 0 or lib.scannlite_peek_info(h, info) == 0
print(status, hidden, err.value.decode())
lib.scannlite_close(h)
"""


def test_opening_touches_no_data_block_but_the_config(tmp_path):
    """Opening reads the footer, the metaindex and index blocks and the config's block only:
    every page of every other data block (codes and metadata) is PROT_NONE here, so a touch
    kills the probe; the leaves are located on first use (docs/native.md, Memory)."""
    rng = np.random.default_rng(3)
    n, leaves, sub = 20000, 8, 8
    books = [rng.standard_normal((256, 2)).astype(np.float32) for _ in range(sub)]
    centroids = rng.standard_normal((leaves, 2 * sub)).astype(np.float32)
    config = scann_config(distance="dot", centroids=centroids, leaves_to_search=2, codebooks=books, lookup_type="INT8")
    path = tmp_path / "large.ldb"
    with open(path, "wb") as f:
        write_index(
            f,
            config=config,
            database=rng.integers(0, 256, (n, sub), dtype=np.uint8),
            sizes=np.full(leaves, n // leaves),
            labels=[b"item %d" % i for i in range(n)],
            user_info=None,
        )
    data = path.read_bytes()
    table = read_index(data).table
    page = mmap.PAGESIZE
    blocks = sorted((b for b in table.blocks if b.kind == "data"), key=lambda b: b.offset)
    assert len(blocks) > leaves + 10 and all(b.size > 4 * page for b in blocks[:leaves])  # one E_<leaf> each

    def pages(lo, hi):
        return set(range(lo // page, (hi - 1) // page + 1))

    keep = pages(blocks[-1].offset + blocks[-1].size + 5, len(data))  # index block, metaindex, footer
    config_block = blocks[leaves]
    keep |= pages(config_block.offset, config_block.offset + config_block.size + 5)  # INDEX_CONFIG
    data_pages = set().union(*(pages(b.offset, b.offset + b.size + 5) for b in blocks))
    hidden_data = len(data_pages - keep)
    # Every page of the data blocks but those the config's block shares is hidden.
    assert hidden_data >= len(data_pages) - len(
        pages(config_block.offset - page, config_block.offset + config_block.size + page)
    )
    out = subprocess.run(
        [sys.executable, "-c", _NO_CODES_PROBE, str(library_path()), str(path), ",".join(map(str, sorted(keep)))],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"opening touched a hidden page (exit {out.returncode}): {out.stderr[-300:]}"
    status, hidden, _ = out.stdout.split(" ", 2)
    assert status == "0" and int(hidden) >= hidden_data, out.stdout
    # The leaves are located on first use: with their pages readable, the same bytes search.
    with NativeSearcher(data) as s:
        assert s.info["size"] == n
        assert len(s.search(rng.standard_normal(2 * sub), 5).ids) == 5
