"""The Task Library's image resize (tflite-support 0.4.4 on x86-64: libyuv's ARGB bilinear scaler), in numpy.

MediaPipe's ImageEmbedder resizes with another filter, so on Python 3.12+ (no tflite-support) an
image not already at the tower's input size is resized here first and MediaPipe then embeds it
unresized: for uint8-input towers the vectors then equal the Task Library's bit for bit
(tests/test_python_versions.py compares the two on every 3.11 run; docs/python-versions.md). The fixed-point rules below were found by
measurement against the Task Library: 16.16 source steps, 7-bit column and 8-bit row weights,
2x2 box averages (rounded twice) for even integer factors, nearest pixels for odd ones, and rows
only where the width is unchanged.
"""

from __future__ import annotations

import numpy as np


def _step(src: int, dst: int) -> tuple[int, int]:
    """(start, step) in 16.16 fixed point along one axis."""
    if dst <= src:
        step = (src << 16) // dst
        return (step >> 1) - 32768, step  # sample at pixel centres
    if src > 1 and dst > 1:
        return 0, ((src << 16) - 0x00010001) // (dst - 1)  # upsampling: first and last pixels kept
    return 0, 0


def _columns(row: np.ndarray, width: int, x: int, dx: int) -> np.ndarray:
    xs = x + dx * np.arange(width, dtype=np.int64)
    xi, xf = xs >> 16, ((xs >> 9) & 0x7F)[:, None]
    last = row.shape[0] - 1
    return (row[np.clip(xi, 0, last)] * (0x7F ^ xf) + row[np.clip(xi + 1, 0, last)] * xf) >> 7


def _rows(r0: np.ndarray, r1: np.ndarray, f: int) -> np.ndarray:
    if f == 0:
        return r0.copy()
    if f == 128:
        return (r0 + r1 + 1) >> 1
    return (r0 * (256 - f) + r1 * f + 128) >> 8


def resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """``rgb`` (h, w, 3) uint8 resized to (height, width, 3) as the Task Library's ImageEmbedder does."""
    src = np.asarray(rgb).astype(np.int64)
    sh, sw = src.shape[:2]
    if (sh, sw) == (height, width):
        return np.asarray(rgb, dtype=np.uint8)
    x, dx = _step(sw, width)
    y, dy = _step(sh, height)
    if dx and dy and ((dx | dy) & 0xFFFF) == 0:
        r = (y >> 16) + (dy >> 16) * np.arange(height)
        c = (x >> 16) + (dx >> 16) * np.arange(width)
        if not (dx & 0x10000) and not (dy & 0x10000):  # even integer factors: a 2x2 box
            left = (src[r][:, c] + src[r + 1][:, c] + 1) >> 1
            right = (src[r][:, c + 1] + src[r + 1][:, c + 1] + 1) >> 1
            return ((left + right + 1) >> 1).astype(np.uint8)
        if (dx & 0x10000) and (dy & 0x10000):  # odd integer factors: the nearest pixel
            return src[r][:, c].astype(np.uint8)
    out = np.empty((height, width, 3), np.int64)
    if dx == 0x10000 and (x & 0xFFFF) == 0:  # width unchanged: rows only
        cols = src[:, x >> 16 : (x >> 16) + width]
        max_y = ((sh - 1) << 16) - 1 if sh > 1 else 0
        for j in range(height):
            yy = min(y + j * dy, max_y)
            yi = yy >> 16
            out[j] = _rows(cols[yi], cols[min(yi + 1, sh - 1)], (yy >> 8) & 255)
        return out.astype(np.uint8)
    max_y = (sh - 1) << 16
    for j in range(height):
        yy = min(y + j * dy, max_y)
        yi, f = yy >> 16, (yy >> 8) & 255
        below = min(yi + 1, sh - 1)
        if dy < 65536:  # upsampling rows: columns first, then rows
            out[j] = _rows(_columns(src[yi], width, x, dx), _columns(src[below], width, x, dx), f)
        else:  # downsampling rows: rows first, then columns
            out[j] = _columns(_rows(src[yi], src[below], f), width, x, dx)
    return out.astype(np.uint8)
