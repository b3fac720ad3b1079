"""When an incremental build must retrain instead of reusing the partition model.

An incremental build assigns new vectors to the existing leaves and encodes them with the
existing codebooks; that is only as good as the model's fit to the *current* data. Each check
below compares the catalog now with the baseline recorded when the model was trained.

Thresholds, and why:

* ``MAX_UNTRAINED_SHARE = 0.30``: retrain once more than 30% of live vectors were not in the
  training set. Vectors from the training distribution are placed well (the incremental test
  shows recall within 0.02 of a rebuild after +10%), but the model then describes less than
  70% of what is searched, and drift the other checks miss (slow, spread out) accumulates.
* ``MAX_IMBALANCE_GROWTH = 1.25``: retrain when the expected number of codes a query scans
  (``imbalance`` = L * sum(n_i^2) / N^2) has grown by a quarter since training. Query time on
  the phone is proportional to it, and a leaf that swells means new data concentrated in a
  region the tree did not resolve. In-distribution additions barely move it; far-away
  clusters do (docs/design-figures.md, "Retraining thresholds").
* ``MAX_RESIDUAL_GROWTH = 1.25``: retrain when new vectors lie, on average, 1.25 times farther
  (squared) from their leaf centre than the training vectors did: a distribution shift, which
  lowers recall because neighbours straddle leaves; in-distribution additions stay well under it.
* ``MAX_QUANTIZATION_GROWTH = 3.0``: the same test for the codebooks' reconstruction error, with
  much more slack, because 256 centres per block fit their *training* vectors closely on small
  catalogs, so any new vector looks worse there. It is there to catch vectors the codebooks
  cannot represent at all (a new scale or new directions), which move it by far more.
* A model trained on a catalog too small for a tree (or for hashing) is replaced as soon as the
  catalog's size calls for a different number of leaves (a factor of 2 off) or kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scannlite.store.index.config import FLOAT_INDEX_BELOW, IndexConfig

MAX_UNTRAINED_SHARE = 0.30
MAX_IMBALANCE_GROWTH = 1.25
MAX_RESIDUAL_GROWTH = 1.25
MAX_QUANTIZATION_GROWTH = 3.0


@dataclass
class Health:
    live: int
    untrained: int
    imbalance: float
    new_residual: float | None = None
    new_quantization_error: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def retrain(self) -> bool:
        return bool(self.reasons)

    def as_dict(self) -> dict:
        return {
            "live": self.live,
            "untrained": self.untrained,
            "imbalance": round(self.imbalance, 4),
            "new_residual": self.new_residual,
            "new_quantization_error": self.new_quantization_error,
            "retrain_reasons": self.reasons,
        }


def assess(
    *,
    model_kind: str,
    model_leaves: int,
    model_dims_per_block,
    baseline: dict,
    config: IndexConfig,
    live: int,
    untrained: int,
    imbalance: float,
    new_residual: float | None,
    new_quantization_error: float | None,
) -> Health:
    h = Health(live, untrained, imbalance, new_residual, new_quantization_error)
    if live == 0:
        return h
    wanted_kind = "float" if live < FLOAT_INDEX_BELOW else "ah"
    if wanted_kind != model_kind:
        h.reasons.append(
            f"the catalog now holds {live} vectors: it needs a {'hashed' if wanted_kind == 'ah' else 'float'} index"
        )
    if model_kind == "ah" and model_dims_per_block != config.dims_per_block:
        h.reasons.append(f"dims_per_block changed from {model_dims_per_block} to {config.dims_per_block}")
    wanted = config.leaves_for(live) if wanted_kind == "ah" else 1
    # Compare with what training asked for: ScaNN may return fewer leaves than requested.
    requested = baseline.get("requested_leaves", model_leaves)
    if config.num_leaves is not None:
        if wanted != requested:
            h.reasons.append(f"num_leaves is set to {wanted}, the model was trained for {requested}")
    elif wanted >= 2 * requested or 2 * wanted <= requested:
        h.reasons.append(f"{live} vectors call for about {wanted} leaves, the model has {model_leaves}")
    share = untrained / live
    if share > MAX_UNTRAINED_SHARE:
        h.reasons.append(f"{share:.0%} of vectors were added since training (limit {MAX_UNTRAINED_SHARE:.0%})")
    base_imb = baseline.get("imbalance") or 1.0
    if model_leaves > 1 and imbalance > MAX_IMBALANCE_GROWTH * base_imb:
        h.reasons.append(
            f"partition imbalance grew from {base_imb:.2f} to {imbalance:.2f} (limit x{MAX_IMBALANCE_GROWTH})"
        )
    base_res = baseline.get("residual") or 0.0
    if new_residual is not None and base_res > 0 and new_residual > MAX_RESIDUAL_GROWTH * base_res:
        h.reasons.append(
            f"new vectors lie {new_residual / base_res:.2f}x farther from their leaf centres than "
            f"the training vectors (limit x{MAX_RESIDUAL_GROWTH})"
        )
    base_q = baseline.get("quantization_error") or 0.0
    if new_quantization_error is not None and base_q > 0 and new_quantization_error > MAX_QUANTIZATION_GROWTH * base_q:
        h.reasons.append(
            f"new vectors' quantization error is {new_quantization_error / base_q:.2f}x the "
            f"training error (limit x{MAX_QUANTIZATION_GROWTH})"
        )
    return h
