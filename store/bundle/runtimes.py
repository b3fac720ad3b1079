"""The on-device runtimes a bundle is searched and verified with: the Task Library (tflite-support,
in a device process) and libscannlite (scannlite's own C searcher, in this process).

Both must give the same answers to the bit: libscannlite reproduces the Task Library's results,
tie order included (docs/native.md), so verification compares them exactly, where the
comparison with scannlite's numpy device-equivalent search (:mod:`.parity`) tolerates ties.
Which runtimes are present is decided here, once, so a caller names runtimes rather than calling
either directly (docs/native.md, "Two runtimes").
"""

from __future__ import annotations

from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

TASK_LIBRARY = "task-library"
SCANNLITE = "scannlite"
RUNTIMES = (SCANNLITE, TASK_LIBRARY)

Neighbors = list[tuple[bytes, float]]


def native_missing() -> str | None:
    """Why libscannlite cannot be used here (one line), or None when it can."""
    from scannlite.store.searcher.native import NativeLibraryMissing, version

    try:
        version()
    except NativeLibraryMissing as exc:
        return str(exc)
    return None


def task_library_missing() -> str | None:
    """Why the Task Library cannot be used here (one line), or None when tflite-support is installed
    (it is only ever loaded in a device process)."""
    try:
        importlib_metadata.version("tflite-support")
    except importlib_metadata.PackageNotFoundError:
        return "tflite-support is not installed (the Task Library runs only where it is)"
    return None


def available() -> tuple[str, ...]:
    """The runtimes usable in this environment, libscannlite first."""
    return tuple(
        r for r, missing in ((SCANNLITE, native_missing), (TASK_LIBRARY, task_library_missing)) if missing() is None
    )


def label(runtime: str) -> str:
    """The runtime and its version, as a manifest's ``verified_by`` records it."""
    if runtime == TASK_LIBRARY:
        return f"task-library {importlib_metadata.version('tflite-support')}"
    from scannlite.store.searcher.native import version

    return f"libscannlite {version()}"


def default_query_runtime() -> tuple[str, str | None]:
    """(runtime, note): libscannlite where it is built, else the Task Library with a one-line note."""
    missing = native_missing()
    if missing is None:
        return SCANNLITE, None
    return TASK_LIBRARY, f"using the Task Library: {missing}"


def prepared(vectors: np.ndarray, l2_normalize: bool) -> np.ndarray:
    """Query vectors as the Task Library searches them: float32, and l2-normalised by its own rule,
    bit for bit (libscannlite's ``l2_normalize``), when the bundle says so."""
    from scannlite.store.searcher import l2_normalize as native_l2_normalize

    q = np.ascontiguousarray(vectors, dtype=np.float32)
    if l2_normalize:
        q = np.stack([native_l2_normalize(v) for v in q]) if len(q) else q
    return q


def native_search(index: bytes | str | Path, vectors: np.ndarray, k: int, l2_normalize: bool) -> list[Neighbors]:
    """libscannlite's answers for ``vectors`` (raw embedder outputs) over ``index`` (a bundle or a
    bare index: a path, mapped, or bytes), as the Task Library's: (metadata, distance) nearest first."""
    from scannlite.store.searcher import NativeSearcher

    with NativeSearcher(index) as s:
        out = []
        for q in prepared(vectors, l2_normalize):
            r = s.search(q, k)
            out.append([(m, float(d)) for m, d in zip(r.metadata, r.distances)])
        return out


def _bits(d: float) -> int:
    return int(np.float32(d).view(np.uint32))


def exact_problems(first: list[Neighbors], second: list[Neighbors], names: tuple[str, str], what: str) -> list[str]:
    """Every query whose answers differ at all (metadata, order, distance bits), as one line each."""
    problems = []
    if len(first) != len(second):
        return [f"{what}: {names[0]} answered {len(first)} queries, {names[1]} {len(second)}"]
    for q, (a, b) in enumerate(zip(first, second)):
        if len(a) != len(b):
            problems.append(f"{what} query {q}: {names[0]} returned {len(a)} results, {names[1]} {len(b)}")
            continue
        for i, ((am, ad), (bm, bd)) in enumerate(zip(a, b)):
            if bytes(am) != bytes(bm) or _bits(ad) != _bits(bd):
                problems.append(
                    f"{what} query {q}, rank {i + 1}: {names[0]} returned {bytes(am)[:40]!r} at {ad!r}, "
                    f"{names[1]} {bytes(bm)[:40]!r} at {bd!r}"
                )
                break
    return problems
