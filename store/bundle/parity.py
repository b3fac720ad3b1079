"""Parity: does the real Task Library answer what scannlite's device-equivalent search says?

:func:`verify` is the verification routine, used by ``export`` (before publishing) and
``bundle verify``, with one rule for choosing probes. Results are compared as
lists of device metadata (``M_j``) with distances: the same entries in the same order,
except that entries whose distances tie within ``TIE`` may swap (the device's top-N keeps an
arbitrary one of tied entries), and distances within ``DIST_TOL``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scannlite.store.bundle.device_side import DeviceSide
from scannlite.store.errors import InvalidInput
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

    def merge(self, other: ParityReport) -> None:
        self.queries += other.queries
        self.exact_order += other.exact_order
        self.problems += other.problems


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
    progress: Progress = SILENT,
) -> ParityReport:
    """Ask the Task Library (through ``device``) and scannlite's device-equivalent search over
    ``reference`` the same queries, and compare the answers.

    Probes: ``PROBE_VECTORS`` stored vectors (a fixed-seed sample of the ``count`` items,
    fetched with ``vectors_of(rows)``) plus a perturbed copy of each, searched through a probe
    embedder; then the bundle's own embedder on ``texts``/``images``."""
    rows = np.sort(np.random.default_rng(0).choice(count, size=min(PROBE_VECTORS, count), replace=False))
    probes = probe_vectors(vectors_of(rows), seed=1)
    k = min(VERIFY_K, count)
    with progress.task("verifying with the Task Library in a device process"):
        answers = device.check_bundle(
            index=index,
            probe_vectors=probes,
            max_results=k,
            l2_normalize=l2_normalize,
            bundle=bundle,
            texts=texts,
            images=images,
        )
    rep = compare(
        answers["probe"],
        server_neighbors(reference, labels, normalised(probes, l2_normalize), k, leaves),
        "probe vector",
    )
    rep.latency_ms = answers.get("latency_ms")
    for key in ("texts", "images"):
        if key in answers:
            vecs, dev = answers[key]
            server = server_neighbors(reference, labels, normalised(vecs, l2_normalize), k, leaves)
            rep.merge(compare(dev, server, f"real embedder {key[:-1]}"))
    return rep


def normalised(queries: np.ndarray, l2_normalize: bool) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    return device_search.l2_normalize(q) if l2_normalize else q
