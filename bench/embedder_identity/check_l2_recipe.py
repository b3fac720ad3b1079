"""Does tl_l2 (float32 sequential sum, 1/sqrt, multiply) reproduce the Task Library's l2_normalize on its own raw outputs?"""

import numpy as np
from shared import OUT, tl_l2


def np_l2(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


for t in ["text_int8", "text_int8_bundle", "text_float", "image"]:
    a, b = np.load(f"{OUT}/ref_{t}_l20.npy"), np.load(f"{OUT}/ref_{t}_l21.npy")
    for name, f in (("tl_l2", tl_l2), ("numpy v/norm", np_l2)):
        c = np.stack([f(r) for r in a])
        print(
            f"{t:17s} {name:13s} identical rows {int(np.all(c == b, axis=1).sum())}/{len(b)} max {np.abs(c - b).max():.2e}"
        )
