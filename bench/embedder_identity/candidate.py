"""Embed the shared inputs with a plain TFLite interpreter and compare with the Task Library's vectors.

usage: python candidate.py litert|tf|tflrt [label]   (litert: ai_edge_litert.interpreter; tf: tf.lite.Interpreter;
       tflrt: tflite_runtime.interpreter)
Text: scannlite's WordPiece (plugin/dual_encoder/wordpiece.py, loaded by path) with the vocab packed in the model.
Image: the Task Library's float normalisation, inv_std * (pixel - mean) with inv_std = 1.0f / 127.5f.
L2 (EmbeddingOptions.l2_normalize): the Task Library's NormalizeFeatureVector, float32, sequential sum.
Writes out/result_<label>.json."""

import io
import json
import os
import platform
import sys
import time
import zipfile

import numpy as np
from shared import OUT, TOWERS, inputs, tl_l2, wordpiece

kind = sys.argv[1]
label = sys.argv[2] if len(sys.argv) > 2 else f"{kind}-py{sys.version_info.major}{sys.version_info.minor}"
if kind == "litert":
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    version = "ai-edge-litert " + getattr(ai_edge_litert, "__version__", "2.3.0")
elif kind == "tflrt":
    import tflite_runtime
    from tflite_runtime.interpreter import Interpreter, OpResolverType

    version = "tflite-runtime " + tflite_runtime.__version__
else:
    import tensorflow as tf

    Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    version = "tensorflow " + tf.__version__

wp = wordpiece()

texts, images = inputs()


NORMS = {
    "tl": lambda p: np.float32(np.float32(1) / np.float32(127.5)) * (p.astype(np.float32) - np.float32(127.5)),
    "div": lambda p: (p.astype(np.float32) - np.float32(127.5)) / np.float32(127.5),
    "mp": lambda p: p.astype(np.float32) * np.float32(2 / 255) - np.float32(1),
}


def vocab_of(path):
    data = open(path, "rb").read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        tmp = f"/tmp/vocab_{abs(hash(path))}.txt"
        open(tmp, "wb").write(z.read("vocab.txt"))
    return tmp


def run(path, kind_, resolver, threads, norm="tl"):
    it = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    ins = {d["name"].split("serving_default_")[-1].split(":")[0]: d for d in it.get_input_details()}
    out = it.get_output_details()[0]["index"]
    rows = []
    t0 = time.perf_counter()
    if kind_ == "text":
        seq = ins["ids"]["shape"][1]
        enc = wp.encode(texts, seq, vocab_of(path))
        for r in range(len(texts)):
            for k in ("ids", "mask", "segment_ids"):
                it.set_tensor(ins[k]["index"], enc[k][r : r + 1])
            it.invoke()
            rows.append(it.get_tensor(out)[0].copy())
    else:
        (d,) = ins.values()
        for im in images:
            it.set_tensor(d["index"], NORMS[norm](im)[None])
            it.invoke()
            rows.append(it.get_tensor(out)[0].copy())
    dt = (time.perf_counter() - t0) / len(rows) * 1e3
    return np.stack(rows), dt


def compare(v, ref):
    same = np.all(v == ref, axis=1)
    return {
        "identical_rows": int(same.sum()),
        "rows": len(ref),
        "all_equal": bool(np.array_equal(v, ref)),
        "max_abs_diff": float(np.abs(v.astype(np.float64) - ref).max()),
    }


results = {"candidate": version, "python": platform.python_version(), "runs": []}

resolvers = [
    OpResolverType.AUTO,
    OpResolverType.BUILTIN,
    OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    OpResolverType.BUILTIN_REF,
]
THREADS = (None, 1, 2)
if os.environ.get("QUICK"):  # the cheap subset: XNNPACK on (AUTO) and off, default and 1 thread
    resolvers = [OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES]
    THREADS = (None, 1)
for tower, path in TOWERS.items():
    k = "text" if tower.startswith("text") else "image"
    refs = {l2: np.load(f"{OUT}/ref_{tower}_l2{l2}.npy") for l2 in (0, 1)}
    for res in resolvers:
        for threads in THREADS:
            for norm in ["tl", "div", "mp"] if k == "image" else ["-"]:
                if (
                    k == "image"
                    and norm != "tl"
                    and (
                        threads != 1
                        or res not in (OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
                    )
                ):
                    continue
                v, ms = run(path, k, res, threads, norm if k == "image" else "tl")
                v1 = np.stack([tl_l2(r) for r in v])
                np.save(f"{OUT}/vec_{label}_{tower}_{res.name}_{threads}_{norm}.npy", v)
                row = {
                    "tower": tower,
                    "resolver": res.name,
                    "num_threads": threads,
                    "norm": norm,
                    "ms_per_embed": round(ms, 2),
                    "l2_off": compare(v, refs[0]),
                    "l2_on": compare(v1, refs[1]),
                }
                results["runs"].append(row)
                print(
                    f"{tower:17s} {res.name:34s} thr={str(threads):4s} norm={norm:3s} {ms:6.2f}ms "
                    f"l2off {row['l2_off']['identical_rows']}/{row['l2_off']['rows']} max {row['l2_off']['max_abs_diff']:.2e}  "
                    f"l2on {row['l2_on']['identical_rows']}/{row['l2_on']['rows']} max {row['l2_on']['max_abs_diff']:.2e}",
                    flush=True,
                )
json.dump(results, open(f"{OUT}/result_{label}.json", "w"), indent=1)
