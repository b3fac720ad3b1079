"""all-MiniLM-L6-v2 as a ready Task Library text embedder (runs in a TensorFlow worker process).

The plain sentence model, as sentence-transformers defines it: BERT encoder, mean pooling over
real tokens, L2 normalisation, 384-d (:mod:`.minilm`). Converted with builtin ops only, batch 1,
``seq_len`` tokens, the BERT route's metadata (WordPiece vocab packed in the file), and
quantised as :func:`.conversion.convert_function` does. Returns the file's bytes together with
Keras' vectors of the probe sentences, so the caller can check the file in a device process
(docs/embedders.md).
"""

from __future__ import annotations

import time

import numpy as np

from scannlite.plugin.dual_encoder.minilm_files import model_dir


def run_minilm_conversion(seq_len: int, quantize: str | None, probe_texts: list[str]) -> dict:
    import tensorflow as tf

    from scannlite.plugin.dual_encoder import minilm, tflite_metadata
    from scannlite.plugin.dual_encoder.conversion import convert_function
    from scannlite.plugin.dual_encoder.wordpiece import encode

    started = time.perf_counter()
    model = minilm.pretrained(seq_len)
    spec = [tf.TensorSpec([1, seq_len], tf.int32, name=n) for n in ("ids", "mask", "segment_ids")]

    @tf.function(input_signature=spec)
    def fn(ids, mask, segment_ids):
        return {"embedding": model({"ids": ids, "mask": mask, "segment_ids": segment_ids}, training=False)}

    data = tflite_metadata.bert_text_metadata(
        convert_function(fn, model, quantize),
        minilm.HIDDEN,
        model_dir() / "vocab.txt",
        name="all-MiniLM-L6-v2 sentence embedder",
        description=(
            f"sentence-transformers/all-MiniLM-L6-v2: mean pooling, L2-normalised 384-d; {seq_len} tokens; "
            f"weights {quantize or 'float32'}."
        ),
        licenses="Apache-2.0",
    )
    feats = encode(probe_texts, seq_len)
    keras_vectors = np.asarray(model(feats, training=False), dtype=np.float32)
    return {"model": data, "keras": keras_vectors, "seconds": round(time.perf_counter() - started, 2)}
