"""How a catalog's ScaNN partitions are trained and searched: every knob, its default and cost.

Modelled on LanceDB's index config classes. One :class:`IndexConfig` is stored per catalog
(``catalog_config`` table, key ``index``); ``scannlite build`` options change it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from scannlite.store.errors import InvalidInput
from scannlite.store.vocabulary import LOOKUP_TYPES

#: Below this many vectors a k-means tree does not pay: scanning every code of a
#: 4,096-item catalog costs a phone about 0.5 MB of table lookups per query (well under a
#: millisecond), while any tree loses recall at its leaf boundaries. Such catalogs get one leaf.
ONE_LEAF_BELOW = 4096

#: Asymmetric hashing trains 256 centres per block; ScaNN refuses fewer training points than
#: that ("Number of clusters per block (256) is greater than ... training data size"). Smaller
#: catalogs are stored on the device as raw float vectors, which is exact and still tiny.
FLOAT_INDEX_BELOW = 256


def from_known_fields(cls, data: dict):
    """A settings dataclass from a dict, ignoring keys it does not know: settings stored by a
    newer scannlite still open in an older one, with defaults for what it lacks."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class IndexConfig:
    """Settings of the partitions and codes. ``None`` means "chosen from the catalog's size".

    num_leaves:
        Number of k-means leaves. Default ``None``: ``leaves_per_sqrt_n * sqrt(N)`` (702 for
        COCO's 123,287 images), and 1 below :data:`ONE_LEAF_BELOW` vectors. More leaves make
        each query scan fewer codes (faster) but split true neighbours across more leaf
        boundaries (lower recall at the same ``leaves_to_search``); training time grows
        linearly with it. Changing it forces a full retrain.
    leaves_per_sqrt_n:
        The default leaf count's factor. Default 2.0: many small leaves searched in larger
        numbers lose fewer neighbours at leaf boundaries for the same scan, until the leaves get
        too small to hold a query's neighbourhood (docs/design-figures.md, "Index settings"). Catalogs created
        before this setting keep 1.0.
    leaves_to_search:
        Leaves a query visits, on the server and on the device (exported as ScaNN's
        ``search_fraction``). Default ``None``: chosen by ``recall_target`` from each build's
        recall estimate. A number here wins over the target. Query cost and recall both grow
        with it; no retraining needed to change it.
    recall_target:
        Device-equivalent recall@10 the build aims for. Default 0.90. Every build estimates
        recall on the catalog's own vectors at 1, 2, 3, 4, 6, 8, 11, ... leaves
        (:mod:`scannlite.store.index.recall_estimate`) and searches the smallest of those that
        reaches the target, up to ``max_leaves_to_search``: the partitions, not the codes, lose
        recall, so a fixed number of leaves would ship whatever recall the data gives (docs/design-figures.md).
        When the catalog has a query sample of at least 200 queries (``scannlite queries CATALOG add``), the
        target is met on the recall measured for those queries instead: short typed or cross-modal queries
        can need several times the leaves the catalog's own items do (docs/queries.md).
        ``None``: no target, the old fixed rule (4 leaves or 1.14% of them).
    max_leaves_to_search:
        The most leaves ``recall_target`` may choose. Default 64. Device cost grows linearly
        with the codes a query scans (docs/benchmarks.md: the Task Library's latency per leaves
        value). When the target needs more, the build says so and records the recall reached, and
        searches the fewest leaves within one standard error of the recall at the cap: a curve that
        levels off just under the target gains nothing measurable from the rest (docs/queries.md).
    recall_sample:
        Catalog items the recall estimate queries with (leave-one-out). Default 500, for a
        standard error near 0.01 at recall 0.9; the estimate's cost grows linearly with it.
        The estimate on the query sample uses at most this many of its queries. 0 turns both estimates off
        (and with them ``recall_target``).
    dims_per_block:
        Vector dimensions per asymmetric-hashing block; each block costs one byte per vector
        (256 centres, ScaNN ``lut256``). Default 1, as in Google's COCO example: 128 bytes per
        128-d vector and the best recall. 2 halves the index size and query table work at a
        measurable recall cost. Changing it forces a full retrain.
    lookup_type:
        How the device builds each query's lookup table: ``FLOAT`` (default), ``INT16`` or
        ``INT8``. The codes are the same for all three; only query-time arithmetic differs.
        FLOAT is the default: the quantized tables lose recall and are not faster on the Task
        Library (docs/design-figures.md, "Index settings").
        ScaNN's 4-bit ``INT8_LUT16`` is never used: the Task Library returns garbage for it.
    training_iterations:
        k-means iterations for the tree. Default 25: with spherical k-means and k-means++
        initialisation it beats ScaNN's defaults (random init, 12 iterations) by far in recall
        (docs/design-figures.md); training time grows linearly with it.
    spherical:
        Spherical k-means for the tree (ScaNN's ``tree(..., spherical=True)``: every centroid scaled back to unit
        norm after each iteration). Default ``None``: spherical for dot-product catalogs, plain k-means for l2 ones,
        as every build before this setting. Plain k-means on unit vectors leaves centroids shorter than 1, the
        shorter the more spread a leaf is, and the device ranks leaves by dot product with them: on real sentence
        embeddings it cost recall at equal codes scanned (docs/recipe.md, docs/queries.md). Training cost only;
        changing it takes effect at the next retrain (``build --full``).
    train_on_queries:
        Share of the tree's training points drawn from the catalog's query sample, when it has one. Default 0.0:
        the tree trains on the items alone. Above 0 the sample is split in two by each query's content: the tree
        trains on one half (each query repeated when the share asks for more points than that half holds), the
        build's recall estimate measures the other half, so the stated recall stays one on queries the partitions
        never saw, with half the queries and a larger standard error. Centroids move towards where queries land,
        which can lift recall per code scanned for queries unlike the items, at some recall for queries like
        them (docs/queries.md, "Partitions for such queries"). Training cost grows with the added points; the
        codebooks still train on items alone. Takes effect at the next retrain (``build --full``).
    training_sample_size:
        Vectors sampled to train the tree and the codebooks. Default 100,000 (ScaNN's). Larger
        samples cost time and memory for little gain past ~100 points per leaf.
    anisotropic_threshold:
        ScaNN's anisotropic quantization threshold (``noise_shaping_threshold``) for dot-product
        catalogs. Default 0.2, as Model Maker used: it lifts recall a little at no query cost.
        Ignored for l2 catalogs. Training cost only.
    """

    num_leaves: int | None = None
    leaves_per_sqrt_n: float = 2.0
    leaves_to_search: int | None = None
    dims_per_block: int = 1
    lookup_type: str = "FLOAT"
    training_iterations: int = 25
    training_sample_size: int = 100_000
    spherical: bool | None = None
    train_on_queries: float = 0.0
    anisotropic_threshold: float = 0.2
    recall_target: float | None = 0.90
    max_leaves_to_search: int = 64
    recall_sample: int = 500

    def __post_init__(self) -> None:
        if self.num_leaves is not None and self.num_leaves < 1:
            raise InvalidInput(f"num_leaves must be at least 1, got {self.num_leaves}")
        if self.leaves_to_search is not None and self.leaves_to_search < 1:
            raise InvalidInput(f"leaves_to_search must be at least 1, got {self.leaves_to_search}")
        if not 1 <= self.dims_per_block <= 64:
            raise InvalidInput(f"dims_per_block must be between 1 and 64, got {self.dims_per_block}")
        if self.lookup_type not in LOOKUP_TYPES:
            raise InvalidInput(f"lookup_type must be one of {', '.join(LOOKUP_TYPES)}, got {self.lookup_type!r}")
        if not 0 < self.leaves_per_sqrt_n <= 64:
            raise InvalidInput(f"leaves_per_sqrt_n must be above 0 and at most 64, got {self.leaves_per_sqrt_n}")
        if self.training_iterations < 1:
            raise InvalidInput("training_iterations must be at least 1")
        if self.recall_target is not None and not 0 < self.recall_target <= 1:
            raise InvalidInput(f"recall_target must be above 0 and at most 1, got {self.recall_target}")
        if self.max_leaves_to_search < 1:
            raise InvalidInput(f"max_leaves_to_search must be at least 1, got {self.max_leaves_to_search}")
        if self.recall_sample < 0:
            raise InvalidInput(f"recall_sample must not be negative, got {self.recall_sample}")
        if not 0 <= self.train_on_queries <= 0.9:
            raise InvalidInput(f"train_on_queries must be between 0 and 0.9, got {self.train_on_queries}")
        if self.spherical not in (None, True, False):
            raise InvalidInput(f"spherical must be true, false or null, got {self.spherical!r}")
        if self.training_sample_size < FLOAT_INDEX_BELOW:
            raise InvalidInput(f"training_sample_size must be at least {FLOAT_INDEX_BELOW}")

    def spherical_for(self, distance: str) -> bool:
        """Whether the tree is trained with spherical k-means for a catalog of ``distance``."""
        return self.spherical if self.spherical is not None else distance == "dot"

    def leaves_for(self, n: int) -> int:
        """Number of leaves a model trained on ``n`` vectors gets."""
        if self.num_leaves is not None:
            return max(1, min(self.num_leaves, n // 2 if n >= 2 else 1))
        if n < ONE_LEAF_BELOW:
            return 1
        return max(1, min(round(self.leaves_per_sqrt_n * math.sqrt(n)), n // 2))

    def search_leaves(self, num_leaves: int, override: int | None = None) -> int:
        """Leaves searched per query for a model with ``num_leaves`` leaves."""
        k = override if override is not None else self.leaves_to_search
        if k is None:
            k = max(min(num_leaves, 4), math.ceil(num_leaves * 4 / 351))
        return max(1, min(k, num_leaves))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> IndexConfig:
        if "num_leaves" in data and "leaves_per_sqrt_n" not in data:
            # Stored before the factor existed: those catalogs were trained with sqrt(N) leaves,
            # and the new default would make their next build retrain everything.
            data = {**data, "leaves_per_sqrt_n": 1.0}
        return from_known_fields(cls, data)

    def replace(self, **changes) -> IndexConfig:
        data = self.to_json()
        data.update({k: v for k, v in changes.items() if v is not None})
        return IndexConfig.from_json(data)
