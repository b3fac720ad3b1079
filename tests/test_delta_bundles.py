"""Device updates as deltas (issue 12): export --delta-from, bundle patch, the slotted layout,
the Datasette snapshot page's patch download; with the real index builder and Task Library."""

import asyncio
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scannlite.plugin.device.processes import DeviceProcesses
from scannlite.store.bundle import delta
from scannlite.store.bundle import inspection as bundles
from scannlite.store.bundle.export import export
from scannlite.store.bundle.ondevice import read_bundle, read_index
from scannlite.store.bundle.ondevice.layout import slotted_offsets
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.digests import sha256
from scannlite.store.errors import InvalidInput
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig

pytestmark = [pytest.mark.device, pytest.mark.slow]

DEVICE = DeviceProcesses()
SCANNLITE = [str(Path(sys.executable).with_name("scannlite"))]
REGEX_MODEL = "regex_one_embedding_with_metadata.tflite"


def run(*args, ok=True):
    proc = subprocess.run(SCANNLITE + [str(a) for a in args], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc


def ids_of(bundle: Path) -> dict[bytes, int]:
    """label -> the result id (``M_<id>``) a phone gets for it."""
    index = read_index(read_bundle(bundle.read_bytes()).require_index())
    rows = [j for p in range(len(index.partitions)) for j in index.ids(p)]
    return dict(zip(index.metadata, rows))


@pytest.fixture(scope="module")
def chain(tmp_path_factory, fixtures_dir):
    """Snapshots 1..3 (5,000 items; +1%; +1% and 40 deleted), each exported with a patch from
    the one before through the CLI, then snapshot 4 (retrained) likewise."""
    tmp = tmp_path_factory.mktemp("delta")
    model = fixtures_dir / REGEX_MODEL
    x = clustered(5200, 16, clusters=60, spread=0.8, seed=1)
    cat = Catalog.create(tmp / "c", 16, index=IndexConfig(num_leaves=40, leaves_to_search=4))
    cat.add([f"v{i}" for i in range(5000)], x[:5000], None)
    build(cat)
    out = {"tmp": tmp, "cat": tmp / "c", "model": model, "runs": {}}
    run("export", tmp / "c", "--embedder", model, "--out", tmp / "s1.tflite")
    steps = [(range(5000, 5050), []), (range(5050, 5100), [f"v{i}" for i in range(0, 4000, 100)])]
    for version, (added, deleted) in enumerate(steps, start=2):
        cat.add([f"v{i}" for i in added], x[list(added)], None)
        if deleted:
            cat.delete(deleted)
        assert not build(cat).retrained
        out["runs"][version] = run(
            "export",
            tmp / "c",
            "--embedder",
            model,
            "--out",
            tmp / f"s{version}.tflite",
            "--delta-from",
            tmp / f"s{version - 1}.tflite",
        )
    cat.add([f"v{i}" for i in range(5100, 5200)], x[5100:5200], None)
    assert build(cat, full=True).retrained
    out["runs"][4] = run(
        "export", tmp / "c", "--embedder", model, "--out", tmp / "s4.tflite", "--delta-from", tmp / "s3.tflite"
    )
    cat.close()
    return out


def patch_of(chain, version: int) -> Path:
    manifest = json.loads((chain["tmp"] / f"s{version}.manifest.json").read_text())
    return chain["tmp"] / manifest["patches"][0]["file"]


def with_manifest(patch: bytes, edit) -> bytes:
    """``patch`` with its manifest frame replaced by ``edit(manifest)``, the zstd frame unchanged."""
    manifest, start = delta.read_header(patch)
    raw = json.dumps(edit(json.loads(json.dumps(manifest)))).encode()
    return struct.pack("<II", delta.SKIPPABLE_MAGIC, len(raw)) + raw + patch[start:]


def test_round_trip_is_byte_identical_and_verifies_with_the_task_library(chain):
    tmp = chain["tmp"]
    manifest = json.loads((tmp / "s2.manifest.json").read_text())
    entry = manifest["patches"][0]
    old_sha = sha256((tmp / "s1.tflite").read_bytes())
    assert entry["file"] == f"s2.from-{old_sha[:12]}.patch" and entry["format"] == "zstd-patch-from"
    assert entry["base"]["sha256"] == old_sha and entry["result"]["sha256"] == manifest["sha256"]["file"]
    assert entry["base"]["snapshot"] == 1 and entry["result"]["snapshot"] == 2 and not entry["retrained"]
    assert entry["header"] == "scannlite-patch/2" and entry["base"]["blake3"] == delta.blake3_hex(
        (tmp / "s1.tflite").read_bytes()
    )
    assert entry["result"]["blake3"] == delta.blake3_hex((tmp / "s2.tflite").read_bytes())
    assert delta.read_header(patch_of(chain, 2).read_bytes())[0] == {
        k: v for k, v in entry.items() if k not in ("bytes", "sha256", "share_of_result", "retrained", "warning")
    }
    assert (
        entry["bytes"] == patch_of(chain, 2).stat().st_size
        and "wrote " + str(patch_of(chain, 2)) in chain["runs"][2].stdout
    )
    run("bundle", "patch", tmp / "s1.tflite", patch_of(chain, 2), "-o", tmp / "rt2.tflite")
    assert (tmp / "rt2.tflite").read_bytes() == (tmp / "s2.tflite").read_bytes()
    problems, rep = bundles.verify(tmp / "rt2.tflite", device=DEVICE, catalog=chain["cat"])
    assert problems == [] and rep.queries > 0
    # 50 new items of 16 one-byte codes and a 5-byte id: the patch is a small multiple of that, not of the bundle.
    assert entry["bytes"] < 0.02 * manifest["sizes"]["file"]


def test_incremental_snapshots_keep_every_existing_items_result_id(chain):
    one, two, three = (ids_of(chain["tmp"] / f"s{v}.tflite") for v in (1, 2, 3))
    assert all(two[label] == j for label, j in one.items())
    deleted = {f"v{i}".encode() for i in range(0, 4000, 100)}
    assert deleted.isdisjoint(three) and len(three) == len(two) + 50 - len(deleted)
    moved = sum(three[label] != j for label, j in two.items() if label in three)
    assert moved < len(deleted) * 200  # deletes shift only the rest of their own leaf


def test_a_chain_over_three_snapshots(chain):
    tmp = chain["tmp"]
    run("bundle", "patch", tmp / "s1.tflite", patch_of(chain, 2), "-o", tmp / "chain2.tflite")
    run("bundle", "patch", tmp / "chain2.tflite", patch_of(chain, 3), "-o", tmp / "chain3.tflite")
    assert (tmp / "chain3.tflite").read_bytes() == (tmp / "s3.tflite").read_bytes()
    problems, _ = bundles.verify(tmp / "chain3.tflite", device=DEVICE)
    assert problems == []


def test_wrong_base_is_refused(chain):
    tmp = chain["tmp"]
    out = tmp / "wrong.tflite"
    proc = run("bundle", "patch", tmp / "s2.tflite", patch_of(chain, 2), "-o", out, ok=False)
    assert "s2.tflite is not the base of" in proc.stderr and "snapshot 1" in proc.stderr
    assert not out.exists()
    # Skipping a link of the chain is a wrong base too.
    proc = run("bundle", "patch", tmp / "s1.tflite", patch_of(chain, 3), "-o", out, ok=False)
    assert "is not the base of" in proc.stderr and not out.exists()
    # The same size, one byte changed: only the hash tells.
    base = bytearray((tmp / "s1.tflite").read_bytes())
    base[len(base) // 2] ^= 0xFF
    (tmp / "s1-changed.tflite").write_bytes(base)
    proc = run("bundle", "patch", tmp / "s1-changed.tflite", patch_of(chain, 2), "-o", out, ok=False)
    assert "s1-changed.tflite is not the base of" in proc.stderr and not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "header", "empty"])
def test_a_damaged_patch_is_refused_and_nothing_is_written(chain, damage):
    tmp = chain["tmp"]
    good = patch_of(chain, 2).read_bytes()
    bad = {
        "truncated": good[: len(good) // 2],
        "flipped": good[:-40] + bytes([good[-40] ^ 0xFF]) + good[-39:],
        "header": good[:10] + b"#" + good[11:],
        "empty": b"",
    }[damage]
    (tmp / "bad.patch").write_bytes(bad)
    out = tmp / f"damaged-{damage}.tflite"
    out.write_bytes(b"previous contents")
    before = sorted(p.name for p in tmp.iterdir())
    proc = run("bundle", "patch", tmp / "s1.tflite", tmp / "bad.patch", "-o", out, ok=False)
    assert "bad.patch" in proc.stderr
    assert out.read_bytes() == b"previous contents" and sorted(p.name for p in tmp.iterdir()) == before


def _stale_result_hash(m):
    m["result"]["blake3"] = delta.blake3_hex(b"another bundle")
    return m


def _old_format(m):
    for side in ("base", "result"):
        del m[side]["blake3"]
    return {**m, "header": "scannlite-patch/1"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (_stale_result_hash, "patched bundle's BLAKE3 differs from the patch manifest's"),
        (_old_format, "is a scannlite-patch/1 patch; this scannlite applies scannlite-patch/2 patches only"),
    ],
)
def test_a_patch_whose_manifest_does_not_fit_is_refused_and_nothing_is_written(chain, edit, message):
    tmp = chain["tmp"]
    (tmp / "edited.patch").write_bytes(with_manifest(patch_of(chain, 2).read_bytes(), edit))
    out = tmp / f"edited-{edit.__name__}.tflite"
    before = sorted(p.name for p in tmp.iterdir())
    proc = run("bundle", "patch", tmp / "s1.tflite", tmp / "edited.patch", "-o", out, ok=False)
    assert message in proc.stderr and "edited.patch" in proc.stderr
    assert not out.exists() and sorted(p.name for p in tmp.iterdir()) == before


def test_the_patch_is_a_plain_zstd_patch_from_stream(chain):
    if shutil.which("zstd") is None:
        pytest.skip("the zstd command is not installed")
    tmp = chain["tmp"]
    subprocess.run(
        [
            "zstd",
            "-q",
            "-d",
            "-f",
            f"--patch-from={tmp / 's1.tflite'}",
            str(patch_of(chain, 2)),
            "-o",
            str(tmp / "by-zstd.tflite"),
        ],
        check=True,
        timeout=120,
    )
    assert (tmp / "by-zstd.tflite").read_bytes() == (tmp / "s2.tflite").read_bytes()


def test_a_retrained_snapshot_gets_a_patch_with_a_warning(chain):
    tmp = chain["tmp"]
    entry = json.loads((tmp / "s4.manifest.json").read_text())["patches"][0]
    assert entry["retrained"] and "retrain" in entry["warning"] and "every item" in entry["warning"]
    assert "warning:" in chain["runs"][4].stdout + chain["runs"][4].stderr
    run("bundle", "patch", tmp / "s3.tflite", patch_of(chain, 4), "-o", tmp / "rt4.tflite")
    assert (tmp / "rt4.tflite").read_bytes() == (tmp / "s4.tflite").read_bytes()


def test_delta_from_refuses_bundles_it_cannot_vouch_for(chain, tmp_path):
    tmp, model = chain["tmp"], chain["model"]
    changed = tmp_path / "changed.tflite"
    changed.write_bytes((tmp / "s1.tflite").read_bytes() + b"x")
    shutil.copy(tmp / "s1.manifest.json", tmp_path / "changed.manifest.json")
    lone = tmp_path / "lone.tflite"
    shutil.copy(tmp / "s1.tflite", lone)
    with Catalog.open(chain["cat"]) as cat:
        for base, message in (
            (changed, "changed after export"),
            (lone, "no lone.manifest.json beside it"),
            (tmp_path / "missing.tflite", "no such file"),
        ):
            with pytest.raises(InvalidInput, match=message):
                export(cat, device=DEVICE, out=tmp_path / "new.tflite", embedder=model, delta_from=base)
        with pytest.raises(InvalidInput, match="same kind"):
            export(
                cat,
                device=DEVICE,
                out=tmp_path / "new.ldb",
                embedder=None,
                index_only=True,
                delta_from=tmp / "s3.tflite",
            )
    other = Catalog.create(tmp_path / "other", 16, index=IndexConfig(num_leaves=4, leaves_to_search=1))
    other.add(["a", "b", "c", "d", "e"], np.eye(5, 16, dtype=np.float32), None)
    build(other)
    with pytest.raises(InvalidInput, match="was not exported from catalog"):
        export(other, device=DEVICE, out=tmp_path / "o.tflite", embedder=model, delta_from=tmp / "s3.tflite")
    assert not (tmp_path / "new.tflite").exists() and not (tmp_path / "o.tflite").exists()


def test_datasette_snapshot_page_offers_the_patch_next_to_the_bundle(chain):
    from datasette.app import Datasette

    ds = Datasette([str(chain["cat"] / "catalog.db")])
    name = next(iter(ds.databases.keys() - {"_internal", "_memory"}))

    async def fetch():
        page = await ds.client.get(f"/-/scannlite/{name}/snapshots")
        patch = await ds.client.get(f"/-/scannlite/{name}/bundle/3/patch")
        none = await ds.client.get(f"/-/scannlite/{name}/bundle/1/patch")
        return page, patch, none

    page, patch, none = asyncio.run(fetch())
    assert page.status_code == 200
    row = page.text.split('data-version="3"')[1].split("</tr>")[0]
    assert patch_of(chain, 3).name in row and f"/-/scannlite/{name}/bundle/3/patch" in row and "snapshot 2" in row
    assert patch.status_code == 200 and patch.content == patch_of(chain, 3).read_bytes()
    row4 = page.text.split('data-version="4"')[1].split("</tr>")[0]
    assert "retrain" in row4
    assert none.status_code == 404


def test_slotted_offsets_keep_ranges_until_a_leaf_outgrows_its_own():
    first, moved = slotted_offsets([100, 10, 50])
    assert first == [0, 100 + 25, 100 + 25 + 10 + 16] and moved == 0
    assert slotted_offsets([120, 26, 80], first) == (first, None)  # every leaf still fits
    grown, moved = slotted_offsets([100, 30, 50], first)  # leaf 1 outgrew its 26 ids
    assert moved == 2 and grown[:2] == first[:2] and grown[2] == first[1] + 30 + 16
    assert slotted_offsets([100, 10], first) == ([0, 125], 0)  # another leaf count: laid out afresh
    assert slotted_offsets([5, 5], None, slack=False) == ([0, 5], 0)


def test_apply_patch_tells_a_wrong_base_first_whatever_zstd_makes_of_it():
    """The base is hashed beside the decode: a same-size wrong base is named as such whether
    zstd fails on it or not, and before any fault of the manifest that only a decode would meet."""
    rng = np.random.default_rng(8)
    base = rng.bytes(200_000)
    result = base[:100_000] + rng.bytes(5_000) + base[100_000:150_000]  # never refers to base[150_000:]
    patch, _ = delta.make_patch(base, result, {})
    assert delta.apply_patch(base, patch)[0] == result
    unused = bytearray(base)
    unused[180_000] ^= 0xFF  # zstd decodes the right result from it: only the hash tells
    used = bytearray(base)
    used[10] ^= 0xFF  # zstd's checksum fails on it
    huge_window = with_manifest(patch, lambda m: {**m, "zstd": {**m["zstd"], "window_log": 40}})
    for wrong, p in [(bytes(unused), patch), (bytes(used), patch), (bytes(used), huge_window)]:
        with pytest.raises(InvalidInput, match="OLD is not the base of PATCH"):
            delta.apply_patch(wrong, p, base_name="OLD", patch_name="PATCH")
    with pytest.raises(InvalidInput, match="PATCH has a corrupt patch manifest"):
        delta.apply_patch(base, huge_window, patch_name="PATCH")
    for size in (-1, 2**62):  # sizes zstd itself would fail on with other errors than its own
        edited = with_manifest(patch, lambda m, size=size: {**m, "result": {**m["result"], "bytes": size}})
        with pytest.raises(InvalidInput, match="PATCH has a corrupt patch manifest"):
            delta.apply_patch(base, edited, patch_name="PATCH")
