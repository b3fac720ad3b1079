"""LiteRT 2.3.0 with XNNPACK's other interpreter flags (latest features, no delegate clustering): any closer to the Task Library?"""

import zipfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from shared import OUT, D, inputs, wordpiece

wp = wordpiece()
texts, images = inputs()


def run(path, text, **kw):
    it = Interpreter(model_path=path, num_threads=1, **kw)
    it.allocate_tensors()
    ins = {d["name"].split("serving_default_")[-1].split(":")[0]: d for d in it.get_input_details()}
    out = it.get_output_details()[0]["index"]
    rows = []
    if text:
        with zipfile.ZipFile(path) as z:
            open("/tmp/vocab_flags.txt", "wb").write(z.read("vocab.txt"))
        enc = wp.encode(texts, 32, "/tmp/vocab_flags.txt")
        for r in range(len(texts)):
            for k in ("ids", "mask", "segment_ids"):
                it.set_tensor(ins[k]["index"], enc[k][r : r + 1])
            it.invoke()
            rows.append(it.get_tensor(out)[0].copy())
    else:
        (d,) = ins.values()
        for im in images:
            it.set_tensor(
                d["index"],
                (np.float32(np.float32(1) / np.float32(127.5)) * (im.astype(np.float32) - np.float32(127.5)))[None],
            )
            it.invoke()
            rows.append(it.get_tensor(out)[0].copy())
    return np.stack(rows)


for tower, path, text in [
    ("text_int8", f"{D}/towers-text-int8-weights/text_embedder.tflite", True),
    ("text_float", f"{D}/towers-text-none/text_embedder.tflite", True),
    ("image", f"{D}/towers/image_embedder.tflite", False),
]:
    ref = np.load(f"{OUT}/ref_{tower}_l20.npy")
    for kw in (
        {"experimental_default_delegate_latest_features": True},
        {"experimental_disable_delegate_clustering": True},
        {"experimental_disable_delegate_node_fusion": True},
    ):
        v = run(path, text, **kw)
        print(
            f"{tower:10s} {list(kw)[0]:48s} rows equal {int(np.all(v == ref, axis=1).sum())}/{len(ref)} max {np.abs(v - ref).max():.2e}",
            flush=True,
        )
