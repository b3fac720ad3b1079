"""What a build reports: the snapshot it published (or that nothing needed building), why it retrained or not,
and the recall it states, as ``scannlite build`` prints it (docs/queries.md for the recall lines).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scannlite.store.index.build_recall import target_estimate
from scannlite.store.index.recall_estimate import RecallEstimate


@dataclass
class BuildResult:
    version: int
    published: bool
    retrained: bool
    reasons: list[str]
    count: int
    encoded: int  # vectors assigned and encoded by this build
    num_leaves: int
    leaves_to_search: int | None
    seconds: float
    health: dict = field(default_factory=dict)
    recipe: str | None = None
    recall: RecallEstimate | None = None
    leaves_note: str | None = None  # why leaves_to_search is what it is, when it is not plain
    lookup_type: str = "FLOAT"
    query_recall: RecallEstimate | None = None  # measured on the catalog's query sample, when it has one

    @property
    def stated_recall(self) -> float | None:
        """Recall at the leaves searched, on the estimate the target was met on (the query sample's when it counts)."""
        chosen, _ = target_estimate(self.recall, self.query_recall)
        return chosen.at(self.leaves_to_search) if chosen is not None and self.leaves_to_search else None

    def lines(self) -> list[str]:
        if not self.published:
            return [f"snapshot {self.version} is up to date ({self.count} items); nothing to build"]
        what = "retrained the partitions" if self.retrained else "incremental build"
        out = [
            f"snapshot {self.version}: {self.count} items, {self.num_leaves} leaves"
            + (f", {self.leaves_to_search} searched" if self.leaves_to_search else "")
            + f" ({what}, {self.encoded} vectors encoded, {self.seconds:.1f} s)"
        ]
        if self.recall is not None and self.leaves_to_search:
            r = self.recall
            how = (
                f"reused from snapshot {r.reused_from}, little changed since"
                if r.reused_from is not None
                else f"estimated on {r.sample} of its vectors in {r.seconds:.1f} s"
            )
            out.append(
                f"  recall@{r.k} {r.at(self.leaves_to_search):.3f} at {self.leaves_to_search} of "
                f"{self.num_leaves} leaves for queries like your items ({how})"
            )
            q = self.query_recall
            if q is not None:
                at = q.at(self.leaves_to_search)
                err = (
                    q.stderr[q.ladder.index(max(n for n in q.ladder if n <= self.leaves_to_search))] if q.stderr else 0
                )
                qhow = (
                    f"reused from snapshot {q.reused_from}"
                    if q.reused_from is not None
                    else f"measured in {q.seconds:.1f} s"
                )
                out.append(
                    f"  recall@{q.k} {at:.3f} ± {err:.3f} at {self.leaves_to_search} leaves for your queries "
                    f"({q.sample} sampled, {qhow})"
                )
            if self.lookup_type != "FLOAT":
                # The estimate ranks codes as FLOAT tables do; fixed-point tables round every
                # entry, which loses a little more (docs/benchmarks.md: INT8 against FLOAT).
                out.append(
                    f"  (estimated with FLOAT lookup tables; this snapshot's {self.lookup_type} tables "
                    "give somewhat less)"
                )
        if self.leaves_note:
            out.append(f"  {self.leaves_note}")
        if self.retrained:
            out += [f"  why: {r}" for r in self.reasons]
            if self.recipe:
                out.append(f"  recipe: {self.recipe}")
        elif self.count:
            h = self.health
            out.append(
                f"  why not retrain: {h.get('untrained', 0)} of {h.get('live', 0)} vectors added since "
                f"training, imbalance {h.get('imbalance', 1.0):.2f}; every health check passed"
            )
        return out
