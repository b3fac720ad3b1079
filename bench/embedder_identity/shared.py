"""What the embedder-identity scripts share: where the demo's towers and the inputs are, the inputs
themselves, scannlite's WordPiece (loaded by path: the scratch environments have no scannlite
installed) and the Task Library's L2 normalisation in float32 (docs/python-versions.md, "Bit for bit")."""

import importlib.util
import json
import os

import numpy as np

D = os.environ.get("DEMO_OUT", "demo-output")
OUT = os.environ.get("IDENTITY_OUT", "/tmp/embedder_identity")
TOWERS = {
    "text_int8": f"{D}/towers-text-int8-weights/text_embedder.tflite",
    "text_int8_bundle": f"{D}/towers/text_embedder.tflite",
    "text_float": f"{D}/towers-text-none/text_embedder.tflite",
    "image": f"{D}/towers/image_embedder.tflite",
}


def inputs():
    """(texts, images at 224 x 224) as prep_inputs.py wrote them."""
    return json.load(open(f"{OUT}/texts.json")), np.load(f"{OUT}/images224.npy")


def wordpiece():
    """plugin/dual_encoder/wordpiece.py as a module."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "plugin", "dual_encoder", "wordpiece.py")
    spec = importlib.util.spec_from_file_location("wordpiece", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tl_l2(v):
    """tflite-support EmbeddingPostprocessor::NormalizeFeatureVector, float32 arithmetic."""
    s = np.float32(0)
    for x in v:
        s = np.float32(s + np.float32(x * x))
    if s == 0:
        return v
    inv = np.float32(np.float32(1) / np.sqrt(s, dtype=np.float32))
    return (v * inv).astype(np.float32)
