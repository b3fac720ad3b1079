"""The device's lookup table computed a group of subspaces at a time equals, bit for bit, the
one-subspace-at-a-time float32 evaluation it replaces (the order the device's Eigen code sums in)."""

import numpy as np
import pytest

from scannlite.store.index.device_search import F32, DeviceIndex, lookup_table, row_squared_norms


def one_subspace_at_a_time(index: DeviceIndex, q: np.ndarray) -> np.ndarray:
    rows, start = [], 0
    for book in index.codebooks:
        w = book.shape[1]
        qs = q[start : start + w].astype(F32)
        dot = book[:, 0] * qs[0]
        for j in range(1, w):
            dot = dot + book[:, j] * qs[j]
        if index.distance == "dot":
            rows.append(-dot)
        else:
            qn = F32(0)
            for j in range(w):
                qn = F32(qn + qs[j] * qs[j])
            rows.append((qn + row_squared_norms(book)) - F32(2) * dot)
        start += w
    return np.stack(rows).astype(F32)


@pytest.mark.parametrize("distance", ["dot", "l2"])
@pytest.mark.parametrize("widths", [[1] * 16, [3, 3, 3, 1], [2] * 5 + [1], [4, 4]])
def test_grouped_table_is_bit_identical(distance, widths):
    rng = np.random.default_rng(len(widths))
    books = [rng.standard_normal((256, w)).astype(np.float32) for w in widths]
    dim = sum(widths)
    index = DeviceIndex(distance, np.zeros((1, dim), np.float32), np.array([0, 0]), books, None, None)
    for _ in range(5):
        q = rng.standard_normal(dim).astype(np.float32)
        assert lookup_table(index, q).tobytes() == one_subspace_at_a_time(index, q).tobytes()
