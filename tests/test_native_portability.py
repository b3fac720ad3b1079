"""libscannlite is portable as shipped: 16 KB page-aligned, and bit-identical on ARM64.

Android 15+ devices may use 16 KB pages, and Google Play requires native libraries whose LOAD
segments are aligned to 16 KB; float results must not change across CPUs (gcc would contract
a*b+c into an FMA on ARM64 unless told not to). The ARM64 build runs under qemu-user on the
same test vectors as the host build, and the two CLIs' outputs must be byte for byte equal.
See docs/native-port.md.
"""

from __future__ import annotations

import re

import pytest

from tests.support import native_port as np_

pytestmark = pytest.mark.slow

HOST = np_.BUILD / "host16k"
ARM = np_.BUILD / "aarch64"
OUTPUTS = ("libscannlite.so", "scannlite-cli")


@pytest.fixture(scope="module")
def builds():
    np_.require("make", "readelf", "aarch64-linux-gnu-gcc", "qemu-aarch64")
    np_.make("host16k", "aarch64")
    return HOST, ARM


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    return np_.vectors(tmp_path_factory.mktemp("vectors"))


def test_every_load_segment_is_16k_aligned(builds):
    for build in builds:
        for name in OUTPUTS:
            aligns = np_.load_aligns(build / name)
            assert all(a >= 0x4000 for a in aligns), f"{build.name}/{name}: LOAD alignments {[hex(a) for a in aligns]}"


def test_the_cross_build_is_arm64_and_the_host_build_is_not(builds):
    host, arm = builds
    assert np_.machine(arm / "scannlite-cli") == "AArch64"
    assert np_.machine(arm / "libscannlite.so") == "AArch64"
    assert np_.machine(host / "scannlite-cli") != "AArch64"


def test_the_arm64_library_has_no_fused_multiply_add(builds):
    """gcc fuses a*b+c on ARM64 unless -ffp-contract=off; a fused result rounds once, not twice,
    and differs from the Task Library's x86 (SSE, no FMA) bits."""
    np_.require("aarch64-linux-gnu-objdump")
    for name in OUTPUTS:
        asm = np_.run(["aarch64-linux-gnu-objdump", "-d", str(builds[1] / name)]).stdout.decode()
        assert "fadd" in asm or "fmul" in asm, f"no float code found in {name}"
        fused = re.findall(r"\t(fmadd|fmsub|fnmadd|fnmsub|fmla|fmls)\s", asm)
        assert not fused, f"{name} has {len(fused)} fused multiply-add instructions"


def _search(prefix: list[str], v: dict, leaves: int | None = None):
    args = ["search", str(v["path"]), str(v["queries"]), str(v["k"])]
    if leaves is not None:
        args.append(str(leaves))
    return np_.run(prefix + args, timeout=600)


def test_arm64_under_qemu_equals_host_byte_for_byte(builds, vectors):
    host, arm = builds
    compared = 0
    for v in vectors:
        for leaves in (v.get("leaves", 0), 1, 4294967295):
            h = _search([str(host / "scannlite-cli")], v, leaves)
            a = _search(np_.qemu(arm / "scannlite-cli"), v, leaves)
            where = f"{v['path']} leaves={leaves}"
            assert h.returncode == 0, f"host CLI failed on {where}: {h.stderr.decode()}"
            assert h.stdout, f"host CLI printed no results for {where}"
            assert a.returncode == 0, f"ARM64 CLI failed on {where}: {a.stderr.decode()}"
            assert a.stdout == h.stdout, f"ARM64 output differs from the host's on {where}"
            compared += h.stdout.count(b"\n")
        h = np_.run([str(host / "scannlite-cli"), "info", str(v["path"])])
        a = np_.run(np_.qemu(arm / "scannlite-cli") + ["info", str(v["path"])])
        assert h.returncode == a.returncode == 0 and a.stdout == h.stdout, f"info differs on {v['path']}"
    assert compared > 0


def test_arm64_filtered_search_equals_host(builds, vectors, tmp_path):
    host, arm = builds
    for v in vectors:
        allow = np_.allow_file(v, host / "scannlite-cli", tmp_path)
        for leaves in (v.get("leaves", 0), 4294967295):
            args = ["filter", str(v["path"]), str(v["queries"]), str(v["k"]), str(leaves), str(allow)]
            h = np_.run([str(host / "scannlite-cli"), *args])
            a = np_.run(np_.qemu(arm / "scannlite-cli") + args)
            assert h.returncode == 0 and h.stdout, f"host filter failed on {args}: {h.stderr.decode()}"
            assert (a.returncode, a.stdout) == (0, h.stdout), f"ARM64 filtered output differs on {args}"


def test_arm64_refuses_what_the_host_refuses_with_the_same_message(builds, vectors, tmp_path):
    host, arm = builds
    good = vectors[0]["path"].read_bytes()
    bad = {
        "empty": b"",
        "junk": b"not a bundle at all" * 10,
        "half": good[: len(good) // 2],
        "flipped-magic": good[:-1] + bytes([good[-1] ^ 1]),
    }
    for name, data in bad.items():
        path = tmp_path / name
        path.write_bytes(data)
        h = np_.run([str(host / "scannlite-cli"), "info", str(path)])
        a = np_.run(np_.qemu(arm / "scannlite-cli") + ["info", str(path)])
        assert h.returncode == 1 and h.stderr.startswith(b"error: ") and h.stderr.count(b"\n") == 1, (name, h.stderr)
        assert (a.returncode, a.stdout, a.stderr) == (h.returncode, h.stdout, h.stderr), name
