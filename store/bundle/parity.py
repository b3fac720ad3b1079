"""Parity: do the on-device runtimes answer what scannlite's device-equivalent search says, and
exactly what each other says?

:func:`verify` is the verification routine, used by ``export`` (before publishing) and
``bundle verify``, with one rule for choosing probes, run through each runtime of
:mod:`.runtimes` present (the Task Library in a device process, libscannlite here). Each
runtime's results are compared with the numpy device-equivalent search as lists of device
metadata (``M_j``) with distances: the same entries in the same order, except that entries
whose distances tie within ``TIE`` may swap (the device's top-N keeps an arbitrary one of tied
entries), and distances within ``DIST_TOL``. The runtimes are compared with each other exactly
(metadata, order, distance bits), since libscannlite reproduces the Task Library's tie order
(docs/native.md, "Two runtimes").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scannlite.store.bundle import runtimes as rt
from scannlite.store.bundle.device_side import DeviceSide
from scannlite.store.bundle.ondevice.tflite_modules import embedder_runtime, task_library_installed
from scannlite.store.errors import InvalidInput, ScannliteError
from scannlite.store.index import device_search
from scannlite.store.progress import SILENT, Progress

TIE = 1e-5
DIST_TOL = 1e-4
PROBE_VECTORS = 100  # stored vectors searched (plus as many perturbed copies)
PROBE_INPUTS = 24  # texts or images run through the real embedder
VERIFY_K = 10

Neighbors = list[tuple[bytes, float]]


@dataclass
class ParityReport:
    queries: int = 0
    exact_order: int = 0
    problems: list[str] = field(default_factory=list)
    latency_ms: dict | None = None  # Task Library search time: p50, p95, searches
    verified_by: list[str] = field(default_factory=list)  # runtime labels, e.g. "libscannlite 0.1.0"
    identical: int = 0  # queries both runtimes answered, and answered identically
    notes: list[str] = field(default_factory=list)  # one line each: a runtime that was not used, and why

    def merge(self, other: ParityReport) -> None:
        self.queries += other.queries
        self.exact_order += other.exact_order
        self.problems += other.problems

    def summary(self) -> str:
        return summary_line(self.verified_by, self.queries, self.identical, self.notes)

    def to_json(self) -> dict:
        """What a manifest records of the verification (``verified_by`` beside it)."""
        return {
            "queries": self.queries,
            "exact_order": self.exact_order,
            "identical": self.identical,
            "notes": self.notes,
        }


def summary_line(verified_by: list[str], queries: int, identical: int = 0, notes: Sequence[str] = ()) -> str:
    """One line: which runtimes verified, on how many queries, and whether they agreed."""
    if not verified_by:
        return "not verified"
    line = f"verified by {' and '.join(verified_by)}: {queries} queries matched scannlite's search"
    if len(verified_by) > 1:
        line += f", the runtimes' answers identical on {identical}"
    return line + "".join(f"; {n}" for n in notes)


def compare(device: list[Neighbors], server: list[Neighbors], label: str) -> ParityReport:
    rep = ParityReport(queries=len(server))
    for q, (dev, srv) in enumerate(zip(device, server)):
        where = f"{label} query {q}"
        if len(dev) != len(srv):
            rep.problems.append(f"{where}: the device returned {len(dev)} results, scannlite {len(srv)}")
            continue
        if [m for m, _ in dev] == [m for m, _ in srv]:
            rep.exact_order += 1
        srv_pos = {m: i for i, (m, _) in enumerate(srv)}
        last = srv[-1][1] if srv else 0.0
        for i, ((dm, dd), (sm, sd)) in enumerate(zip(dev, srv)):
            if abs(dd - sd) > DIST_TOL:
                rep.problems.append(f"{where}, rank {i + 1}: device distance {dd:.7g}, scannlite {sd:.7g}")
                break
            if dm == sm:
                continue
            j = srv_pos.get(dm)
            tied = (j is not None and abs(srv[j][1] - sd) <= TIE) or (j is None and abs(sd - last) <= TIE)
            if not tied:
                rep.problems.append(
                    f"{where}, rank {i + 1}: device returned {dm[:40]!r} at {dd:.7g}, scannlite {sm[:40]!r} at {sd:.7g}"
                )
                break
    return rep


def server_neighbors(
    index: device_search.DeviceIndex, labels: list[bytes], queries: np.ndarray, k: int, leaves: int
) -> list[Neighbors]:
    pos, dist = device_search.search(index, queries, k, leaves)
    return [[(labels[j], float(d)) for j, d in zip(p, dr) if j >= 0] for p, dr in zip(pos, dist)]


def probe_vectors(own: np.ndarray, seed: int) -> np.ndarray:
    """Stored vectors plus as many perturbed copies (deterministic)."""
    rng = np.random.default_rng(seed)
    own = np.asarray(own, dtype=np.float32)
    if not len(own):
        return own
    norms = np.linalg.norm(own, axis=1, keepdims=True)
    scale = np.where(norms > 0, norms, 1.0) * 0.1 / np.sqrt(max(own.shape[1], 1))
    noisy = (own + rng.standard_normal(own.shape) * scale).astype(np.float32)
    return np.concatenate([own, noisy])


def evenly(values: list, count: int) -> list:
    """Up to ``count`` entries spread evenly over ``values`` (the rule for probe inputs)."""
    return values[:: max(1, len(values) // count)][:count] if values else []


def probe_inputs(kind: str | None, input_shape: list[int] | None, candidates: list[str], probe: Path | None):
    """(texts, images) to run through a bundle's own embedder: the probe file's lines or the
    probe folder's images when given; else the text of evenly spread items (``candidates``)
    for a text embedder, and synthetic images at the model's input size for an image one."""
    if kind is None:
        return None, None
    if kind == "text":
        if probe is not None:
            if not Path(probe).is_file():
                raise InvalidInput(f"cannot read probe file {probe}")
            texts = [ln.strip() for ln in Path(probe).read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not texts:
                raise InvalidInput(f"probe file {probe} holds no text")
            return texts[: PROBE_INPUTS * 2], None
        texts = [t[:2000] for t in evenly([c for c in candidates if c.strip()], PROBE_INPUTS)]
        return texts or ["probe"], None
    from scannlite.store.images import load_probe_images, synthetic_images

    if probe is not None:
        return None, load_probe_images(Path(probe), PROBE_INPUTS)
    if input_shape is None or len(input_shape) < 3:
        raise InvalidInput(f"the image embedder's input has no height and width (shape {input_shape})")
    return None, synthetic_images(PROBE_INPUTS, input_shape[1], input_shape[2])


def verify(
    device: DeviceSide,
    *,
    index: bytes | Path,
    bundle: bytes | Path | None,
    reference: device_search.DeviceIndex,
    labels: list[bytes],
    count: int,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    l2_normalize: bool,
    leaves: int,
    texts: list[str] | None = None,
    images: list[np.ndarray] | None = None,
    runtimes: tuple[str, ...] | None = None,
    progress: Progress = SILENT,
) -> ParityReport:
    """Ask each runtime in ``runtimes`` (default: every one present, :func:`.runtimes.available`)
    and scannlite's device-equivalent search over ``reference`` the same queries; compare each
    runtime with the reference, and the runtimes with each other exactly.

    Probes: ``PROBE_VECTORS`` stored vectors (a fixed-seed sample of the ``count`` items,
    fetched with ``vectors_of(rows)``) plus a perturbed copy of each, searched through a probe
    embedder by the Task Library and directly by libscannlite over ``index``; then the bundle's
    own embedder on ``texts``/``images`` (its vectors come from the device process: the Task
    Library's embedder, beside its searcher's answers, or ``device.embed_bundle`` when the Task
    Library is not among ``runtimes``; libscannlite searches them over ``bundle``)."""
    wanted = rt.available() if runtimes is None else tuple(runtimes)
    notes = []
    if runtimes is None and rt.SCANNLITE not in wanted:
        notes.append(f"not verified with libscannlite ({rt.native_missing()})")
    if runtimes is None and rt.TASK_LIBRARY not in wanted:
        notes.append(f"not verified with the Task Library ({rt.task_library_missing()})")
    if not wanted:
        raise ScannliteError(f"no runtime to verify with: {rt.native_missing()}; {rt.task_library_missing()}")
    rows = np.sort(np.random.default_rng(0).choice(count, size=min(PROBE_VECTORS, count), replace=False))
    probes = probe_vectors(vectors_of(rows), seed=1)
    k = min(VERIFY_K, count)
    # runtime -> {"probe vector": answers, "real embedder text": answers, ...}; embedder vectors by kind.
    answers: dict[str, dict[str, list[Neighbors]]] = {}
    embedded: dict[str, np.ndarray] = {}
    rep = ParityReport(notes=notes)
    if rt.TASK_LIBRARY in wanted:
        with progress.task("verifying with the Task Library in a device process"):
            got = device.check_bundle(
                index=index,
                probe_vectors=probes,
                max_results=k,
                l2_normalize=l2_normalize,
                bundle=bundle,
                texts=texts,
                images=images,
            )
        rep.latency_ms = got.get("latency_ms")
        answers[rt.TASK_LIBRARY] = {"probe vector": got["probe"]}
        for key in ("texts", "images"):
            if key in got:
                embedded[key], answers[rt.TASK_LIBRARY][f"real embedder {key[:-1]}"] = got[key]
    elif bundle is not None:
        # Without the Task Library's searcher, the bundle's embedder still gives libscannlite real
        # queries: the device side's embedder (DeviceSide.embed_bundle): the Task Library's where
        # tflite-support is installed, else MediaPipe's, within ulps of it (docs/python-versions.md).
        with progress.task(f"embedding the probe inputs with the bundle's embedder ({embedder_runtime()})"):
            if texts:
                embedded["texts"] = device.embed_bundle(bundle=bundle, texts=texts)
            if images:
                embedded["images"] = device.embed_bundle(bundle=bundle, images=images)
        if (texts or images) and not task_library_installed():
            rep.notes.append("the bundle's embedder ran in MediaPipe (tflite-support is not installed)")
    if rt.SCANNLITE in wanted:
        with progress.task("verifying with libscannlite"):
            mine = {"probe vector": rt.native_search(index, probes, k, l2_normalize)}
            for key, vecs in embedded.items():
                if bundle is not None:  # embedded is filled only from a bundle's own embedder
                    mine[f"real embedder {key[:-1]}"] = rt.native_search(bundle, vecs, k, l2_normalize)
        answers[rt.SCANNLITE] = mine
    first, *others = [r for r in (rt.TASK_LIBRARY, rt.SCANNLITE) if r in answers]
    for what, dev in answers[first].items():
        queries = probes if what == "probe vector" else embedded[what.split()[-1] + "s"]
        server = server_neighbors(reference, labels, normalised(queries, l2_normalize), k, leaves)
        rep.merge(compare(dev, server, what))
        for other in others:
            problems = rt.exact_problems(dev, answers[other][what], (first, other), what)
            rep.problems += problems
            rep.identical += len(dev) - len(problems)
    rep.verified_by = [rt.label(r) for r in (rt.TASK_LIBRARY, rt.SCANNLITE) if r in answers]
    return rep


def normalised(queries: np.ndarray, l2_normalize: bool) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    return device_search.l2_normalize(q) if l2_normalize else q
