"""Which training recipe gives the most recall per unit of device work, on real text embeddings (issue 8, part 4).

``python -m bench.recipe_sweep`` (about 20 min here; ``--quick``: a smoke run on the small
set) prints the tables, writes ``bench/results/recipe/recipe_sweep.json``, renders docs/recipe.md
from it (:mod:`bench.render`) and draws docs/recipe.png. A finished study: ``make bench`` does
not run it; this command reproduces docs/recipe.md's figures.

**What can vary.** The device's index holds one leaf per vector, one level of k-means
centroids and asymmetric-hashing codes (no spilling, residuals or reordering), so the knobs
are: the number of leaves (relative to sqrt(N)), the tree's k-means (spherical or not,
iterations, training sample) and the codes (anisotropic threshold, dims_per_block).
``IndexConfig`` holds all but ``spherical`` (``store/index/training.py`` sets it for dot-product
catalogs); ``training_sample_size`` feeds both the tree and the codes there, here the tree's.

**How.** The codes are trained on the vectors themselves (``residual_quantization=False``),
so they do not depend on the tree: each tree is trained once with ScaNN (``.tree(...)`` with
brute-force scoring) and each code recipe once (``.score_ah(...)`` alone), every one in a
fresh process (:mod:`bench.stage`, for its time), and every tree x codes pair is scored:
for each held-out query, the device's leaf order (``device_search.select_leaves``) and the
codes' distances ``-(decode(code) . q)`` (:func:`bench.ladder_recall.blas_distances`: the
device's FLOAT-table sums in another float32 order), then the top 10 among the codes of the
first L leaves, for L on a ladder of steps of about sqrt(2). Device work per query is the
codes scanned (the sizes of the L leaves visited, averaged over queries); recipes are
compared at equal codes scanned by interpolating each one's recall in log(codes).

**Checked through the library.** The winner is then built for real (``Catalog.create`` +
``build`` with its settings passed as ``changes``, in a fresh process) and scored bit for bit
as the device does (:mod:`bench.ladder_recall`'s bit-exact scorer), so the final figure is
not the sweep's shortcut. (Today's default built the same way is docs/benchmarks.md's
headline; its figures there match the sweep's to 0.001.)
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import pickle
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import ROOT, block_tensorflow, ladder_recall, real_text, results, stage
from .render import write_doc
from .report import Section, Table, command_line, console, now

K = 10
#: Codes scanned per query at which recipes are compared (besides today's default at its leaves_to_search).
BUDGETS = (500, 1_000, 2_000, 4_000, 8_000, 16_000)
TARGETS = (0.90, 0.95)
PREFIX = 30_000  # codes per query sorted by distance before looking further (ladder answers come from here)


@dataclass(frozen=True)
class Tree:
    name: str
    leaves_factor: float = 1.0  # num_leaves = round(factor * sqrt(N))
    spherical: bool = True
    iterations: int = 25
    sample: int = 100_000
    random_init: bool = False


@dataclass(frozen=True)
class Codes:
    name: str
    dims_per_block: int = 1
    threshold: float = 0.2  # nan: plain (isotropic) k-means codes
    sample: int = 100_000


#: Today's recipe (store/index/training.py with IndexConfig's defaults) first, then one change at a time
#: (and one pair of changes). About 6 minutes of training here.
TREES = [
    Tree("default: sqrt(N) leaves, spherical, 25 iterations, sample 100,000"),
    Tree("0.5 sqrt(N) leaves", leaves_factor=0.5),
    Tree("2 sqrt(N) leaves", leaves_factor=2.0),
    Tree("3 sqrt(N) leaves", leaves_factor=3.0),
    Tree("4 sqrt(N) leaves", leaves_factor=4.0),
    Tree("not spherical (plain k-means)", spherical=False),
    Tree("10 iterations", iterations=10),
    Tree("sample 25,000", sample=25_000),
    Tree("sample: every vector", sample=0),  # 0 = N
    Tree("2 sqrt(N) leaves, sample: every vector", leaves_factor=2.0, sample=0),
]
#: Each code recipe costs 2-2.5 minutes of ScaNN training at 120,000 x 384 here.
CODES = [
    Codes("default: 1 dim/block, anisotropic 0.2"),
    Codes("no anisotropic weighting", threshold=float("nan")),
    Codes("2 dims/block (half the bytes)", dims_per_block=2),
]
#: ``--more-codes`` adds these (5 more minutes): thresholds either side of the default.
MORE_CODES = [
    Codes("anisotropic 0.1", threshold=0.1),
    Codes("anisotropic 0.4", threshold=0.4),
]
#: The library's build trains the tree and the codes in one ScaNN build, whose memory grows with the
#: leaves: at 120,000 x 384 its peak RSS was 10.0-10.9 GiB at sqrt(N) leaves and 20.6 GiB at
#: 2 sqrt(N), and at 3 sqrt(N) the kernel killed it at 23 GiB (the machine has 23.5 GiB). Trained
#: apart (as here) the tree took 0.6 GiB and the codes 0.8 GiB. So the check through the library
#: builds the best recipe with at most this many sqrt(N) leaves.
CONFIRM_MAX_LEAVES_FACTOR = 2.0
#: A change is adopted only if it gains at least this much recall at today's budget: smaller
#: differences are within what re-training with another sample moves (a few thousandths).
MIN_GAIN = 0.005


def num_leaves(tree: Tree, n: int) -> int:
    return max(2, round(tree.leaves_factor * math.sqrt(n)))


# ---- training steps (each in its own process through bench.stage) -----------------------------


def train_tree(npy: str, leaves: int, spherical: bool, iterations: int, sample: int, random_init: bool) -> dict:
    """ScaNN's k-means tree alone (brute-force scoring, nothing else trained): centroids and
    each vector's leaf, as ``store.training`` reads them from ScaNN's assets."""
    from scannlite.store.index import training

    pybind = training.import_scann()

    x = np.load(npy)
    builder = (
        pybind.builder(x, 10, "dot_product")
        .tree(
            num_leaves=leaves,
            num_leaves_to_search=min(4, leaves),
            training_sample_size=sample or len(x),
            spherical=spherical,
            random_init=random_init,
            training_iterations=iterations,
        )
        .score_brute_force()
    )
    with built_assets(builder) as (tmp, seconds):
        centroids = training.read_centroids(tmp)
        assigned = np.load(Path(tmp, "datapoint_to_token.npy")).astype(np.int32)
    if assigned.shape != (len(x),):
        raise RuntimeError("unexpected ScaNN tree layout")
    return {"centroids": centroids, "leaves": assigned, "train_seconds": seconds}


def train_codes(npy: str, dims_per_block: int, threshold: float, sample: int) -> dict:
    """ScaNN's asymmetric hashing alone (lut256, no residuals), as ``store.training`` trains it."""
    from scannlite.store.index import training
    from scannlite.store.index.partition_model import PartitionModel

    x = np.load(npy)
    pybind = training.import_scann()
    builder = pybind.builder(x, 10, "dot_product").score_ah(
        dims_per_block,
        anisotropic_quantization_threshold=threshold,
        training_sample_size=sample or len(x),
        hash_type="lut256",
        residual_quantization=False,
    )
    with built_assets(builder) as (tmp, seconds):
        books = training.read_codebooks(tmp, x.shape[1], dims_per_block)
    # Every vector encoded as the library's builds encode it (store.training.place).
    model = PartitionModel("ah", x[:1], books, dims_per_block)
    return {"codebooks": books, "codes": model.encode(x), "train_seconds": seconds}


@contextmanager
def built_assets(builder):
    """:func:`store.training.built_assets`, timed: (assets folder, seconds the build took)."""
    from scannlite.store.index import training

    t0 = time.perf_counter()
    with training.built_assets(builder) as folder:
        yield folder, time.perf_counter() - t0


def create_and_add(path: str, npy: str) -> dict:
    """A default-settings catalog (dot product, normalised) holding the vectors of ``npy``."""
    from scannlite.store.catalog.catalog import Catalog

    x = np.load(npy)
    with Catalog.create(Path(path), x.shape[1]) as cat:
        cat.add([f"t{i:06d}" for i in range(len(x))], x)
    return {"count": len(x)}


# ---- scoring ----------------------------------------------------------------------------------


@dataclass
class TreeState:
    tree: Tree
    centroids: np.ndarray
    leaves: np.ndarray
    ranks: np.ndarray  # (Q, L) leaf visiting rank per query
    steps: list[int]
    scanned: dict[int, float]
    seconds: float
    peak_rss: int


def tree_state(tree: Tree, measured: stage.Measured, q: np.ndarray) -> TreeState:
    from scannlite.store.index.device_search import DeviceIndex

    v = measured.value
    centroids, leaves = v["centroids"], v["leaves"]
    offsets = np.zeros(len(centroids) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(leaves, minlength=len(centroids)))
    index = DeviceIndex("dot", centroids, offsets, None, None, None)
    ranks = ladder_recall.leaf_ranks(index, q)
    steps = ladder_recall.ladder(len(centroids), dense=True)
    return TreeState(
        tree,
        centroids,
        leaves,
        ranks,
        steps,
        ladder_recall.codes_scanned(ranks, offsets, steps),
        v["train_seconds"],
        measured.peak_rss,
    )


def score_grid(
    trees: list[TreeState], decoded: np.ndarray, q: np.ndarray, truth: np.ndarray, chunk: int = 50
) -> dict[str, dict[int, float]]:
    """{tree name: {L: recall@K}} for one set of codes: each query's codes sorted by distance once,
    then every tree's answer at every L taken from that order (rows of leaves outside the
    query's first L skipped)."""
    hits = {t.tree.name: dict.fromkeys(t.steps, 0) for t in trees}
    prefix = min(PREFIX, len(decoded))
    for start in range(0, len(q), chunk):
        d = -(q[start : start + chunk] @ decoded.T)
        if prefix < d.shape[1]:
            part = np.argpartition(d, prefix - 1, axis=1)[:, :prefix]
            part = np.take_along_axis(part, np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable"), 1)
        else:
            part = np.argsort(d, axis=1, kind="stable")
        for i in range(len(part)):
            qi = start + i
            true = set(truth[qi].tolist())
            order = part[i]
            full = None
            for t in trees:
                rio = t.ranks[qi][t.leaves[order]]
                for L in t.steps:
                    picked = order[np.flatnonzero(rio < L)[:K]]
                    if len(picked) < K:  # not enough among the nearest PREFIX codes: use them all
                        if full is None:
                            full = np.argsort(d[i], kind="stable")
                        picked = full[np.flatnonzero(t.ranks[qi][t.leaves[full]] < L)[:K]]
                    hits[t.tree.name][L] += len(true.intersection(picked.tolist()))
    return {name: {L: h / (K * len(q)) for L, h in per.items()} for name, per in hits.items()}


def at_budget(points: dict[float, float], budget: float) -> float | None:
    """Recall at ``budget`` codes scanned, interpolated in log(codes) between ladder points."""
    xs = sorted(points)
    if budget < xs[0] or budget > xs[-1]:
        return None
    for a, b in zip(xs, xs[1:]):
        if a <= budget <= b:
            if b == a:
                return points[b]
            w = (math.log(budget) - math.log(a)) / (math.log(b) - math.log(a))
            return points[a] + w * (points[b] - points[a])
    return points[xs[-1]]


def codes_for(points: dict[float, float], target: float) -> float | None:
    """Codes scanned per query at which recall first reaches ``target`` (log-interpolated)."""
    xs = sorted(points)
    prev = None
    for x in xs:
        if points[x] >= target:
            if prev is None:
                return x
            a, ra = prev
            w = (target - ra) / (points[x] - ra)
            return math.exp(math.log(a) + w * (math.log(x) - math.log(a)))
        prev = (x, points[x])
    return None


def fmt(v, digits=3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def fmt_codes(v) -> str:
    return "not reached" if v is None else f"{v:,.0f}"


# ---- the library check ------------------------------------------------------------------------


def library_curve(path: Path, queries: np.ndarray, truth_ids: list[list[str]], dense: bool = True) -> dict:
    """Build-through-the-library result scored bit for bit: {L: (codes scanned, recall)}."""
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index import snapshot

    with Catalog.open(path) as cat:
        snap = snapshot.load_snapshot(cat, None)
        q = snapshot.prepare_queries(cat, queries)
        index = snap.device_index()
        steps = ladder_recall.ladder(index.num_leaves, dense=dense)
        ranks = ladder_recall.leaf_ranks(index, q)
        found = ladder_recall.answers(
            ladder_recall.device_distances(index, q), ranks, ladder_recall.row_leaves(index.offsets), steps, K
        )
        scanned = ladder_recall.codes_scanned(ranks, index.offsets, steps)
        ids = np.asarray(snap.ids)
        out = {}
        for L in steps:
            rec = np.mean([len(set(ids[r[r >= 0]].tolist()) & set(t)) / K for r, t in zip(found[L], truth_ids)])
            out[L] = (scanned[L], float(rec))
        return {
            "curve": out,
            "num_leaves": index.num_leaves,
            "leaves_to_search": snap.info.leaves_to_search,
            "build": snap.info.build,
        }


# ---- the run ----------------------------------------------------------------------------------


def run(args) -> int:
    from scannlite.store.index import device_search
    from scannlite.store.index.partition_model import PartitionModel

    con = console()
    started, t_start = now(), time.perf_counter()
    say = lambda msg: con.print(f"[dim]- {(time.perf_counter() - t_start) / 60:4.1f} min: {msg}[/dim]")  # noqa: E731
    load_before = os.getloadavg()
    spec = real_text.QUICK if args.quick else real_text.FULL
    real = real_text.load(spec, console=con, say=say)
    x = np.ascontiguousarray(real.vectors, dtype=np.float32)
    n, dim = x.shape
    queries = real.query_vectors[: args.queries] if args.queries else real.query_vectors
    q = device_search.l2_normalize(queries)
    trees = TREES if not args.quick else TREES[:3]
    codes = (CODES + (MORE_CODES if args.more_codes else [])) if not args.quick else CODES[:2]
    if args.quick:
        trees = [replace(t, sample=min(t.sample, 2_000)) for t in trees]
        codes = [replace(c, sample=min(c.sample, 2_000)) for c in codes]

    with tempfile.TemporaryDirectory(prefix="scannlite-sweep-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        npy = work / f"real-{spec.name}.npy"
        np.save(npy, x)
        say(f"exact truth for {len(q):,} queries over {n:,} x {dim}")
        truth, _ = device_search.exact_search(x, "dot", q, K)

        # Trained parts are kept in the work directory (keyed by the data and the settings), so a
        # re-run with the same --workdir only scores.
        store = work / "trained"
        store.mkdir(exist_ok=True)
        data_key = real.info.get("vectors_key", "") + f"-{n}"

        def trained(kind: str, **kwargs) -> stage.Measured:
            key = hashlib.sha256(repr((kind, data_key, sorted(kwargs.items()))).encode()).hexdigest()[:16]
            path = store / f"{kind}-{key}.pkl"
            if path.is_file():
                return pickle.loads(path.read_bytes())
            m = stage.run(f"bench.recipe_sweep:train_{kind}", npy=str(npy), **kwargs)
            path.write_bytes(pickle.dumps(m))
            return m

        states = []
        for tree in trees:
            leaves = num_leaves(tree, n)
            say(f"tree: {tree.name} ({leaves} leaves)")
            m = trained(
                "tree",
                leaves=leaves,
                spherical=tree.spherical,
                iterations=tree.iterations,
                sample=min(tree.sample, n) if tree.sample else 0,
                random_init=tree.random_init,
            )
            states.append(tree_state(tree, m, q))
        grid, code_info = {}, {}
        for c in codes:
            say(f"codes: {c.name}")
            m = trained("codes", dims_per_block=c.dims_per_block, threshold=c.threshold, sample=min(c.sample, n))
            model = PartitionModel("ah", x.mean(axis=0, keepdims=True), m.value["codebooks"], c.dims_per_block)
            decoded = model.decode(m.value["codes"]).astype(np.float32)
            code_info[c.name] = {
                "seconds": m.value["train_seconds"],
                "peak_rss": m.peak_rss,
                "bytes": model.num_subspaces,
            }
            say(f"scoring {len(states)} trees x {c.name}")
            grid[c.name] = score_grid(states, decoded, q, truth)
            del decoded

        curves = {
            (t.tree.name, c.name): {t.scanned[L]: grid[c.name][t.tree.name][L] for L in t.steps}
            for t in states
            for c in codes
        }
        default_t, default_c = states[0], codes[0].name
        default_leaves = default_t.ranks.shape[1]
        from scannlite.store.index.config import IndexConfig

        today_L = IndexConfig().search_leaves(default_leaves)
        today_budget = default_t.scanned[today_L]
        today = grid[default_c][default_t.tree.name][today_L]

        def score(key) -> float:  # what "most recall per unit of device work" means here
            return at_budget(curves[key], today_budget) or 0.0

        # The winner: the best tree (with today's codes) and the best codes (with today's tree),
        # each only if it beats today's by MIN_GAIN; then that pair, measured in the grid.
        # Among trees within MIN_GAIN of the best, the cheapest wins (fewest leaves: less centroid
        # scoring per query and less training; then the shortest training).
        base = (default_t.tree.name, default_c)
        top = max(score((s.tree.name, default_c)) for s in states)
        best_tree = min(
            (s for s in states if score((s.tree.name, default_c)) >= top - MIN_GAIN),
            key=lambda s: (s.ranks.shape[1], s.seconds),
        ).tree.name
        best_codes = max((c.name for c in codes), key=lambda c: score((default_t.tree.name, c)))
        best_key = (
            best_tree if score((best_tree, default_c)) >= score(base) + MIN_GAIN else base[0],
            best_codes if score((base[0], best_codes)) >= score(base) + MIN_GAIN else base[1],
        )
        say(f"best at today's budget: {best_key}")

        # ---- confirmation through the library ---------------------------------------------------
        lib = {}
        factor = {s.tree.name: s.tree.leaves_factor for s in states}
        fits = [
            (t, c)
            for (t, c) in curves
            if factor[t] <= CONFIRM_MAX_LEAVES_FACTOR
            and next(s.tree for s in states if s.tree.name == t).spherical
            and (t, c) != base
        ]
        check_key = best_key if best_key in fits else max(fits, key=score, default=None)
        if not args.no_confirm and best_key != base and check_key is not None:
            check_tree = next(s.tree for s in states if s.tree.name == check_key[0])
            check_codes = next(c for c in codes if c.name == check_key[1])
            changes = {"num_leaves": num_leaves(check_tree, n)}
            if check_tree.iterations != Tree("").iterations:
                changes["training_iterations"] = check_tree.iterations
            if check_tree.sample != Tree("").sample:
                changes["training_sample_size"] = check_tree.sample or n
            if repr(replace(check_codes, name="")) != repr(Codes("")):  # repr: nan == nan
                changes.update(anisotropic_threshold=check_codes.threshold, dims_per_block=check_codes.dims_per_block)
            truth_ids = [[f"t{j:06d}" for j in row] for row in truth]
            path = work / "catalog-checked"
            shutil.rmtree(path, ignore_errors=True)
            say(f"library build of {check_key}: changes={changes}")
            stage.run("bench.recipe_sweep:create_and_add", path=str(path), npy=str(npy))
            entry = {"key": list(check_key), "changes": changes}
            try:
                built = stage.run("bench.catalog_steps:build", path=str(path), full=True, changes=changes)
            except RuntimeError as exc:  # e.g. killed by the kernel for want of memory
                entry["failed"] = str(exc).splitlines()[0]
            else:
                say("scoring the library's build bit for bit")
                entry.update(
                    seconds=built.seconds,
                    peak_rss=built.peak_rss,
                    recipe=built.value["recipe"],
                    **library_curve(path, queries, truth_ids),
                )
            lib["checked"] = entry
            shutil.rmtree(path, ignore_errors=True)

    seconds = time.perf_counter() - t_start
    report = write_report(
        args,
        spec,
        real,
        states,
        codes,
        code_info,
        grid,
        curves,
        today_L,
        today_budget,
        today,
        best_key,
        lib,
        started,
        seconds,
        load_before,
        len(q),
    )
    for t in report["tables"]:
        t.print(con)
    con.print(f"report: {args.output}; curves: {args.png}; total {seconds / 60:.1f} min")
    return 0


def _label(key, default_tree: str, default_codes: str) -> str:
    tree, codes = key
    if key == (default_tree, default_codes):
        return "today's default"
    if codes == default_codes:
        return tree
    if tree == default_tree:
        return f"codes: {codes}"
    return f"{tree} + codes: {codes}"


def _smallest(curve: dict[int, tuple[float, float]], target: float) -> str:
    """'L (codes)' of the smallest ladder value whose recall reaches ``target``."""
    for L, (c, r) in curve.items():
        if r >= target:
            return f"{L} leaves ({c:,.0f} codes, recall {r:.3f})"
    return "not reached"


def write_report(
    args,
    spec,
    real,
    states,
    codes,
    code_info,
    grid,
    curves,
    today_L,
    today_budget,
    today,
    best_key,
    lib,
    started,
    seconds,
    load_before,
    n_queries,
) -> dict:
    import json
    import os

    n, dim = real.vectors.shape
    default_t, default_c = states[0], codes[0].name
    base = (default_t.tree.name, default_c)
    leaves_of = {s.tree.name: s.ranks.shape[1] for s in states}
    bytes_of = {c.name: code_info[c.name]["bytes"] for c in codes}
    tables = []

    # ---- one change at a time ------------------------------------------------------------------
    budgets = [b for b in BUDGETS if b <= n]
    cols = (
        [
            "recipe",
            "leaves",
            "training s",
            f"recall@{K} at today's budget ({today_budget:,.0f} codes)",
            "gain",
            "at today's bytes scanned",
        ]
        + [f"@{b:,}" for b in budgets]
        + [f"codes for {t:.2f}" for t in TARGETS]
        + [f"device ops for {TARGETS[0]:.2f}"]
    )
    t = Table(
        f"Recall@{K} per codes scanned, one knob at a time ({n:,} x {dim} real text, {n_queries:,} held-out queries)",
        cols,
    )

    def ops(key) -> str:
        """Centroid multiply-adds (leaves x dim) plus table lookups (codes x bytes) for recall TARGETS[0]."""
        c = codes_for(curves[key], TARGETS[0])
        return "-" if c is None else f"{(leaves_of[key[0]] * dim + c * bytes_of[key[1]]) / 1e6:.2f} M"

    rows = [(s.tree.name, default_c) for s in states] + [(default_t.tree.name, c.name) for c in codes[1:]]
    if best_key not in rows:
        rows.append(best_key)
    for key in rows:
        at = at_budget(curves[key], today_budget)
        same_bytes = at_budget(curves[key], today_budget * bytes_of[default_c] / bytes_of[key[1]])
        secs = (
            next(s.seconds for s in states if s.tree.name == key[0])
            if key[1] == default_c
            else code_info[key[1]]["seconds"]
        )
        label = _label(key, *base) + (" **(winner)**" if key == best_key and key != base else "")
        t.add(
            label,
            str(leaves_of[key[0]]),
            f"{secs:.0f}",
            fmt(at),
            "" if key == base else f"{at - today:+.3f}",
            fmt(same_bytes),
            *(fmt(at_budget(curves[key], b)) for b in budgets),
            *(fmt_codes(codes_for(curves[key], r)) for r in TARGETS),
            ops(key),
        )
    t.how = [
        f"Today's recipe: `store/index/training.py` with `IndexConfig()`'s defaults: {leaves_of[base[0]]} leaves "
        f"(round(sqrt(N))), {today_L} searched by the fixed rule, scanning {today_budget:,.0f} codes per query on "
        f"average, where its recall@{K} is {today:.3f}. Each other row changes one thing (the last rows: the winner "
        "and a pair of changes).",
        "Trees: ScaNN 1.4.2 `.tree(num_leaves, training_sample_size, spherical, random_init=False, "
        "training_iterations)` with brute-force scoring, in a fresh process; codes: `.score_ah(dims_per_block, "
        "anisotropic_quantization_threshold, training_sample_size=100,000, hash_type='lut256', "
        "residual_quantization=False)` alone. 'training s' is ScaNN's build call for that part only (the tree's, "
        "or the codes' for a codes row); the machine is shared, so these times are rough.",
        "Recall at a budget: each recipe's recall at L = 1, 2, 3, 4, 6, 8, 11, ... all leaves, placed at its mean "
        "codes scanned per query and interpolated linearly in log(codes); '-' outside the measured range. "
        "'codes for R': the interpolated codes per query where recall first reaches R. 'At today's bytes scanned': "
        "recall at the budget that scans as many code bytes (table lookups) as today's: twice the codes for "
        f"2 dims/block. 'Device ops': what a query costs the device for recall {TARGETS[0]:.2f}, counting the "
        f"centroid scoring too: leaves x {dim} multiply-adds plus codes x bytes-per-code lookups (the query's "
        f"table, 256 x {dim} multiply-adds, is the same for every recipe and left out).",
        f"Winner rule: at today's budget, the tree with today's codes (among trees within {MIN_GAIN} of the best, "
        f"the one with the fewest leaves: less centroid scoring per query, less training) and the best codes with "
        f"today's tree, each kept only if it gains at least {MIN_GAIN} over today's (smaller differences are "
        "noise), then that pair.",
        f"Truth: `device_search.exact_search` over the {n:,} vectors (float64); recall@{K} = |found and true "
        f"top-{K}| / {K}, averaged over {n_queries:,} held-out queries.",
    ]
    tables.append(t)

    # ---- every pair at today's budget ------------------------------------------------------------
    g = Table(
        f"Every tree x codes pair: recall@{K} at today's budget ({today_budget:,.0f} codes scanned per query) "
        f"/ codes scanned for recall {TARGETS[0]:.2f}",
        ["tree"] + [c.name for c in codes],
    )
    for s in states:
        g.add(
            s.tree.name + f" ({leaves_of[s.tree.name]} leaves)",
            *(
                f"{fmt(at_budget(curves[(s.tree.name, c.name)], today_budget))} / "
                f"{fmt_codes(codes_for(curves[(s.tree.name, c.name)], TARGETS[0]))}"
                for c in codes
            ),
        )
    g.how = [
        "Code bytes per vector: " + ", ".join(f"{c.name}: {bytes_of[c.name]}" for c in codes) + ". A 2-dims/block "
        "code is half the bytes and half the table lookups, so at equal codes scanned it does half the scan "
        "work (and the bundle's codes are half the size)."
    ]
    tables.append(g)

    # ---- through the library ------------------------------------------------------------------
    win = lib.get("checked", {})
    if "curve" in win:
        ck = tuple(win["key"])
        name = _label(ck, *base) + (" (the winner)" if ck == best_key else "")
        pts = dict(win["curve"].values())
        lt = Table(
            f"Through the library: {name}, built by `build()` and scored bit for bit as the device scores",
            ["figure", "today's default (sweep)", f"{name} (sweep)", f"{name} (built by the library)"],
        )
        lt.add("settings changed from IndexConfig()", "none", "", f"`{win['changes']}`")
        lt.add("leaves", str(leaves_of[base[0]]), str(leaves_of[ck[0]]), str(win["num_leaves"]))
        lt.add(
            f"recall@{K} at today's budget ({today_budget:,.0f} codes)",
            fmt(today),
            fmt(at_budget(curves[ck], today_budget)),
            fmt(at_budget(pts, today_budget)),
        )
        for b in budgets:
            lt.add(
                f"recall@{K} at {b:,} codes",
                fmt(at_budget(curves[base], b)),
                fmt(at_budget(curves[ck], b)),
                fmt(at_budget(pts, b)),
            )
        for r in TARGETS:
            lt.add(
                f"codes per query for recall {r:.2f}",
                fmt_codes(codes_for(curves[base], r)),
                fmt_codes(codes_for(curves[ck], r)),
                fmt_codes(codes_for(pts, r)),
            )
        lt.add(
            f"smallest L on the sqrt(2) ladder reaching {TARGETS[0]:.2f}", "", "", _smallest(win["curve"], TARGETS[0])
        )
        lt.add(
            "leaves_to_search the build chose (recall_target on its powers-of-two ladder)",
            "",
            "",
            str(win["leaves_to_search"]),
        )
        lt.add("full build time, peak RSS", "", "", f"{win['seconds']:.0f} s, {win['peak_rss'] / 2**30:.1f} GiB")
        lt.how = [
            "`Catalog.create(path, 384)` + `add` of the same vectors, then `build(cat, full=True, changes=...)` in a "
            "fresh process; its snapshot scored by `bench/ladder_recall.py`'s bit-exact FLOAT-table scorer (its "
            "answers equal `snapshot.search`'s: docs/benchmarks.md). Today's default built the same way is the "
            "headline of docs/benchmarks.md.",
            f"Which recipe: the winner if it has at most {CONFIRM_MAX_LEAVES_FACTOR:g} sqrt(N) leaves, else the best "
            "one that has: the library trains tree and codes in one ScaNN build, whose peak memory grows with the "
            "leaves (10-11 GiB at sqrt(N), 20.6 GiB at 2 sqrt(N); killed at 3 sqrt(N) on this 23.5 GiB machine), "
            "while the sweep's separate trainings peak under 1 GiB (`CONFIRM_MAX_LEAVES_FACTOR` in "
            "bench/recipe_sweep.py).",
            "Built by the library, L: recall (codes scanned): "
            + ", ".join(f"{L}: {r:.3f} ({c:,.0f})" for L, (c, r) in win["curve"].items())
            + ".",
        ]
        tables.append(lt)
    elif win:
        tables.append(Table(f"Through the library: the build of {win['changes']} failed: {win['failed']}", ["figure"]))

    # ---- the plot ------------------------------------------------------------------------------
    from .plot import codes_png

    plot_curves = {}
    for key in rows:
        label = _label(key, *base) + (" (winner)" if key == best_key and key != base else "")
        plot_curves[label] = curves[key]
    if "curve" in win:
        plot_curves[f"{_label(tuple(win['key']), *base)}, built by the library (bit-exact)"] = dict(
            win["curve"].values()
        )
    codes_png(
        {
            "curves": plot_curves,
            "title": f"real text {n:,} x {dim}: recall@{K} vs codes scanned per query (dashed: today's default budget)",
            "vline": today_budget,
            "hlines": TARGETS,
        },
        args.png,
    )

    # ---- results (JSON), then docs/recipe.md rendered from them ------------------------------------
    png_rel = os.path.relpath(args.png, args.output.parent)
    best_at = at_budget(curves[best_key], today_budget)
    lib_at = at_budget(dict(win["curve"].values()), today_budget) if "curve" in win else None
    cheaper = (codes_for(curves[base], TARGETS[0]), codes_for(curves[best_key], TARGETS[0]))
    result = (
        f"**Result.** At today's budget ({today_budget:,.0f} codes scanned per query: today's {today_L} of "
        f"{leaves_of[base[0]]} leaves) the winner, **{_label(best_key, *base)}**, reaches recall@{K} "
        f"{fmt(best_at)} against today's {today:.3f} ({best_at - today:+.3f})"
        + (
            f". Recall {TARGETS[0]:.2f} takes {fmt_codes(cheaper[1])} codes per query instead of "
            f"{fmt_codes(cheaper[0])}"
            if all(cheaper)
            else ""
        )
        + "."
    )
    if lib_at is not None:
        ck = tuple(win["key"])
        result += (
            f" Built by the library{'' if ck == best_key else ' (for memory, see its table: ' + _label(ck, *base) + ')'}"
            f": {fmt(lib_at)} ({lib_at - today:+.3f})."
        )
    if best_key == base:
        result = f"**Result.** No change gains {MIN_GAIN} recall at today's budget: today's recipe stays."
    section = Section(
        "Training recipe: recall per unit of device work on real text (issue 8, part 4)",
        command_line(),
        tables=tables,
        seconds=seconds,
        data=[
            f"Data: {real.describe()} (`python -m bench.real_text`).",
            f"Device work is codes scanned per query (each code {bytes_of[default_c]} bytes at 1 dim/block, one table "
            "lookup per byte), as issue 8 defines it. More leaves also cost the device more centroid scoring "
            f"(leaves x {dim} multiply-adds: {leaves_of[base[0]] * dim:,} today against "
            f"{today_budget * bytes_of[default_c]:,.0f} lookups for today's scan); the 'device ops' column counts "
            "both.",
        ],
    )
    run_json = results.section_json(
        section,
        "recipe_sweep",
        started=started,
        load=(load_before[0], os.getloadavg()[0]),
        images=[{"file": png_rel, "alt": f"recall@{K} against codes scanned per query, per recipe", "caption": ""}],
    )
    run_json["blocks"] = [{"text": result, "source": f"written by `{section.command}` from the figures below"}]
    print(f"results: {results.write(args.results / 'recipe_sweep.json', run_json)}")
    write_doc("recipe", args.output, args.results)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "today": {"leaves_to_search": today_L, "budget": today_budget, "recall": today},
                    "best": {"tree": best_key[0], "codes": best_key[1], "recall": best_at, "library": lib_at},
                    "curves": {f"{a} | {b}": {str(c): r for c, r in cur.items()} for (a, b), cur in curves.items()},
                    "trees": {
                        s.tree.name: {**asdict(s.tree), "num_leaves": leaves_of[s.tree.name], "seconds": s.seconds}
                        for s in states
                    },
                    "codes": code_info,
                    "library": {
                        lab: {
                            k2: (v2 if k2 != "curve" else {str(L): list(cr) for L, cr in v2.items()})
                            for k2, v2 in val.items()
                        }
                        for lab, val in lib.items()
                    },
                },
                indent=2,
                default=str,
            )
        )
    return {"tables": tables}


def main(argv: list[str] | None = None) -> int:
    block_tensorflow()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small real set, three trees, two code recipes")
    ap.add_argument("--queries", type=int, default=0, help="use only the first N held-out queries (default: all)")
    ap.add_argument("--workdir", type=Path, help="keep the arrays and catalogs here")
    ap.add_argument(
        "--results",
        type=Path,
        help="folder for the JSON results (default bench/results/recipe; a temporary one with --quick)",
    )
    ap.add_argument(
        "--output",
        type=Path,
        help="Markdown rendered from the results (default docs/recipe.md; a temporary file with --quick)",
    )
    ap.add_argument("--png", type=Path, help="recall curves (default docs/recipe.png)")
    ap.add_argument("--json", type=Path, help="every figure as JSON")
    ap.add_argument("--no-confirm", action="store_true", help="skip the build through the library")
    ap.add_argument("--more-codes", action="store_true", help="also anisotropic thresholds 0.1 and 0.4 (+5 min)")
    args = ap.parse_args(argv)
    if args.quick and not args.output:
        tmp = Path(tempfile.mkdtemp(prefix="scannlite-sweep-quick-"))
        args.output, args.png = args.output or tmp / "recipe.md", args.png or tmp / "recipe.png"
        args.results = args.results or tmp / "results"
    args.results = args.results or results.RESULTS / "recipe"
    args.output = args.output or ROOT / "docs" / "recipe.md"
    args.png = args.png or args.output.with_name("recipe.png")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
