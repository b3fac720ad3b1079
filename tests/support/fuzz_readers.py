"""Truncated and mutated copies of every kind of file scannlite takes from outside, fed to the
reader that takes it (tests/test_fuzz_readers.py).

Run as ``python tests/support/fuzz_readers.py READER SEED CASES WORKDIR``: prints one JSON object,
``{"ok": n, "refused": n, "failures": [...]}``. Each case must be read correctly or refused
with a one-line :class:`ScannliteError` (or, for a SQLite file, a one-line error from the
CLI's last resort); anything else (another exception, a message of several lines, a wrong
result) is a failure. A run in its own process, so a reader that crashes the interpreter
(a segfault in a native decoder) is seen as such rather than taking the test run with it.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import traceback
from pathlib import Path

import numpy as np

# Run as a script: the repository root, so the harness imports tests.support.* as the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scannlite.store.errors import ScannliteError  # noqa: E402
from scannlite.store.oserrors import describe  # noqa: E402


def mutations(data: bytes, rng: np.random.Generator, cases: int):
    """Deterministic damaged copies: truncations (the first third of the cases, from nothing to
    all but one byte, plus the header and footer regions), then byte flips, random spans,
    zeroed spans, deleted and repeated spans."""
    n = len(data)
    for i in range(cases):
        kind = i % 6 if i >= cases // 3 else -1
        b = bytearray(data)
        if kind == -1:
            cut = [0, 1, 4, 8, 12, 16, 64, n // 2, n - 8, n - 1][i] if i < 10 else int(rng.integers(0, n))
            yield f"truncate {cut}", bytes(data[: max(0, min(cut, n - 1))])
            continue
        pos = int(rng.integers(0, n))
        span = int(rng.integers(1, max(2, min(64, n - pos))))
        if kind == 0:
            for _ in range(int(rng.integers(1, 9))):
                p = int(rng.integers(0, n))
                b[p] ^= 1 << int(rng.integers(0, 8))
            yield "flip bits", bytes(b)
        elif kind == 1:
            b[pos : pos + span] = rng.integers(0, 256, span, dtype=np.uint8).tobytes()
            yield f"random {span} bytes at {pos}", bytes(b)
        elif kind == 2:
            b[pos : pos + span] = bytes(span)
            yield f"zero {span} bytes at {pos}", bytes(b)
        elif kind == 3:
            del b[pos : pos + span]
            yield f"delete {span} bytes at {pos}", bytes(b)
        elif kind == 4:
            b[pos:pos] = b[pos : pos + span]
            yield f"repeat {span} bytes at {pos}", bytes(b)
        else:  # a plausible length field made huge: the header region, where lengths live
            p = int(rng.integers(0, min(n, 96)))
            b[p : p + 4] = bytes([0xFF, 0xFF, 0xFF, 0x7F])
            yield f"huge value at {p}", bytes(b)


def one_line(exc: BaseException) -> str | None:
    """The one line a user would see for ``exc``, or None if it would be a traceback."""
    if isinstance(exc, ScannliteError):
        text = str(exc)
    else:
        text = describe(exc)
        if text is None:
            return None
    return text if text and "\n" not in text.strip() else None


# ---- the readers ------------------------------------------------------------------------------


class Reader:
    """``pristine()`` -> the good file's bytes; ``read(path, case)`` reads a damaged copy and
    returns None when what it read is right (raises when it is refused)."""

    suffix = ".bin"

    def __init__(self, work: Path):
        self.work = work


class ParquetInput(Reader):
    suffix = ".parquet"

    def pristine(self) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from scannlite.store.catalog.catalog import Catalog
        from scannlite.store.catalog.segments import embedding_array

        self.cat = Catalog.create(self.work / "cat", 8)
        rng = np.random.default_rng(0)
        self.vectors = rng.standard_normal((300, 8)).astype(np.float32)
        table = pa.table(
            {
                "id": [f"r{i}" for i in range(300)],
                "embedding": embedding_array(self.vectors),
                "metadata": [f"row {i}" for i in range(300)],
            }
        )
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=100)
        return buf.getvalue()

    def read(self, path: Path, case: str):
        from scannlite.store.catalog.readers import iter_rows

        for r in iter_rows(path, batch_rows=128):
            self.cat.make_batch(r.ids, r.vectors, r.metadata, first_row=r.first_row)


class NpyInput(Reader):
    suffix = ".npy"

    def pristine(self) -> bytes:
        from scannlite.store.catalog.catalog import Catalog

        self.cat = Catalog.create(self.work / "cat", 8)
        self.ids = self.work / "ids.jsonl"
        self.ids.write_text("".join(json.dumps({"id": f"r{i}", "metadata": f"row {i}"}) + "\n" for i in range(200)))
        buf = io.BytesIO()
        np.save(buf, np.random.default_rng(1).standard_normal((200, 8)).astype(np.float32))
        return buf.getvalue()

    def read(self, path: Path, case: str):
        from scannlite.store.catalog.readers import iter_rows

        for r in iter_rows(path, ids_path=self.ids, batch_rows=64):
            self.cat.make_batch(r.ids, r.vectors, r.metadata, first_row=r.first_row)


class NpyUpload(Reader):
    """The Datasette plugin's .npy query upload (one vector)."""

    suffix = ".npy"

    def pristine(self) -> bytes:
        buf = io.BytesIO()
        np.save(buf, np.arange(8, dtype=np.float32))
        return buf.getvalue()

    def read(self, path: Path, case: str):
        from scannlite.plugin.integrations.datasette_plugin.queries import BadQuery, parse_npy

        try:
            parse_npy(path.read_bytes(), 8)
        except BadQuery as exc:
            raise _Refused(str(exc)) from None


class _Refused(ScannliteError):
    """A refusal by a reader whose own error type is one line but not a ScannliteError."""


class Segment(Reader):
    """A catalog's own Parquet segment, damaged in place: ``check`` must report it, and
    reading vectors must refuse it (CatalogCorrupt) or return the stored vectors."""

    suffix = ".parquet"

    def pristine(self) -> bytes:
        from scannlite.store.catalog.catalog import Catalog
        from scannlite.store.catalog.maintenance import check

        self.check = check
        self.cat = Catalog.create(self.work / "segcat", 8)
        self.vectors = np.random.default_rng(2).standard_normal((500, 8)).astype(np.float32)
        self.cat.add([f"r{i}" for i in range(500)], self.vectors)
        self.items = np.asarray([r[0] for r in self.cat._conn.execute("SELECT item FROM items ORDER BY item")])
        self.stored = self.cat.vectors_for(self.items)
        self.seg = self.cat.path / self.cat._conn.execute("SELECT path FROM segments").fetchone()[0]
        self.pristine_bytes = self.seg.read_bytes()
        return self.pristine_bytes

    def read(self, path: Path, case: str):
        damaged = path.read_bytes()
        self.seg.write_bytes(damaged)
        rep = self.check(self.cat)
        assert not rep.ok or damaged == self.pristine_bytes, "check passed a damaged segment"
        got = self.cat.vectors_for(self.items)
        if got.shape != self.stored.shape:
            raise AssertionError(f"read {got.shape} vectors, stored {self.stored.shape}")


class CatalogDb(Reader):
    """A catalog's SQLite database, damaged: opened, counted and checked as the CLI does."""

    suffix = ".db"

    def pristine(self) -> bytes:
        from scannlite.store.catalog.catalog import Catalog
        from scannlite.store.index.build import build

        src = self.work / "dbcat"
        with Catalog.create(src, 8) as cat:
            cat.add(
                [f"r{i}" for i in range(400)],
                np.random.default_rng(3).standard_normal((400, 8)),
                [f"row {i}" for i in range(400)],
            )
            build(cat)
            cat._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.src = src
        return (src / "catalog.db").read_bytes()

    def read(self, path: Path, case: str):
        from scannlite.store.catalog.catalog import Catalog
        from scannlite.store.catalog.maintenance import check
        from scannlite.store.index import snapshot

        target = self.work / "damaged"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.src / "segments", target / "segments")
        shutil.copyfile(path, target / "catalog.db")
        with Catalog.open(target) as cat:
            rep = check(cat)
            if rep.ok:
                snapshot.search(cat, np.ones(8), k=3)
        with Catalog.open_readonly(target) as cat:  # Datasette's way in
            cat.count()


class Bundle(Reader):
    """A TFLite Searcher bundle (Google's regex searcher from the fixtures): ``bundle info``."""

    suffix = ".tflite"
    name = "regex_searcher.tflite"

    def pristine(self) -> bytes:
        from tests.support.shared_fixtures import require_fixtures

        return (require_fixtures() / self.name).read_bytes()

    def read(self, path: Path, case: str):
        from scannlite.store.bundle import inspection as bundles

        with bundles.open_bundle(path) as b:
            bundles.static_problems(b)
        bundles.info(path)


class IndexFile(Bundle):
    suffix = ".ldb"
    name = "searcher_index.ldb"


class Patch(Reader):
    """A bundle patch: applied to its base, it gives exactly the result, or is refused."""

    suffix = ".patch"

    def pristine(self) -> bytes:
        from scannlite.store.bundle.delta import make_patch

        rng = np.random.default_rng(4)
        self.base = rng.integers(0, 256, 60_000, dtype=np.uint8).tobytes()
        result = bytearray(self.base)
        result[1000:1400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
        self.result = bytes(result) + b"tail" * 100
        patch, _ = make_patch(
            self.base, self.result, {"file": "x.patch", "base": {"file": "a.tflite"}, "result": {"file": "b.tflite"}}
        )
        (self.work / "a.tflite").write_bytes(self.base)
        return patch

    def read(self, path: Path, case: str):
        from scannlite.store.bundle.delta import apply_file

        out = self.work / "b.tflite"
        out.unlink(missing_ok=True)
        apply_file(self.work / "a.tflite", path, out)
        if out.read_bytes() != self.result:
            raise AssertionError("a damaged patch produced a wrong bundle")


class Image(Reader):
    """Images as every caller decodes them (:func:`scannlite.store.images.load_rgb`): PNG,
    JPEG, GIF, WebP and TIFF, chosen per case."""

    FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF")

    def pristine(self) -> bytes:
        from PIL import Image as PILImage

        rng = np.random.default_rng(5)
        self.originals = {}
        for fmt in self.FORMATS:
            buf = io.BytesIO()
            mode = "RGBA" if fmt in ("PNG", "WEBP") else "RGB"
            PILImage.fromarray(rng.integers(0, 256, (24, 32, 4 if mode == "RGBA" else 3), dtype=np.uint8), mode).save(
                buf, fmt
            )
            self.originals[fmt] = buf.getvalue()
        return self.originals["PNG"]

    def read(self, path: Path, case: str):
        from scannlite.store.images import load_rgb

        arr = load_rgb(path)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise AssertionError(f"decoded to {arr.dtype} {arr.shape}")


READERS = {
    "parquet": ParquetInput,
    "npy": NpyInput,
    "npy-upload": NpyUpload,
    "segment": Segment,
    "catalog-db": CatalogDb,
    "bundle": Bundle,
    "index": IndexFile,
    "patch": Patch,
    "image": Image,
}


def cases_for(name: str, seed: int, count: int, work: Path):
    """(reader, [(case name, damaged file path)]): the files written under ``work``."""
    reader = READERS[name](work)
    rng = np.random.default_rng(seed)
    originals = getattr(reader, "originals", None)
    data = reader.pristine()
    originals = getattr(reader, "originals", None) or {"": data}
    files = []
    per = max(1, count // len(originals))
    for fmt, good in originals.items():
        for i, (what, bad) in enumerate(mutations(good, rng, per)):
            p = work / "cases" / f"{name}-{fmt or 'x'}-{i:04d}{'.' + fmt.lower() if fmt else reader.suffix}"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(bad)
            files.append((f"{fmt} {what}".strip(), p))
    return reader, files


def run(name: str, seed: int, count: int, work: Path) -> dict:
    reader, files = cases_for(name, seed, count, work)
    ok = refused = 0
    failures = []
    for what, path in files:
        try:
            reader.read(path, what)
            ok += 1
        except AssertionError as exc:
            failures.append({"case": what, "file": path.name, "error": f"wrong result: {exc}"})
        except Exception as exc:  # noqa: BLE001 - the point: anything but a one-line refusal is a failure
            if one_line(exc) is not None:
                refused += 1
            else:
                failures.append(
                    {
                        "case": what,
                        "file": path.name,
                        "error": f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:300]}",
                        "where": traceback.format_exc().strip().splitlines()[-3:],
                    }
                )
    return {"reader": name, "cases": len(files), "ok": ok, "refused": refused, "failures": failures}


if __name__ == "__main__":
    name, seed, count, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    work.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(name, seed, count, work)))
