"""Every write command on a full disk: one line naming the path and the cause, a non-zero exit,
the catalog whole (``check`` passes, nothing committed, nothing left behind), and the same
command succeeding once space is back. The real CLI, in subprocesses, on a real tmpfs (as
root) or under RLIMIT_FSIZE (tests/support/disk_faults.py); docs/storage-errors.md."""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from scannlite.store import oserrors
from scannlite.store.atomic import write_atomically
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.oserrors import StorageError
from tests.support.disk_faults import WITHOUT_DAC, SmallFs, cli, files_under, problems, state, vectors_file

DIM = 16
BASE_ROWS = 12_000
ADD_ROWS = 6_000
#: Bytes left free before each command: from nothing to enough for most of them. An add of
#: 6,000 rows writes a 370 kB segment, then about 1 MB of item rows through SQLite's WAL.
ADD_LEVELS = [0, 48 << 10, 200 << 10, 500 << 10, 900 << 10, 6 << 20]
EXPORT_LEVELS = [0, 200 << 10, 700 << 10, 6 << 20]


def build_levels(count: int) -> list[int]:
    """Around the full build's codes floor (16 bytes of code and 4 of row per item): below it
    (refused before training), just above it (the transaction itself fills the disk)."""
    floor = count * (DIM + 4)
    return [0, int(floor * 0.6), int(floor * 1.3), 8 << 20]


CAUSE_WORDS = (
    "no space left on device",
    "not enough space",
    "file too large",
    "disk I/O error",
    "read-only",
    "permission denied",
)


class Arena:
    """The file system the catalog lives on, and how to take its free space away."""

    def __init__(self, fs: SmallFs | None, root: Path):
        self.fs, self.root = fs, root
        self.catalog = root / "cat"
        self.out = root / "out"
        self.fsize: int | None = None  # RLIMIT_FSIZE for the next command (fallback mode)

    @property
    def mode(self) -> str:
        return "tmpfs" if self.fs is not None else "rlimit"

    def squeeze(self, level: int) -> None:
        if self.fs is not None:
            self.fs.leave_free(level)
        else:  # no file may be written past `level` bytes (new files and the WAL start empty)
            self.fsize = level

    def release(self) -> None:
        if self.fs is not None:
            self.fs.release()
        self.fsize = None

    def run(self, *args):
        return cli(*args, fsize=self.fsize)


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    base = tmp_path_factory.mktemp("disk")
    fs = SmallFs(base / "mnt", 96 << 20)
    # SCANNLITE_TEST_RLIMIT=1 runs the fallback even where a tmpfs could be mounted.
    mounted = os.environ.get("SCANNLITE_TEST_RLIMIT") != "1" and fs.mount()
    a = Arena(fs if mounted else None, fs.root)
    try:
        inputs = base / "inputs"
        inputs.mkdir()
        a.inputs = inputs
        assert cli("init", a.catalog, "--dim", DIM).code == 0
        a.out.mkdir()
        assert cli("add", a.catalog, vectors_file(inputs, BASE_ROWS, DIM, 0)).code == 0
        assert cli("build", a.catalog).code == 0
        yield a
    finally:
        fs.unmount()


def assert_one_line_error(r, *, what: str) -> str:
    assert r.code != 0, f"{what} succeeded with no space"
    assert "Traceback" not in r.err, f"{what}: a traceback instead of one line:\n{r.err}"
    assert len(r.err_lines) == 1, f"{what}: {len(r.err_lines)} lines on stderr:\n{r.err}"
    line = r.err_lines[0]
    assert line.startswith("error: "), line
    assert any(w in line for w in CAUSE_WORDS), f"{what}: the cause is not named: {line}"
    return line


def attempt(arena: Arena, args: list, level: int, what: str, log: list) -> None:
    """One write at one free-space level: all or nothing, and the same command after space returns."""
    before, files_before = state(arena.catalog), files_under(arena.root)
    arena.squeeze(level)
    try:
        r = arena.run(*args)
        if r.code != 0:
            line = assert_one_line_error(r, what=f"{what} with {level:,} bytes free")
            log.append((what, level, line))
            # Checked while the disk is still full: it passes, or (when SQLite cannot even make
            # its WAL index) says so in one line; and it passes once space is back (below).
            c = arena.run("check", arena.catalog)
            if c.code != 0:
                assert " while opening " in assert_one_line_error(c, what="check on a full disk")
            else:
                assert c.out.startswith("ok:"), c.out
            assert files_under(arena.root) == files_before, (
                f"{what} left files behind: {sorted(files_under(arena.root) ^ files_before)}"
            )
    finally:
        arena.release()
    assert problems(arena.catalog) == []
    if r.code != 0:
        assert state(arena.catalog) == before, f"{what} committed something while failing: {line}"
        c = arena.run("check", arena.catalog)
        assert c.code == 0 and c.out.startswith("ok:"), f"check after {what} failed:\n{c.out}{c.err}"
        r = arena.run(*args)
        assert r.code == 0, f"{what} failed again once space was back:\n{r.err}"
    else:
        log.append((what, level, "succeeded"))
    assert problems(arena.catalog) == []


def test_each_write_fails_whole_at_one_level(arena):
    """The quick version of the matrices below: add, build --full and export, each once with
    the disk filled to the point where its main write cannot finish."""
    log: list = []
    attempt(arena, ["add", arena.catalog, vectors_file(arena.inputs, ADD_ROWS, DIM, 50)], 500 << 10, "add", log)
    attempt(arena, ["build", arena.catalog, "--full"], 200 << 10, "build --full", log)
    attempt(
        arena,
        ["export", arena.catalog, "--index-only", "--no-verify", "--out", arena.out / "quick.ldb"],
        100 << 10,
        "export --index-only",
        log,
    )
    assert [x[2] for x in log if x[2] == "succeeded"] == [], log


@pytest.mark.slow
def test_add_at_every_free_space_level(arena):
    log: list = []
    for i, level in enumerate(ADD_LEVELS):
        before = state(arena.catalog)["count"]
        attempt(arena, ["add", arena.catalog, vectors_file(arena.inputs, ADD_ROWS, DIM, 100 + i)], level, "add", log)
        assert state(arena.catalog)["count"] == before + ADD_ROWS
    print(*log, sep="\n")
    failed = [x for x in log if x[2] != "succeeded"]
    assert len(failed) >= 3, log  # the levels must actually hit the disk's limit


@pytest.mark.slow
def test_build_full_at_every_free_space_level(arena):
    log: list = []
    for level in build_levels(state(arena.catalog)["count"]):
        before = state(arena.catalog)["snapshots"]
        attempt(arena, ["build", arena.catalog, "--full"], level, "build --full", log)
        assert state(arena.catalog)["snapshots"] == before + 1
    print(*log, sep="\n")
    assert len([x for x in log if x[2] != "succeeded"]) >= 2, log


@pytest.mark.slow
def test_export_index_only_at_every_free_space_level(arena):
    log: list = []
    for i, level in enumerate(EXPORT_LEVELS):
        out = arena.out / f"index-{i}.ldb"
        attempt(
            arena,
            ["export", arena.catalog, "--index-only", "--no-verify", "--out", out],
            level,
            "export --index-only",
            log,
        )
        assert out.is_file() and out.with_suffix(".manifest.json").is_file()
        info = cli("bundle", "info", out, "--json")
        assert info.code == 0, info.err
    print(*log, sep="\n")
    assert len([x for x in log if x[2] != "succeeded"]) >= 2, log


@pytest.mark.slow
def test_the_other_write_commands_on_a_full_disk(arena):
    """init, delete, compact, gc, export-parquet, bundle patch, configure: at 0 bytes free and at
    160 kB (SQLite opens; the writes do not fit), each refuses in one line, keeps everything whole, then works."""
    log: list = []
    out = arena.out
    for n, level in enumerate((0, 160 << 10)):
        attempt(arena, ["init", arena.root / f"new-{level}", "--dim", DIM], level, "init", log)
        ids = [f"s0-{i}" for i in range(2000 * n, 2000 * n + 1200)]
        ids_file = arena.inputs / f"delete-{level}.txt"
        ids_file.write_text("\n".join(ids))
        attempt(arena, ["delete", arena.catalog, "--ids-from", ids_file], level, "delete", log)
        attempt(arena, ["compact", arena.catalog], level, "compact", log)
        attempt(arena, ["gc", arena.catalog], level, "gc", log)
        attempt(arena, ["export-parquet", arena.catalog, out / f"snap-{level}.parquet"], level, "export-parquet", log)
        attempt(arena, ["configure", arena.catalog, "--thumbnails-root", arena.inputs], level, "configure", log)
    # bundle patch: two exports of the same catalog, the second with a patch from the first
    assert arena.run("export", arena.catalog, "--index-only", "--no-verify", "--out", out / "p1.ldb").code == 0
    arena.run("add", arena.catalog, vectors_file(arena.inputs, 300, DIM, 77))
    assert arena.run("build", arena.catalog).code == 0
    r = arena.run(
        "export", arena.catalog, "--index-only", "--no-verify", "--out", out / "p2.ldb", "--delta-from", out / "p1.ldb"
    )
    assert r.code == 0, r.err
    patch = next(out.glob("p2.from-*.patch"))
    for level in (0, 160 << 10):
        attempt(
            arena,
            ["bundle", "patch", out / "p1.ldb", patch, "-o", out / f"patched-{level}.ldb"],
            level,
            "bundle patch",
            log,
        )
        assert (out / f"patched-{level}.ldb").read_bytes() == (out / "p2.ldb").read_bytes()
    print(*log, sep="\n")
    assert len([x for x in log if x[2] != "succeeded"]) >= 8, log


@pytest.mark.slow
@pytest.mark.device
def test_export_of_a_bundle_written_by_the_device_process(arena, fixtures_dir):
    """The bundle is packed by the Task Library's side in a device process: its ENOSPC comes
    back as that process's error and still becomes the one line naming the bundle."""
    model = fixtures_dir / "regex_one_embedding_with_metadata.tflite"
    args = ["export", arena.catalog, "--embedder", model, "--no-verify", "--out"]
    log: list = []
    attempt(arena, [*args, arena.out / "b0.tflite"], 64 << 10, "export", log)
    floor = int(re.search(r"needs at least ([\d,]+) bytes", log[0][2]).group(1).replace(",", ""))
    for i, extra in enumerate((48 << 10, 120 << 10), 1):
        attempt(arena, [*args, arena.out / f"b{i}.tflite"], floor + extra, "export", log)
    print(*log, sep="\n")
    assert any("no space left on device while writing" in x[2] and ".tflite" in x[2] for x in log), log


@pytest.mark.slow
def test_export_over_an_existing_bundle_keeps_it_whole(arena):
    """Re-exporting to the same path with no space: the old file is untouched."""
    out = arena.out / "same.ldb"
    assert arena.run("export", arena.catalog, "--index-only", "--no-verify", "--out", out).code == 0
    old = out.read_bytes()
    attempt(arena, ["export", arena.catalog, "--index-only", "--no-verify", "--out", out], 0, "re-export", [])
    assert out.is_file() and len(old) > 0


@pytest.mark.slow
def test_read_only_file_system_is_one_line(arena):
    if arena.fs is None:
        pytest.skip("needs a tmpfs to remount read-only (root)")
    before, files_before = state(arena.catalog), files_under(arena.root)
    arena.fs.remount(readonly=True)
    try:
        for args in (
            ["add", arena.catalog, vectors_file(arena.inputs, 50, DIM, 999)],
            ["build", arena.catalog, "--full"],
            ["delete", arena.catalog, "s0-1"],
            ["export", arena.catalog, "--index-only", "--no-verify", "--out", arena.out / "ro.ldb"],
        ):
            r = cli(*args)
            line = assert_one_line_error(r, what=f"{args[0]} on a read-only file system")
            assert "read-only" in line, line
    finally:
        arena.fs.remount(readonly=False)
    assert state(arena.catalog) == before and files_under(arena.root) == files_before
    assert problems(arena.catalog) == []


@pytest.mark.slow
def test_permission_denied_is_one_line(tmp_path):
    """A catalog owned by another user, written by root without its permission-bypassing
    capabilities: every write is refused as "permission denied", and the catalog is whole."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    cat = tmp_path / "theirs"
    assert cli("init", cat, "--dim", DIM).code == 0
    assert cli("add", cat, vectors_file(tmp_path, 500, DIM, 1)).code == 0
    assert cli("build", cat).code == 0
    before = state(cat)
    out = tmp_path / "out"
    out.mkdir()
    for p in [cat, *cat.rglob("*"), out]:
        os.chown(p, 65534, 65534)  # nobody
        p.chmod(0o755 if p.is_dir() else 0o644)
    for args in (
        ["add", cat, vectors_file(tmp_path, 50, DIM, 2)],
        ["build", cat, "--full"],
        ["delete", cat, "s1-1"],
        ["export", cat, "--index-only", "--no-verify", "--out", out / "x.ldb"],
        ["gc", cat],
    ):
        r = cli(*args, prefix=WITHOUT_DAC)
        line = assert_one_line_error(r, what=f"{args[0]} without permission")
        assert "permission denied" in line and (str(cat) in line or str(out) in line), line
    assert state(cat) == before and problems(cat) == []
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_file_size_limit_is_one_line(arena, tmp_path):
    """The RLIMIT_FSIZE route, on any machine: EFBIG from a segment, then from SQLite."""
    before = state(arena.catalog)
    lines = []
    for fsize in (0, 200 << 10, 700 << 10):
        r = cli("add", arena.catalog, vectors_file(tmp_path, ADD_ROWS, DIM, 5000 + fsize), fsize=fsize)
        lines.append(assert_one_line_error(r, what=f"add under RLIMIT_FSIZE {fsize}"))
        assert state(arena.catalog) == before
        assert problems(arena.catalog) == []
    print(*lines, sep="\n")
    assert any("file too large" in ln and "segment" in ln for ln in lines), lines


# ---- in-process: the translation itself -----------------------------------------------------


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "no space left on device"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EFBIG, "file too large"),
    ],
)
def test_errno_becomes_words_with_the_path(code, words):
    err = oserrors.translate(
        OSError(code, os.strerror(code), "/x/seg.parquet"), "segments/a.parquet", "writing segment"
    )
    assert isinstance(err, StorageError) and err.errno == code and not err.committed
    assert str(err).startswith(f"{words}") and "segments/a.parquet" in str(err) and "nothing was committed" in str(err)
    # pyarrow quotes the C library's words without an errno of its own
    assert oserrors.storage_errno(OSError(f"Error writing bytes to file. Detail: [errno {code}] x")) == code


def test_a_transaction_sqlite_already_rolled_back_keeps_its_error(tmp_path):
    """SQLite rolls back by itself after SQLITE_FULL; the helper must not replace the error with
    'cannot rollback - no transaction is active'. Here the body ends the transaction itself."""
    cat = Catalog.create(tmp_path / "c", 4)
    with pytest.raises(ValueError, match="the real cause"):
        with cat.transaction():
            cat._conn.execute("ROLLBACK")
            raise ValueError("the real cause")
    assert not cat._conn.in_transaction
    with cat.transaction():  # still usable
        cat.new_commit("test", {})


def test_sqlite_full_becomes_a_storage_error(tmp_path):
    """A real SQLITE_FULL (max_page_count reached) inside the transaction: one StorageError
    naming catalog.db, and the catalog as it was."""
    cat = Catalog.create(tmp_path / "c", 4)
    head = cat.head_seq
    pages = cat._conn.execute("PRAGMA page_count").fetchone()[0]
    cat._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StorageError, match=r"^no space left on device while committing to .*catalog\.db; nothing"):
        cat.add([f"x{i}" for i in range(3000)], np.ones((3000, 4)), [("m" * 200)] * 3000)
    assert not cat._conn.in_transaction and cat.head_seq == head
    assert list((tmp_path / "c" / "segments").iterdir()) == []  # the segment written first is gone


def test_not_enough_space_refuses_before_writing(tmp_path):
    with pytest.raises(StorageError, match=r"needs at least [\d,]+ bytes and [\d,]+ are free"):
        oserrors.require_free(tmp_path, 1 << 62, "a test")
    oserrors.require_free(tmp_path, 1, "a test")


def test_atomic_write_failure_names_the_target(tmp_path):
    target = tmp_path / "ro" / "file.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    with pytest.raises(
        StorageError, match=r"file too large .*file\.bin; nothing was written \(file\.bin is as it was\)"
    ):
        import resource
        import signal

        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
        try:
            write_atomically(target, b"x" * 5000)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, old_handler)
    assert target.read_bytes() == b"old" and sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_cli_last_resort_names_path_and_cause():
    from scannlite.store.oserrors import describe

    assert (
        describe(OSError(errno.ENOSPC, "No space left on device", "/d/x"))
        == "no space left on device while writing /d/x; nothing was committed"
    )
    assert describe(sqlite3.OperationalError("database or disk is full")).startswith("no space left on device")
    assert (
        describe(OSError(errno.ENOENT, "No such file or directory", "/d/y"))
        == "cannot use /d/y: No such file or directory"
    )
    assert describe(OSError("a bug with no file")) is None


def test_a_compaction_that_cannot_commit_leaves_no_segment(tmp_path):
    """Its new segment is written first; when SQLite then finds the disk full (here: the
    database's page limit, a real SQLITE_FULL), the segment goes again."""
    from scannlite.store.catalog import maintenance

    cat = Catalog.create(tmp_path / "c", 4)
    for k in range(3):
        cat.add([f"{k}-{i}" for i in range(200)], np.random.default_rng(k).standard_normal((200, 4)))
    cat.delete([f"0-{i}" for i in range(100)])
    before = sorted(p.name for p in (tmp_path / "c" / "segments").iterdir())
    cat._conn.execute(f"PRAGMA max_page_count = {cat._conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(StorageError, match="^no space left on device while committing to"):
        maintenance.compact(cat)
    assert sorted(p.name for p in (tmp_path / "c" / "segments").iterdir()) == before
    rep = maintenance.check(cat)
    assert rep.ok and not rep.warnings


def test_a_failed_init_leaves_nothing(tmp_path):
    """Under a file-size limit of 0 the database cannot be written: no folder stays behind."""
    r = cli("init", tmp_path / "new", "--dim", 4, fsize=0)
    assert_one_line_error(r, what="init under RLIMIT_FSIZE 0")
    assert not (tmp_path / "new").exists()
    assert cli("init", tmp_path / "new", "--dim", 4).code == 0


def test_an_export_the_catalog_cannot_record_says_what_was_written(tmp_path):
    """The one write that is not all or nothing: the bundle is published, then its record in
    catalog.db is refused (here: the connection made read-only, as a full disk would refuse)."""
    from scannlite.store.bundle.export import export
    from scannlite.store.index.build import build

    cat = Catalog.create(tmp_path / "c", 8)
    cat.add([f"v{i}" for i in range(200)], np.random.default_rng(0).standard_normal((200, 8)))
    build(cat)
    cat._conn.execute("PRAGMA query_only = 1")
    with pytest.raises(
        StorageError,
        match=r"while recording the export in .*catalog\.db; x\.ldb and its manifest "
        r"were written whole, but the catalog does not list the export",
    ):
        export(cat, device=None, out=tmp_path / "x.ldb", embedder=None, index_only=True, verify_bundle=False)
    assert (tmp_path / "x.ldb").is_file() and (tmp_path / "x.manifest.json").is_file()
    assert cat.exports() == []


def test_a_read_transaction_sqlite_already_ended_keeps_its_error(tmp_path):
    """As for writes: after an I/O error SQLite may end the read transaction itself; the error
    that did it is the one reported, not 'cannot commit - no transaction is active'."""
    cat = Catalog.create(tmp_path / "c", 4)
    with pytest.raises(ValueError, match="the real cause"):
        with cat.reading():
            cat._conn.execute("COMMIT")
            raise ValueError("the real cause")
    with cat.reading():
        assert cat.count() == 0


def test_a_native_io_error_is_named_by_the_file_system(tmp_path):
    err = oserrors.native_io_error(
        RuntimeError("Failed to extract SingleMachineFactoryOptions: I/O error"),
        tmp_path,
        "writing ScaNN's trained files to",
    )
    assert isinstance(err, StorageError) and str(err).endswith(
        f"while writing ScaNN's trained files to {tmp_path}; nothing was committed"
    )
    assert oserrors.native_io_error(RuntimeError("bad argument"), tmp_path, "x") is None


def test_a_large_read_that_cannot_spill_names_the_catalog(tmp_path):
    """A sort too large for SQLite's cache spills to a temporary file; under a file-size limit
    (or a full /var/tmp) that write fails, and the read says so in one line."""
    import resource
    import signal

    cat = Catalog.create(tmp_path / "c", 4)
    cat.add(
        [f"v{i}" for i in range(60_000)], np.random.default_rng(0).standard_normal((60_000, 4)), ["x" * 40] * 60_000
    )
    cat._conn.execute("PRAGMA cache_size = 10")
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100 << 10, hard))
    try:
        with pytest.raises(StorageError, match=r"^file too large .* while reading .*catalog\.db; nothing was changed"):
            with cat.reading():
                cat._conn.execute("SELECT id FROM items ORDER BY metadata || id DESC").fetchall()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert not cat._conn.in_transaction and cat.count() == 60_000
