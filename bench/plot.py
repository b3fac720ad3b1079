"""docs/recall.png: recall@10 against leaves searched, one line per method.

matplotlib with the Agg backend (no display); the figure is written once per run from the
curves the build-and-recall benchmark measured.
"""

from __future__ import annotations

from pathlib import Path


def recall_png(
    curves: dict[str, dict[int, float]], path: Path, *, title: str, target: float | None = 0.85, target_leaves: int = 4
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    markers = "osD^v"
    for i, (name, curve) in enumerate(curves.items()):
        xs = sorted(curve)
        ax.plot(xs, [curve[x] for x in xs], marker=markers[i % len(markers)], label=name)
    if target is not None:
        ax.axhline(
            target, color="grey", linestyle=":", linewidth=1, label=f"target: {target} at {target_leaves} leaves"
        )
    xs = sorted({x for c in curves.values() for x in c})
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("leaves searched (FAISS: nprobe)")
    ax.set_ylabel("recall@10 against exact search")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def codes_png(plot: dict, path: Path) -> Path:
    """Recall against codes scanned per query (log scale), one line per curve; ``plot["labels"]``
    (x -> text, e.g. the leaves searched) annotates the first curve's points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    markers = "osD^v<>p*hX"
    colors = plt.get_cmap("tab20").colors  # 20 distinct colours: no two curves share one
    for i, (name, curve) in enumerate(plot["curves"].items()):
        xs = sorted(curve)
        ax.plot(
            xs,
            [curve[x] for x in xs],
            marker=markers[i % len(markers)],
            markersize=4,
            label=name,
            linewidth=2.4 if i == 0 else 1.3,
            color="black" if i == 0 else colors[(2 * i - 2) % 20 if i <= 10 else (2 * i - 21) % 20],
        )
        if i == 0:
            for x, text in (plot.get("labels") or {}).items():
                if x in curve:
                    ax.annotate(text, (x, curve[x]), textcoords="offset points", xytext=(-4, 6), fontsize=7)
    for y in plot.get("hlines", ()):
        ax.axhline(y, color="grey", linestyle=":", linewidth=1)
    if plot.get("vline"):
        ax.axvline(plot["vline"], color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(plot.get("xlabel", "codes scanned per query (mean over queries)"))
    ax.set_ylabel("recall@10 against exact search")
    ax.set_title(plot["title"], fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
