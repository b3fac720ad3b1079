"""The snapshot page's recall-versus-leaves curve, drawn as an inline SVG image.

Why SVG drawn here: the page must work read-only and offline, without a plotting library in
the serving process; every value drawn is a number the store computed, so the markup holds
no user text.
"""

from __future__ import annotations

import math

WIDTH, HEIGHT, PAD = 420, 220, 40


def recall_svg(
    ladder: list[int],
    recall: list[float],
    chosen: int | None,
    target: float | None,
    k: int,
    queries: list[float] | None = None,
) -> str:
    """Recall@k (0..1, y) against leaves searched (log2 scale, x); the chosen leaves marked. ``queries``: the
    same ladder measured on the catalog's query sample, drawn as a second (green) line."""
    top = max(math.log2(max(ladder)), 1.0)

    def x(leaves: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * math.log2(leaves) / top

    def y(r: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * r

    points = " ".join(f"{x(n):.1f},{y(r):.1f}" for n, r in zip(ladder, recall))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="scannlite-recall" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="estimated recall@{k} against leaves searched">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<line x1="{PAD}" y1="{y(0)}" x2="{WIDTH - PAD}" y2="{y(0)}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="{y(0)}" x2="{PAD}" y2="{y(1)}" stroke="#999"/>',
    ]
    for r in (0.0, 0.5, 0.9, 1.0):
        parts.append(f'<text x="{PAD - 6}" y="{y(r) + 4:.1f}" font-size="10" text-anchor="end">{r:.1f}</text>')
    for n in ladder:
        parts.append(f'<text x="{x(n):.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">{n}</text>')
    if target is not None:
        parts.append(
            f'<line x1="{PAD}" y1="{y(target):.1f}" x2="{WIDTH - PAD}" y2="{y(target):.1f}" '
            f'stroke="#c60" stroke-dasharray="4 3"/>'
        )
    parts.append(f'<polyline points="{points}" fill="none" stroke="#0366d6" stroke-width="2"/>')
    if queries is not None:
        qpoints = " ".join(f"{x(n):.1f},{y(r):.1f}" for n, r in zip(ladder, queries))
        parts.append(
            f'<polyline class="queries" points="{qpoints}" fill="none" stroke="#2a7" stroke-width="2" '
            'stroke-dasharray="6 3"/>'
        )
        for n, r in zip(ladder, queries):
            parts.append(
                f'<circle cx="{x(n):.1f}" cy="{y(r):.1f}" r="3" fill="#2a7"><title>{n} leaves: recall {r:.3f} '
                "for your queries</title></circle>"
            )
    for n, r in zip(ladder, recall):
        mark = 'r="5" fill="#c60"' if n == chosen else 'r="3" fill="#0366d6"'
        parts.append(
            f'<circle cx="{x(n):.1f}" cy="{y(r):.1f}" {mark}><title>{n} leaves: recall {r:.3f}</title></circle>'
        )
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">leaves searched</text>')
    parts.append(
        f'<text x="12" y="{HEIGHT / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {HEIGHT / 2})">recall@{k}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
