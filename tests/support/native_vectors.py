"""Test vectors for libscannlite and its ports (JNI, WebAssembly): indexes, bundles and queries.

:func:`make_vectors` writes a spread of on-device indexes with scannlite's own writer
(``store/bundle/ondevice/index_writer.py``): dot and squared L2; FLOAT, INT16 and INT8 lookup (16 and
256 codes, more than one 32-subspace block, subspaces 1 to 5 wide); float (linear) indexes with
leaves small enough for Eigen's coefficient-based product; one leaf and many; gapped ids;
Snappy-compressed metadata blocks; duplicated items and zero queries that make exact ties. Some
are packed as bundles (Google's ``regex_searcher.tflite`` flatbuffer with the index swapped into
its zip). Google's fixtures (``../shared/fixtures/tflite-support``) are added as they are.

Each vector is a dict: ``name``, ``path`` (a .ldb or .tflite), ``queries`` (raw little-endian
float32, ``n * dim`` values), ``dim``, ``k``, ``leaves`` (0: the index's own), ``ldb`` (the
bare index, for the Task Library's probe model), ``labels_are_ids`` (metadata is the decimal
id). Pure Python and numpy: no Task Library needed to make them (docs/native.md).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from scannlite.store.bundle.ondevice.index_writer import scann_config, write_index

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "tflite-support"
GOOGLE_INDEXES = (
    "regex_index.ldb",
    "mobilebert_index.ldb",
    "universal_sentence_encoder_index.ldb",
    "searcher_index.ldb",
)
GOOGLE_BUNDLE = "regex_searcher.tflite"


def _labels(ids: np.ndarray) -> list[bytes]:
    """The decimal id, so a test can tell ids from metadata alone (the Task Library returns
    metadata and distances, not ids)."""
    return [b"%d" % int(i) for i in ids]


def _grouped(assign: np.ndarray, leaves: int) -> tuple[np.ndarray, list[int]]:
    order = np.argsort(assign, kind="stable")
    return order, [int((assign == p).sum()) for p in range(leaves)]


def _codebooks(rng, widths: list[int], codes: int) -> list[np.ndarray]:
    return [rng.standard_normal((codes, w)).astype(np.float32) for w in widths]


def _decode(books: list[np.ndarray], codes: np.ndarray) -> np.ndarray:
    return np.concatenate([books[s][codes[:, s]] for s in range(len(books))], axis=1)


def _centroids(rng, leaves: int, dim: int, twins: bool) -> np.ndarray:
    """Random centroids; with ``twins``, in pairs one ulp apart in a few coordinates (k-means
    leaves such near-duplicates), so that the order of summation decides which one a query visits."""
    cents = rng.standard_normal((leaves, dim)).astype(np.float32)
    if twins:
        for i in range(1, leaves, 2):
            cents[i] = cents[i - 1]
            cols = rng.choice(dim, size=3, replace=False)
            cents[i, cols] = np.nextafter(cents[i, cols], np.float32(np.inf))
    return cents


def _queries(rng, dim: int, n: int, items: np.ndarray | None) -> np.ndarray:
    """Gaussian queries, a zero query (every dot distance ties), and items themselves."""
    q = [rng.standard_normal((n, dim)).astype(np.float32), np.zeros((1, dim), np.float32)]
    if items is not None and len(items):
        q.append(items[rng.choice(len(items), size=min(8, len(items)), replace=False)].astype(np.float32))
    return np.concatenate(q)


def _ah_index(
    path: Path,
    rng,
    *,
    distance: str,
    lookup: str,
    widths: list[int],
    codes: int,
    n: int,
    leaves: int,
    search: int,
    duplicates: bool = False,
    gaps: bool = False,
    compress: bool = False,
    twins: bool = False,
) -> np.ndarray:
    """An asymmetric-hashing index; returns decoded item vectors (for item-equal queries)."""
    dim = sum(widths)
    books = _codebooks(rng, widths, codes)
    cents = _centroids(rng, leaves, dim, twins)
    data = rng.integers(0, codes, size=(n, len(widths)), dtype=np.uint8)
    if duplicates:  # a third of the items repeat others exactly: equal distances
        dup = rng.choice(n, size=n // 3, replace=False)
        data[dup] = data[rng.choice(n, size=len(dup))]
    assign = rng.integers(0, leaves, size=n)
    order, sizes = _grouped(assign, leaves)
    data = data[order]
    offsets = None
    if gaps:
        offsets = list(np.cumsum([0] + [s + 7 for s in sizes[:-1]]))
    ids = np.repeat(
        np.asarray(offsets or np.cumsum([0] + sizes[:-1])) - np.cumsum([0] + sizes[:-1]), sizes
    ) + np.arange(n)
    cfg = scann_config(distance=distance, centroids=cents, leaves_to_search=search, codebooks=books, lookup_type=lookup)
    with open(path, "wb") as f:
        write_index(
            f,
            config=cfg,
            database=data,
            sizes=sizes,
            labels=_labels(ids),
            user_info=b'{"native": "test"}',
            offsets=offsets,
            compress_metadata=compress,
        )
    return _decode(books, data)


def _float_index(
    path: Path,
    rng,
    *,
    distance: str,
    dim: int,
    n: int,
    leaves: int,
    search: int,
    duplicates: bool = False,
    compress: bool = False,
    twins: bool = False,
) -> np.ndarray:
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    if duplicates:
        dup = rng.choice(n, size=n // 3, replace=False)
        vecs[dup] = vecs[rng.choice(n, size=len(dup))]
    cents = _centroids(rng, leaves, dim, twins)
    assign = rng.integers(0, leaves, size=n)
    order, sizes = _grouped(assign, leaves)
    vecs = vecs[order]
    cfg = scann_config(distance=distance, centroids=cents, leaves_to_search=search)
    with open(path, "wb") as f:
        write_index(
            f,
            config=cfg,
            database=vecs,
            sizes=sizes,
            labels=_labels(np.arange(n)),
            user_info=None,
            compress_metadata=compress,
        )
    return vecs


def bundle_of(index: bytes) -> bytes:
    """Google's regex_searcher.tflite with ``index`` as its packed index.ldb (a stored zip entry)."""
    model = (FIXTURES / GOOGLE_BUNDLE).read_bytes()
    with zipfile.ZipFile(io.BytesIO(model)) as zf:
        first = min(info.header_offset for info in zf.infolist())
        files = [(info.filename, zf.read(info)) for info in zf.infolist()]
    out = io.BytesIO()
    out.write(model[:first])
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, index if name == "index.ldb" else data)
    return out.getvalue()


# name: (kind, parameters, k, leaves override or 0, packed as a bundle too)
_SPECS = {
    "ah_dot_float_many": (
        "ah",
        dict(
            distance="dot",
            lookup="FLOAT",
            widths=[2] * 16,
            codes=256,
            n=600,
            leaves=40,
            search=15,
            duplicates=True,
            twins=True,
        ),
        10,
        0,
        True,
    ),
    "ah_l2_float_one": (
        "ah",
        dict(
            distance="l2",
            lookup="FLOAT",
            widths=[1, 2, 3, 4, 5, 2, 1, 6],
            codes=32,
            n=300,
            leaves=1,
            search=1,
            duplicates=True,
        ),
        25,
        0,
        False,
    ),
    "ah_l2_int16_many": (
        "ah",
        dict(
            distance="l2",
            lookup="INT16",
            widths=[2] * 40,
            codes=256,
            n=700,
            leaves=12,
            search=4,
            duplicates=True,
            compress=True,
        ),
        20,
        0,
        True,
    ),
    "ah_dot_int16_one": (
        "ah",
        dict(distance="dot", lookup="INT16", widths=[1] * 24, codes=16, n=250, leaves=1, search=1, duplicates=True),
        10,
        0,
        False,
    ),
    "ah_dot_int8_many": (
        "ah",
        dict(
            distance="dot",
            lookup="INT8",
            widths=[2] * 36,
            codes=256,
            n=800,
            leaves=10,
            search=3,
            duplicates=True,
            gaps=True,
        ),
        30,
        0,
        False,
    ),
    "ah_l2_int8_16codes": (
        "ah",
        dict(distance="l2", lookup="INT8", widths=[1] * 70, codes=16, n=400, leaves=5, search=2, duplicates=True),
        15,
        0,
        False,
    ),
    "ah_l2_int8_one": (
        "ah",
        dict(
            distance="l2",
            lookup="INT8",
            widths=[4] * 8,
            codes=64,
            n=200,
            leaves=1,
            search=1,
            duplicates=True,
            compress=True,
        ),
        40,
        0,
        True,
    ),
    "ah_dot_float_override": (
        "ah",
        dict(distance="dot", lookup="FLOAT", widths=[3] * 8, codes=128, n=500, leaves=20, search=2),
        12,
        7,
        False,
    ),
    # 128+ dimensions: Eigen's GEMV sums leaf scores in blocks of 16 columns (of 4 from 8,000 leaves).
    "ah_dot_int8_wide": (
        "ah",
        dict(distance="dot", lookup="INT8", widths=[2] * 80, codes=256, n=3000, leaves=400, search=100, twins=True),
        10,
        0,
        False,
    ),
    "ah_l2_float_8k_leaves": (
        "ah",
        dict(distance="l2", lookup="FLOAT", widths=[2] * 64, codes=64, n=20000, leaves=8200, search=2000, twins=True),
        10,
        0,
        False,
    ),
    "float_l2_wide": (
        "float",
        dict(distance="l2", dim=130, n=2000, leaves=300, search=100, duplicates=True, twins=True),
        10,
        0,
        False,
    ),
    "float_dot_many": ("float", dict(distance="dot", dim=13, n=120, leaves=30, search=6, duplicates=True), 10, 0, True),
    "float_l2_many": (
        "float",
        dict(distance="l2", dim=8, n=90, leaves=26, search=9, duplicates=True, twins=True),
        8,
        0,
        False,
    ),
    "float_l2_one": (
        "float",
        dict(distance="l2", dim=40, n=150, leaves=1, search=1, duplicates=True, compress=True),
        20,
        0,
        False,
    ),
    "float_dot_one": ("float", dict(distance="dot", dim=16, n=64, leaves=1, search=1, duplicates=True), 100, 0, False),
}


def make_vectors(out_dir) -> list[dict]:
    """Write every test vector under ``out_dir``; return their descriptions (see the module doc)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vectors: list[dict] = []
    for seed, (name, (kind, params, k, leaves, bundled)) in enumerate(sorted(_SPECS.items())):
        rng = np.random.default_rng(1000 + seed)
        ldb = out / f"{name}.ldb"
        items = (_ah_index if kind == "ah" else _float_index)(ldb, rng, **params)
        dim = items.shape[1]
        queries = _queries(rng, dim, 40, items)
        qpath = out / f"{name}.queries.f32"
        qpath.write_bytes(queries.astype("<f4").tobytes())
        base = dict(queries=str(qpath), dim=dim, k=k, leaves=leaves, ldb=str(ldb), labels_are_ids=True)
        vectors.append(dict(name=name, path=str(ldb), **base))
        if bundled:
            bundle = out / f"{name}.tflite"
            bundle.write_bytes(bundle_of(ldb.read_bytes()))
            vectors.append(dict(name=f"{name}.bundle", path=str(bundle), **base))
    for i, fname in enumerate(GOOGLE_INDEXES + (GOOGLE_BUNDLE,)):
        path = FIXTURES / fname
        dim = _google_dim(path)
        rng = np.random.default_rng(2000 + i)
        qpath = out / f"google_{fname}.queries.f32"
        qpath.write_bytes(_queries(rng, dim, 20, None).astype("<f4").tobytes())
        ldb = path
        if fname.endswith(".tflite"):
            with zipfile.ZipFile(path) as zf:
                ldb = out / "google_regex_searcher_index.ldb"
                ldb.write_bytes(zf.read("index.ldb"))
        vectors.append(
            dict(
                name=f"google_{fname}",
                path=str(path),
                queries=str(qpath),
                dim=dim,
                k=5,
                leaves=0,
                ldb=str(ldb),
                labels_are_ids=False,
            )
        )
    return vectors


def _google_dim(path: Path) -> int:
    """The query width of a Google fixture, read with scannlite's Python reader."""
    from scannlite.store.bundle.ondevice.bundle_file import read_bundle
    from scannlite.store.bundle.ondevice.index_file import read_index

    data = path.read_bytes()
    if path.suffix == ".tflite":
        data = read_bundle(data).require_index()
    return int(read_index(data).query_dim)


if __name__ == "__main__":  # python -m tests.support.native_vectors OUT_DIR: write them, print the list as JSON
    import json
    import sys

    if len(sys.argv) != 2:
        sys.exit("error: usage: python -m tests.support.native_vectors OUT_DIR")
    print(json.dumps(make_vectors(sys.argv[1]), indent=1))
