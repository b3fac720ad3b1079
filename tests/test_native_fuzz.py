"""libscannlite survives hostile files: thousands of truncated and mutated indexes and bundles
through an AddressSanitizer + UndefinedBehaviorSanitizer build, in one driver process.

Bundles come from outside, so every byte is untrusted: each input must be refused with a
one-line error or searched, never crash, read out of bounds, overflow or leak. Mutations are
format-aware and recompute checksums (tests/support/native_fuzz.py), so the parser is exercised
past its CRC tests. Figures (cases, time) are in docs/native-port.md.
"""

from __future__ import annotations

import collections
import os
import re
import time

import pytest

from scannlite.store.bundle.ondevice import sstable
from tests.support import native_fuzz as nf
from tests.support import native_port as np_

pytestmark = pytest.mark.slow

DRIVER = np_.BUILD / "fuzz" / "scannlite-fuzz"
FIXTURE_INDEXES = (
    "regex_index.ldb",
    "mobilebert_index.ldb",
    "universal_sentence_encoder_index.ldb",
    "searcher_index.ldb",
    "dummy_index.ldb",
)
#: Mutations of each kind per input (fewer for tables over 256 KB): sized so that the run stays
#: well under two minutes on a loaded 2-core machine (figures in docs/native-port.md).
PER_KIND = int(os.environ.get("SCANNLITE_FUZZ_PER_KIND", "60"))
#: The suite's seed; another (SCANNLITE_FUZZ_SEED) gives another deterministic campaign.
SEED = int(os.environ.get("SCANNLITE_FUZZ_SEED", "22"))
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86:allocator_may_return_null=0:quarantine_size_mb=64:"
    "detect_stack_use_after_return=1:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
}


@pytest.fixture(scope="module")
def driver():
    np_.require("make", "clang")
    np_.make("fuzz")
    return DRIVER


def _inputs(fixtures_dir, tmp_path):
    """(tables, bundles): Google's indexes, a Snappy-compressed rewrite of two of them, Google's
    bundle, and every index and bundle of the native test vectors."""
    ldbs = [(fixtures_dir / n).read_bytes() for n in FIXTURE_INDEXES]
    for name in ("mobilebert_index.ldb", "searcher_index.ldb"):
        items = [(bytes(k), bytes(v)) for k, v in sstable.read_table((fixtures_dir / name).read_bytes()).items()]
        ldbs.append(nf.table_from_entries(items, cut=2048, compress=True))
    bundles = [(fixtures_dir / "regex_searcher.tflite").read_bytes()]
    seen = set(ldbs + bundles)
    for v in np_.vectors(tmp_path / "vectors"):
        data = v["path"].read_bytes()
        if data in seen:
            continue
        seen.add(data)
        try:
            nf.layout(data)
            ldbs.append(data)
        except Exception:  # noqa: BLE001 - not a bare table: a bundle
            bundles.append(data)
    return ldbs, bundles


@pytest.mark.timeout(600 + 20 * max(PER_KIND - 60, 0))
def test_hostile_inputs_are_refused_or_searched(driver, fixtures_dir, tmp_path):
    ldbs, bundles = _inputs(fixtures_dir, tmp_path)
    manifest = tmp_path / "cases.bin"
    t0 = time.perf_counter()
    m = nf.build_manifest(manifest, ldbs, bundles, seed=SEED, per_kind=PER_KIND)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    crash = tmp_path / "crash.bin"
    r = np_.run(
        [str(driver), str(manifest)],
        timeout=540 + 20 * max(PER_KIND - 60, 0),
        SCANNLITE_FUZZ_CRASH=str(crash),
        **SANITIZER_ENV,
    )
    ran = time.perf_counter() - t0
    out, err = r.stdout.decode(), r.stderr.decode()
    stopped = re.search(r"(?:stopped on|contract broken on) case (\d+)", err)
    where = (
        f"case {stopped.group(1)} ({m.kinds[int(stopped.group(1))]}); input saved to {crash}, reproduce with "
        f"{driver} -f {crash}\n"
        if stopped
        else ""
    )
    assert "Sanitizer" not in err and "runtime error" not in err, where + err[-4000:]
    assert r.returncode == 0, f"driver exit {r.returncode}: {where}{err[-4000:]}"
    manifest.unlink()  # tens of MB; a failing run keeps it (with the saved input) for a rerun
    summary = out.splitlines()[-1]
    match = re.fullmatch(r"cases (\d+) refused (\d+) searched (\d+) slowest_ms ([\d.]+) case (\S+)", summary)
    assert match, summary
    cases, refused, searched = map(int, match.groups()[:3])
    assert cases == len(m.cases) >= 3000, summary
    assert refused + searched == cases
    results = dict(line.split(" ", 1) for line in out.splitlines()[:-1])
    assert len(results) == cases
    outcome = collections.Counter()
    for i, kind in enumerate(m.kinds):
        line = results[str(i)]
        outcome[(kind, line.split()[0])] += 1
        if kind == "ldb-truncated":  # a strict prefix of a table has lost its footer
            assert line.startswith("refused FORMAT "), (i, line)
    # Every unmutated input except Google's unsearchable dummy index (0 leaves, no indexer) opens.
    dummy = ldbs.index((fixtures_dir / "dummy_index.ldb").read_bytes())
    for n, i in enumerate(m.pristine):
        if n != dummy:
            assert results[str(i)].startswith("searched "), (i, results[str(i)])
    # The mutations reach past the checks: inputs mutated behind valid checksums, in the config
    # and in the bundle's flatbuffer and zip, still open (and are then searched).
    for kind in ("ldb-flip-crc-fixed", "ldb-index-config", "ldb-keys", "bundle-flatbuffer", "bundle-zip"):
        assert outcome[(kind, "searched")] > 0, f"no {kind} case got past open: {dict(outcome)}"
    report = " ".join(f"{k}:{o}={v}" for (k, o), v in sorted(outcome.items()))
    print(
        f"\nfuzz: {cases} cases ({refused} refused, {searched} searched) from {len(ldbs)} tables and "
        f"{len(bundles)} bundles; manifest {made:.1f} s, driver {ran:.1f} s; {summary}\n{report}"
    )
    if os.environ.get("SCANNLITE_FUZZ_REPORT"):
        with open(os.environ["SCANNLITE_FUZZ_REPORT"], "w") as f:
            f.write(f"{summary}\nmanifest_s {made:.1f} driver_s {ran:.1f}\n{report}\n")


def test_concurrent_searches_have_no_data_race(tmp_path):
    """scannlite.h: any number of threads may search one opened index at once. Four threads
    start together on a fresh index (its blocks' checksums are checked on first use, so first
    uses race) under ThreadSanitizer, on every vector; their results must be identical."""
    np_.require("make", "clang")
    np_.make("threads")
    args = []
    for v in np_.vectors(tmp_path / "vectors"):
        args += [str(v["path"]), str(v["queries"])]
    r = np_.run(
        [str(np_.BUILD / "fuzz" / "scannlite-threads"), *args],
        timeout=600,
        TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1",
    )
    err = r.stderr.decode()
    assert "ThreadSanitizer" not in err and r.returncode == 0, err[-4000:]
    assert r.stdout.decode().count("threads x") == len(args) // 2
