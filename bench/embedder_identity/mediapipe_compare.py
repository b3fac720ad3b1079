"""MediaPipe 1.2.2 TextEmbedder/ImageEmbedder (Python 3.13) on the same inputs: vs the Task Library, and saved for
comparison with LiteRT (out/vec_mp313_<tower>_l2<0|1>.npy)."""

import time

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python.core.base_options import BaseOptions
from mediapipe.tasks.python.text import text_embedder
from mediapipe.tasks.python.vision import image_embedder
from shared import OUT, TOWERS, inputs

texts, images = inputs()
for tower, path in TOWERS.items():
    for l2 in (0, 1):
        t0 = time.perf_counter()
        if tower.startswith("text"):
            e = text_embedder.TextEmbedder.create_from_options(
                text_embedder.TextEmbedderOptions(
                    base_options=BaseOptions(model_asset_path=path), l2_normalize=bool(l2)
                )
            )
            v = np.stack([np.asarray(e.embed(t).embeddings[0].embedding, np.float32) for t in texts])
        else:
            e = image_embedder.ImageEmbedder.create_from_options(
                image_embedder.ImageEmbedderOptions(
                    base_options=BaseOptions(model_asset_path=path), l2_normalize=bool(l2)
                )
            )
            v = np.stack(
                [
                    np.asarray(
                        e.embed(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(im)))
                        .embeddings[0]
                        .embedding,
                        np.float32,
                    )
                    for im in images
                ]
            )
        ms = (time.perf_counter() - t0) / len(v) * 1e3
        np.save(f"{OUT}/vec_mp313_{tower}_l2{l2}.npy", v)
        ref = np.load(f"{OUT}/ref_{tower}_l2{l2}.npy")
        print(
            f"{tower:17s} l2={l2} vs TaskLib identical rows {int(np.all(v == ref, axis=1).sum())}/{len(ref)} max {np.abs(v - ref).max():.2e}  {ms:.1f} ms/embed (incl. load)",
            flush=True,
        )
