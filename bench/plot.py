"""docs/recall.png: recall@10 against leaves searched, one line per method.

matplotlib with the Agg backend (no display); the figure is written once per run from the
curves the build-and-recall benchmark measured.
"""
from __future__ import annotations

from pathlib import Path


def recall_png(curves: dict[str, dict[int, float]], path: Path, *, title: str, target: float | None = 0.85,
               target_leaves: int = 4) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    markers = "osD^v"
    for i, (name, curve) in enumerate(curves.items()):
        xs = sorted(curve)
        ax.plot(xs, [curve[x] for x in xs], marker=markers[i % len(markers)], label=name)
    if target is not None:
        ax.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target: {target} at {target_leaves} leaves")
    xs = sorted({x for c in curves.values() for x in c})
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("leaves searched (FAISS: nprobe)")
    ax.set_ylabel("recall@10 against exact search")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
