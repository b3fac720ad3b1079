"""The Java binding (dev.scannlite.Searcher over JNI) on the host JVM gives the CLI's results.

Android apps reach libscannlite through this class; it must add nothing and lose nothing: the
same ids, the same float bits, the same metadata bytes and the library's own error messages.
A Java program (libscannlite/java/test) prints results in the CLI's line format and the two
outputs must be byte for byte equal on the native test vectors. See docs/android.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import native_port as np_

pytestmark = pytest.mark.slow

JAVA = np_.BUILD / "java"


@pytest.fixture(scope="module")
def built():
    np_.require("make", "readelf", "javac", "java")
    np_.make("host16k", "java")
    return JAVA


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    return np_.vectors(tmp_path_factory.mktemp("vectors"))


def java(built, *args: str):
    return np_.run(
        [
            "java",
            "-Xss4m",
            f"-Ddev.scannlite.library={built / 'libscannlite_jni.so'}",
            "-cp",
            str(built / "classes"),
            "dev.scannlite.SearchCheck",
            *args,
        ],
        timeout=600,
    )


def cli(*args: str):
    return np_.run([str(np_.BUILD / "host16k" / "scannlite-cli"), *args])


def java_batch(built, runs: list[list[str]]) -> list[bytes]:
    """Many search/filter runs in one JVM (SearchCheck batch): each run's output, in order."""
    r = np_.run(
        [
            "java",
            "-Xss4m",
            f"-Ddev.scannlite.library={built / 'libscannlite_jni.so'}",
            "-cp",
            str(built / "classes"),
            "dev.scannlite.SearchCheck",
            "batch",
        ],
        timeout=900,
        input_lines="".join("\t".join(args) + "\n" for args in runs),
    )
    assert r.returncode == 0, r.stderr.decode()
    outputs = r.stdout.split(b"--- end\n")
    assert outputs[-1] == b"" and len(outputs) == len(runs) + 1, "batch output is not one block per run"
    return outputs[:-1]


def _compare(built, runs: list[list[str]]) -> int:
    lines = 0
    for args, j in zip(runs, java_batch(built, runs)):
        c = cli(*args)
        assert c.returncode == 0 and c.stdout, f"CLI failed on {args}: {c.stderr.decode()}"
        assert j == c.stdout, f"Java results differ from the CLI's on {args}"
        lines += c.stdout.count(b"\n")
    return lines


def test_java_search_equals_the_cli_byte_for_byte(built, vectors):
    runs = [
        ["search", str(v["path"]), str(v["queries"]), str(v["k"]), *leaves]
        for v in vectors
        for leaves in ([str(v.get("leaves", 0))], ["1"], ["4294967295"])
    ]
    assert _compare(built, runs) > 0


def test_java_filtered_search_and_large_k_equal_the_cli(built, vectors, tmp_path):
    runs = []
    for v in vectors:
        allow = np_.allow_file(v, np_.BUILD / "host16k" / "scannlite-cli", tmp_path)
        runs += [
            ["filter", str(v["path"]), str(v["queries"]), str(v["k"]), str(leaves), str(allow)]
            for leaves in (v.get("leaves", 0), 4294967295)
        ]
        # k above the index's size: the binding asks the library for at most size results.
        runs.append(["search", str(v["path"]), str(v["queries"]), "100000", "4294967295"])
    assert _compare(built, runs) > 0


def test_java_l2_normalize_is_the_library_function_bit_for_bit(built, vectors, monkeypatch):
    """Searcher.l2Normalize against the library's scannlite_l2_normalize through ctypes
    (store/searcher/native.py), which the native tests hold to the Task Library's bits."""
    monkeypatch.setenv("SCANNLITE_NATIVE_LIB", str(np_.BUILD / "host16k" / "libscannlite.so"))
    from scannlite.store.searcher import native

    checked = 0
    for v in vectors[:: max(len(vectors) // 6, 1)]:
        j = java(built, "normalize", str(v["queries"]), str(v["dim"]))
        assert j.returncode == 0, j.stderr.decode()
        rows = np.fromfile(v["queries"], dtype="<f4").reshape(-1, v["dim"])
        want = "".join(
            " ".join(f"{b:08x}" for b in native.l2_normalize(row).astype("<f4").view("<u4")) + "\n" for row in rows
        )
        assert j.stdout.decode() == want, f"Java l2Normalize differs from the library's on {v['queries']}"
        checked += len(rows)
    assert checked > 0


def test_java_binding_contract(built, vectors):
    # The first vector of each kind: an index and a bundle when the vectors have both.
    seen = set()
    for v in vectors:
        kind = v["path"].suffix
        if kind in seen:
            continue
        seen.add(kind)
        r = java(built, "checks", str(v["path"]), str(v["queries"]), str(v["k"]))
        assert r.stdout, r.stderr.decode()
        out = r.stdout.decode()
        assert r.returncode == 0 and out.rstrip().endswith("all checks passed"), out + r.stderr.decode()
        assert "FAIL" not in out


def test_java_errors_carry_the_library_message(built, vectors, tmp_path):
    v = vectors[0]
    good = v["path"].read_bytes()
    for name, data in {"junk": b"\x00junk" * 40, "half": good[: len(good) // 2]}.items():
        path = tmp_path / (name + v["path"].suffix)
        path.write_bytes(data)
        c = cli("search", str(path), str(v["queries"]), "5")
        j = java(built, "search", str(path), str(v["queries"]), "5")
        assert c.returncode == j.returncode == 1, (name, c.stderr, j.stderr)
        assert j.stderr == c.stderr and c.stderr.startswith(b"error: "), (name, c.stderr, j.stderr)


def test_jni_library_is_16k_aligned(built):
    for lib in (built / "libscannlite_jni.so", np_.BUILD / "java-aarch64" / "libscannlite_jni.so"):
        if lib.parent.name.endswith("aarch64"):
            np_.require("aarch64-linux-gnu-gcc")
            np_.make("java-aarch64")
            assert np_.machine(lib) == "AArch64"
        aligns = np_.load_aligns(lib)
        assert all(a >= 0x4000 for a in aligns), f"{lib}: LOAD alignments {[hex(a) for a in aligns]}"
