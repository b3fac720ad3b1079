"""export: snapshots as TFLite Searcher bundles, verified by the real Task Library."""

import json
import os

import numpy as np
import pytest

from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle import inspection as bundles
from scannlite.store.bundle.embedder_checks import EmbedderRefused
from scannlite.store.bundle.export import export
from scannlite.store.bundle.ondevice.tflite_modules import task_library_installed
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.digests import sha256
from scannlite.store.errors import InvalidInput, UnknownSnapshot
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.workers.boundary import run_in
from tests.support.catalog_helpers import ids_for

pytestmark = [pytest.mark.device, pytest.mark.slow]

DEVICE = DeviceProcesses()

REGEX_MODEL = "regex_one_embedding_with_metadata.tflite"
SENTENCES = [
    "The weather was excellent.",
    "It was a sunny day.",
    "The sun was shining on that day.",
    "The cat is chasing after the mouse.",
    "He was very happy with his newly bought car.",
    "A dog barked at the mailman.",
    "The car would not start this morning.",
    "Rain fell all night long.",
    "She painted the fence red.",
    "The bird sang on the branch.",
    "We ate burgers by the lake.",
    "My cat sleeps on the sofa.",
    "The storm knocked the power out.",
    "A cold wind came from the north.",
    "He fixed the old bicycle.",
    "The children built a sandcastle.",
    "Snow covered the whole town.",
    "The train was late again.",
    "They planted tomatoes in the garden.",
    "The moon was bright and full.",
    "Fresh bread smells wonderful.",
    "The river flooded the fields.",
    "A fox crossed the road at dusk.",
    "The museum opened a new wing.",
    "Clouds gathered over the hills.",
    "The coffee was too hot to drink.",
    "An owl hooted in the dark.",
    "The team won the final match.",
    "Leaves turned gold in autumn.",
    "The baker sold out of pies.",
    "Lightning lit up the sky.",
    "The kitten chased a ball of yarn.",
]


def device(fn, *args, **kwargs):
    return run_in("device", f"scannlite.plugin.device.runtime:{fn}", *args, **kwargs)


@pytest.fixture(scope="module")
def regex_model(fixtures_dir):
    return fixtures_dir / REGEX_MODEL


def test_conformance_with_googles_regex_embedder(tmp_path, regex_model):
    vectors = device("text_embed", regex_model.read_bytes(), SENTENCES)
    cat = Catalog.create(tmp_path / "c", 16)
    cat.add([f"s{i}" for i in range(len(SENTENCES))], vectors, SENTENCES)
    build(cat)
    out = tmp_path / "sentences.tflite"
    r = export(cat, device=DEVICE, out=out, embedder=regex_model)
    assert r.verified and r.manifest["index_type"] == "float" and r.manifest["l2_normalize"] is True
    hits = bundles.query(out, device=DEVICE, texts=SENTENCES[:6], k=3)
    assert [row[0][0] for row in hits] == [f"s{i}".encode() for i in range(6)]
    assert all(abs(row[0][1] + 1.0) < 1e-4 for row in hits)  # unit vectors: distance -1 for itself
    # The manifest tells the truth about the file beside it.
    manifest = json.loads(r.manifest_path.read_text())
    assert manifest["sha256"]["file"] == sha256(out.read_bytes())
    assert manifest["items"] == len(SENTENCES) and manifest["dim"] == 16
    # Every bundle states its recall (the build's estimate) and its measured device latency.
    assert manifest["recall"]["at_leaves_searched"] == 1.0 and manifest["recall"]["ladder"] == [1]  # one float leaf
    latency = manifest["device_latency_ms"]
    if not task_library_installed():  # the latency is the Task Library's search time
        assert latency is None
    else:
        assert latency["searches"] >= 2 * 2 * len(SENTENCES) // 2 and 0 < latency["p50"] <= latency["p95"]


@pytest.mark.parametrize(
    "distance, leaves, dpb, lookup",
    [("dot", 24, 1, "FLOAT"), ("l2", 1, 2, "INT16"), ("dot", 24, 2, "INT8"), ("l2", 24, 1, "FLOAT")],
)
def test_text_bundles_match_server_search(tmp_path, regex_model, distance, leaves, dpb, lookup):
    x = clustered(3000, 16, clusters=60, spread=0.8, seed=leaves + dpb) * (3.0 if distance == "l2" else 1.0)
    cat = Catalog.create(
        tmp_path / "c",
        16,
        distance,
        index=IndexConfig(num_leaves=leaves, leaves_to_search=min(3, leaves), dims_per_block=dpb, lookup_type=lookup),
    )
    cat.add(ids_for("v", len(x)), x, [SENTENCES[i % len(SENTENCES)] for i in range(len(x))])
    build(cat)
    r = export(cat, device=DEVICE, out=tmp_path / "b.tflite", embedder=regex_model)
    assert r.parity["queries"] >= 200  # probe vectors + the real embedder's texts
    assert r.manifest["leaves"] == leaves and r.manifest["lookup_type"] == lookup
    problems, rep = bundles.verify(tmp_path / "b.tflite", device=DEVICE, catalog=cat.path)
    assert problems == [] and rep.queries >= 200
    problems, rep = bundles.verify(tmp_path / "b.tflite", device=DEVICE)  # against the file itself
    assert problems == []


def test_parity_after_incremental_updates_and_index_only(tmp_path, regex_model):
    x = clustered(6000, 16, clusters=80, spread=0.8, seed=5)
    cat = Catalog.create(tmp_path / "c", 16, index=IndexConfig(num_leaves=40, leaves_to_search=4))
    cat.add(ids_for("a", 4000), x[:4000])
    build(cat)
    export(cat, device=DEVICE, out=tmp_path / "v1.tflite", embedder=regex_model)
    cat.add(ids_for("b", 400), x[4000:4400])
    cat.delete(ids_for("a", 200))
    cat.add(ids_for("a", 100, 1000), x[4400:4500])  # changed vectors
    r = build(cat)
    assert not r.retrained
    e = export(cat, device=DEVICE, out=tmp_path / "v2.tflite", embedder=regex_model)
    assert e.manifest["snapshot"] == 2 and e.manifest["items"] == 4200
    only = export(cat, device=DEVICE, out=tmp_path / "v2.ldb", embedder=None, index_only=True)
    assert only.manifest["kind"] == "index" and (tmp_path / "v2.manifest.json").is_file()
    # The bare index is the same one the bundle carries, read as a view of the mapped bundle (a
    # bundle of millions of items is never read whole), which closing drops.
    with bundles.open_bundle(tmp_path / "v2.tflite") as opened:
        assert isinstance(opened.index_bytes, memoryview) and opened.index_bytes == (tmp_path / "v2.ldb").read_bytes()
        assert opened.sha256 == e.manifest["sha256"]["file"]
    assert opened.data is None and opened.index is None
    assert bundles.verify(tmp_path / "v2.ldb", device=DEVICE)[0] == []  # a bare index, searched from its own file
    # The old bundle still verifies against its own snapshot.
    assert bundles.verify(tmp_path / "v1.tflite", device=DEVICE, catalog=cat.path)[0] == []
    info = bundles.info(tmp_path / "v2.tflite")
    assert info["index"]["items"] == 4200 and info["user_info"]["snapshot"] == 2


def test_image_bundles_uint8_and_float_inputs(tmp_path):
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((24, 8 * 8 * 3)).astype(np.float32) / 30
    from tests.support.model_builders import image_model

    uint8_model = image_model(weights, 8, 8, "uint8")
    float_model = run_in(
        "device", "tests.support.model_builders:with_image_metadata", image_model(weights, 8, 8, "float32")
    )
    (tmp_path / "u8.tflite").write_bytes(uint8_model)
    (tmp_path / "f32.tflite").write_bytes(float_model)
    from scannlite.store.images import synthetic_images

    images = synthetic_images(600, 8, 8, seed=11)
    for name, model in (("u8", uint8_model), ("f32", float_model)):
        vectors = device("image_embed", model, images)
        cat = Catalog.create(
            tmp_path / name,
            24,
            "l2" if name == "u8" else "dot",
            index=IndexConfig(num_leaves=8, leaves_to_search=2, dims_per_block=2 if name == "u8" else 1),
        )
        cat.add(ids_for("img", len(images)), vectors)
        build(cat)
        r = export(cat, device=DEVICE, out=tmp_path / f"{name}-bundle.tflite", embedder=tmp_path / f"{name}.tflite")
        assert r.manifest["embedder"]["kind"] == "image" and r.parity["queries"] >= 200
        import PIL.Image

        PIL.Image.fromarray(images[7]).save(tmp_path / "q.png")
        hits = bundles.query(tmp_path / f"{name}-bundle.tflite", device=DEVICE, images=[tmp_path / "q.png"], k=1)
        assert hits[0][0][0] == b"img7"


def test_same_snapshot_exports_byte_identical_files(tmp_path, regex_model):
    x = clustered(1200, 16, seed=2)
    cat = Catalog.create(tmp_path / "c", 16, index=IndexConfig(num_leaves=10))
    cat.add(ids_for("v", 1200), x)
    build(cat)
    out = tmp_path / "b.tflite"
    export(cat, device=DEVICE, out=out, embedder=regex_model)
    first, first_manifest = out.read_bytes(), (tmp_path / "b.manifest.json").read_bytes()
    export(cat, device=DEVICE, out=out, embedder=regex_model)
    assert out.read_bytes() == first
    # The manifest too, but for the measured device latency (a timing, different every run).
    again = json.loads((tmp_path / "b.manifest.json").read_text())
    before = json.loads(first_manifest)
    # The latency is the Task Library's search time: absent where it is not installed.
    assert (again.pop("device_latency_ms") or {}).get("searches") == (before.pop("device_latency_ms") or {}).get(
        "searches"
    )
    assert again == before
    assert cat._conn.execute("SELECT COUNT(*) FROM exports WHERE version = 1").fetchone()[0] == 2


def test_device_metadata_modes_and_limit(tmp_path, regex_model):
    cat = Catalog.create(tmp_path / "c", 16)
    cat.add(["a", "b", "c"], np.eye(3, 16), ["alpha", "x" * 300, "gamma"])
    build(cat)
    r = export(cat, device=DEVICE, out=tmp_path / "m.tflite", embedder=regex_model, device_metadata="metadata")
    assert b"alpha" in bundles.open_bundle(tmp_path / "m.tflite").index.metadata
    with pytest.raises(InvalidInput, match="item 'b': its device metadata is 300 bytes, over the limit of 100"):
        export(
            cat,
            device=DEVICE,
            out=tmp_path / "n.tflite",
            embedder=regex_model,
            device_metadata="metadata",
            device_metadata_limit=100,
        )
    assert not (tmp_path / "n.tflite").exists() and r.verified


def refusal_models(tmp_path, rng):
    from scannlite.plugin.device.probe_model import probe_flatbuffer
    from tests.support.model_builders import image_model, text_model_with_inputs

    w = rng.standard_normal((16, 48)).astype(np.float32)
    models = {
        "not_tflite.tflite": (b"\x00" * 64 + b"definitely not a model", "not a usable TFLite model"),
        "two_inputs.tflite": (text_model_with_inputs(2), "has 2 inputs; TextSearcher expects 1 or 3"),
        "flex.tflite": (text_model_with_inputs(1, dtype="string", flex=True), "needs TensorFlow Flex ops"),
        "no_tokenizer.tflite": (probe_flatbuffer(np.ones((3, 16), np.float32)), "has no RegexTokenizer metadata"),
        "float_image.tflite": (image_model(w, 4, 4, "float32"), "needs NormalizationOptions"),
        "int_output.tflite": (image_model(w, 4, 4, "uint8", output_dtype="int32"), "output dtype int32"),
    }
    for name, (data, _) in models.items():
        (tmp_path / name).write_bytes(data)
    return models


def test_every_refusal_writes_nothing(tmp_path, regex_model, rng):
    cat = Catalog.create(tmp_path / "c", 16)
    cat.add(ids_for("v", 20), rng.standard_normal((20, 16)))
    build(cat)
    for name, (_, message) in refusal_models(tmp_path, rng).items():
        out = tmp_path / f"out-{name}"
        with pytest.raises(EmbedderRefused, match=message):
            export(cat, device=DEVICE, out=out, embedder=tmp_path / name)
        assert not out.exists() and not out.with_suffix(".manifest.json").exists()
    wide = Catalog.create(tmp_path / "wide", 32)
    wide.add(ids_for("v", 20), rng.standard_normal((20, 32)))
    build(wide)
    with pytest.raises(EmbedderRefused, match="outputs 16 values but the index holds 32-d vectors"):
        export(wide, device=DEVICE, out=tmp_path / "w.tflite", embedder=regex_model)
    empty = Catalog.create(tmp_path / "empty", 16)
    build(empty)
    with pytest.raises(InvalidInput, match="snapshot 1 is empty"):
        export(empty, device=DEVICE, out=tmp_path / "e.tflite", embedder=regex_model)
    with pytest.raises(UnknownSnapshot, match="has no snapshot yet"):
        export(Catalog.create(tmp_path / "nosnap", 16), device=DEVICE, out=tmp_path / "x.tflite", embedder=regex_model)
    assert not any(p.name.startswith(("w.", "e.", "x.")) for p in tmp_path.iterdir())


def test_a_failing_verification_publishes_nothing(tmp_path, rng):
    """The Task Library cannot run this embedder (an unknown custom op): verification fails
    in the device process, the error comes back as one line, and no file appears."""
    from scannlite.store.workers.boundary import ProcessFailed, WorkerError
    from tests.support.model_builders import text_model_with_inputs

    model = text_model_with_inputs(1, dtype="string")
    (tmp_path / "custom.tflite").write_bytes(model)
    cat = Catalog.create(tmp_path / "c", 16)
    cat.add(ids_for("v", 20), rng.standard_normal((20, 16)), [f"text {i}" for i in range(20)])
    build(cat)
    out = tmp_path / "custom-bundle.tflite"
    out.write_bytes(b"previous contents")
    with pytest.raises((WorkerError, ProcessFailed)) as err:
        export(cat, device=DEVICE, out=out, embedder=tmp_path / "custom.tflite")
    assert "\n" not in str(err.value)
    assert out.read_bytes() == b"previous contents"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bundle_verify_on_corrupt_bundles(tmp_path, regex_model, rng):
    cat = Catalog.create(tmp_path / "c", 16)
    cat.add(ids_for("v", 300), rng.standard_normal((300, 16)))
    build(cat)
    export(cat, device=DEVICE, out=tmp_path / "good.tflite", embedder=regex_model)
    good = (tmp_path / "good.tflite").read_bytes()
    cases = {
        "garbage.tflite": os.urandom(5000),
        "truncated.tflite": good[: len(good) - 3000],
        "magic.tflite": good[:4] + b"XXXX" + good[8:],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InvalidInput, match="is not a valid"):
            bundles.verify(tmp_path / name, device=DEVICE)
    # An index of the wrong dimension packed into the 16-d model: the Task Library would
    # accept it; verify refuses.
    wide = Catalog.create(tmp_path / "wide", 32)
    wide.add(ids_for("v", 300), rng.standard_normal((300, 32)))
    build(wide)
    export(wide, device=DEVICE, out=tmp_path / "wide.ldb", embedder=None, index_only=True)
    wrong = device("attach_index", regex_model.read_bytes(), (tmp_path / "wide.ldb").read_bytes())
    (tmp_path / "wrongdim.tflite").write_bytes(wrong)
    problems, _ = bundles.verify(tmp_path / "wrongdim.tflite", device=DEVICE)
    assert any("outputs 16 values but the index holds 32-d vectors" in p for p in problems)
    # A bundle changed after export no longer matches its manifest.
    (tmp_path / "good.tflite").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    problems, _ = bundles.verify(tmp_path / "good.tflite", device=DEVICE)
    assert problems


class _Recording(DeviceProcesses):
    """The real device processes, with the size of every message sent to them recorded."""

    def __init__(self):
        self.sent: dict[str, int] = {}

    def _note(self, name: str, kwargs: dict) -> None:
        import pickle

        self.sent[name] = max(self.sent.get(name, 0), len(pickle.dumps(kwargs, protocol=5)))

    def write_bundle(self, **kwargs):
        self._note("write_bundle", kwargs)
        return super().write_bundle(**kwargs)

    def check_bundle(self, **kwargs):
        self._note("check_bundle", kwargs)
        return super().check_bundle(**kwargs)


@pytest.mark.task_library
@pytest.mark.parametrize("index_only", [True, False])
def test_nothing_that_grows_with_the_catalog_crosses_the_process_boundary(tmp_path, regex_model, index_only):
    """The store writes the index; device workers get paths (the embedder's own bytes aside), so
    an export of millions of items sends the same small messages as one of thousands."""
    x = clustered(n=60_000, dim=16, clusters=40, seed=9)
    cat = Catalog.create(tmp_path / "c", 16, index=IndexConfig(num_leaves=60))
    cat.add(ids_for("item-with-a-long-name-", len(x)), x)
    build(cat)
    device = _Recording()
    out = tmp_path / ("x.ldb" if index_only else "x.tflite")
    r = export(cat, device=device, out=out, embedder=None if index_only else regex_model, index_only=index_only)
    index_bytes = r.manifest["sizes"]["index"]
    assert index_bytes > 2_000_000 and r.verified
    model = 0 if index_only else regex_model.stat().st_size
    assert set(device.sent) == ({"check_bundle"} if index_only else {"write_bundle", "check_bundle"})
    for name, size in device.sent.items():
        assert size < model + 100_000, (name, size, index_bytes)


def test_a_bundle_packed_from_the_index_file_equals_one_packed_whole(tmp_path, regex_model, fixtures_dir):
    """write_bundle copies the index into the zip in chunks from its file; the bytes are those
    of attaching it whole (runtime.attach_index), vocabulary and metadata included."""
    index = fixtures_dir / "regex_index.ldb"
    model = regex_model.read_bytes()
    whole = device("attach_index", model, index.read_bytes(), "on_device_scann_index.ldb")
    out = tmp_path / "streamed.tflite"
    run_in(
        "device",
        "scannlite.plugin.device.exporter:write_bundle",
        model=model,
        index=str(index),
        index_name="on_device_scann_index.ldb",
        out=str(out),
    )
    assert out.read_bytes() == whole


def test_query_checks_the_file_it_does_not_parse(tmp_path):
    """bundle query hands the Task Library the file itself, so what it reads only in part (the
    index's USER_INFO) is still held to every block's checksum first, and non-bundles are named."""
    from tests.support.shared_fixtures import tflite_fixture

    index = tflite_fixture("regex_index.ldb").read_bytes()
    damaged = bytearray(index)
    damaged[20] ^= 0xFF
    cases = [
        ("empty.tflite", b"", "empty.tflite is not a valid TFLite model or on-device index: .*the file is empty"),
        ("notes.txt", b"not a model at all" * 4, "notes.txt is not a valid TFLite model or on-device index"),
        ("index.ldb", index, "index.ldb is a bare index; querying needs a bundle"),
        ("damaged.ldb", bytes(damaged), "damaged.ldb is not a valid TFLite model or on-device index: .*checksum"),
    ]
    for name, data, message in cases:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InvalidInput, match=message):
            bundles.query(tmp_path / name, device=DEVICE, texts=["sunny"], k=1)
    hits = bundles.query(tflite_fixture("regex_searcher.tflite"), device=DEVICE, texts=["sunny day"], k=2)
    assert [len(row) for row in hits] == [2]


def test_verify_reads_a_mapped_bundle_a_slice_at_a_time(monkeypatch):
    """With the slice size cut to one byte, every place that drops a mapped bundle's pages does so
    as often as it can, and what it read is still the file: the same codes, the same sha256, and
    the Task Library's parity with them."""
    import hashlib

    from scannlite.store.bundle.ondevice import sstable
    from tests.support.shared_fixtures import tflite_fixture

    path = tflite_fixture("regex_searcher.tflite")
    monkeypatch.setattr(sstable, "RELEASE_EVERY", 1)
    monkeypatch.setattr(bundles, "RELEASE_EVERY", 1)
    with bundles.open_bundle(path) as b:
        assert b.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        parts = [p for p in b.index.partitions if p is not None]
        assert np.array_equal(bundles._gathered(b, parts, b.index), b.index.vectors())
    problems, rep = bundles.verify(path, device=DEVICE)
    assert problems == [] and rep.queries > 0
