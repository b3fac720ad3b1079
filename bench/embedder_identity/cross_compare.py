"""Cross-checks on saved vectors: LiteRT 2.3.0 on 3.11/3.12/3.13 against each other, LiteRT vs MediaPipe 1.2.2,
and every candidate's distance from the Task Library in ulps and cosine."""

import glob
import os

import numpy as np
from shared import OUT


def ulps(a, b):
    ai, bi = a.view(np.int32).astype(np.int64), b.view(np.int32).astype(np.int64)
    ai = np.where(ai < 0, -(ai & 0x7FFFFFFF), ai)
    bi = np.where(bi < 0, -(bi & 0x7FFFFFFF), bi)
    return np.abs(ai - bi)


for tower in ["text_int8", "text_int8_bundle", "text_float", "image"]:
    ref = np.load(f"{OUT}/ref_{tower}_l20.npy")
    norm = "tl" if tower == "image" else "-"
    a = {v: np.load(f"{OUT}/vec_litert-py{v}_{tower}_AUTO_1_{norm}.npy") for v in (311, 312, 313)}
    print(f"{tower}: LiteRT AUTO 3.11==3.12==3.13: {np.array_equal(a[311], a[312]) and np.array_equal(a[311], a[313])}")
    mp = np.load(f"{OUT}/vec_mp313_{tower}_l20.npy")
    lr_mp = np.load(f"{OUT}/vec_litert-py313_{tower}_AUTO_1_{'mp' if tower == 'image' else '-'}.npy")
    print(
        f"  LiteRT AUTO (MediaPipe's normalisation for the image) == MediaPipe: {np.array_equal(lr_mp, mp)}"
        f" ({int(np.all(lr_mp == mp, axis=1).sum())}/{len(mp)} rows)"
    )
    for f in sorted(glob.glob(f"{OUT}/vec_*_{tower}_*.npy")) + [f"{OUT}/vec_mp313_{tower}_l20.npy"]:
        if "_l21" in f or (tower == "text_int8" and "_bundle_" in f):
            continue
        v = np.load(f)
        u = ulps(v, ref)
        cos = (v * ref).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(ref, axis=1)
        print(
            f"  {os.path.basename(f)[4:-4]:62s} rows equal {int(np.all(v == ref, axis=1).sum()):2d}/{len(ref)}"
            f" elems equal {100 * (v == ref).mean():5.1f}%  max ulps {int(u.max()):4d}  min cos {cos.min():.8f}"
        )
