"""The word tower's tokenizer: the Task Library's RegexTokenizer, reproduced in Python.

Why reproduce it exactly: the converted text tower receives ids that the Task Library makes
on the phone (``regex_tokenizer.cc`` + ``regex_preprocessor.cc``); training on anything
else would quietly mismatch. What it does:

* split on the delimiter regex ``[^\\w\\']+`` with RE2, where ``\\w`` is ASCII only
  (``[0-9A-Za-z_]``), so Python's ``re`` needs ``re.ASCII``; empty pieces are dropped;
* it does **not** lowercase: "Apple" and "apple" are different tokens;
* ids: ``<START>`` first if the vocab has it, then each token's id (``<UNKNOWN>``'s if absent),
  truncated to the input length and padded with ``<PAD>``'s id.

Vocab file format (what the Task Library reads): one ``token index`` per line.
Our vocab: ``<PAD> 0``, ``<START> 1``, ``<UNKNOWN> 2``, then training-caption tokens by
falling frequency (ties alphabetical), at most ``max_size`` (default 8,000: more words cost
64 floats each, fewer map rare words to ``<UNKNOWN>``) and at least ``min_count`` times seen
(default 1: OpenMoji names are rare words by nature).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

DELIM_PATTERN = r"[^\w\']+"
_DELIM = re.compile(DELIM_PATTERN, re.ASCII)
PAD, START, UNKNOWN = "<PAD>", "<START>", "<UNKNOWN>"


def tokenize(text: str) -> list[str]:
    return [t for t in _DELIM.split(text) if t]


def build_vocab(captions: list[str], max_size: int = 8000, min_count: int = 1) -> list[str]:
    counts = Counter(tok for caption in captions for tok in tokenize(caption))
    ranked = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
    return [PAD, START, UNKNOWN] + ranked[: max(0, max_size - 3)]


def write_vocab(tokens: list[str], path: str | Path) -> None:
    Path(path).write_text("".join(f"{tok} {i}\n" for i, tok in enumerate(tokens)), encoding="utf-8")


def read_vocab(path: str | Path) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            token, _, index = line.rpartition(" ")
            vocab[token] = int(index)
    return vocab


def encode(texts: list[str], vocab: dict[str, int], seq_len: int) -> np.ndarray:
    """int32 (len(texts), seq_len) ids, exactly as the Task Library fills its input tensor."""
    out = np.full((len(texts), seq_len), vocab[PAD], dtype=np.int32)
    unknown = vocab[UNKNOWN]
    for row, text in enumerate(texts):
        ids = ([vocab[START]] if START in vocab else []) + [vocab.get(t, unknown) for t in tokenize(text)]
        ids = ids[:seq_len]
        out[row, : len(ids)] = ids
    return out
