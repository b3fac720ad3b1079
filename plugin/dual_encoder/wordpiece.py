"""BERT WordPiece tokenization as the Task Library's BertPreprocessor does it, in Python.

Why not the Hugging Face tokenizer: training and Keras inference must feed the MiniLM tower
exactly the ids the phone will feed it. The Task Library (tflite-support 0.4.4,
``bert_preprocessor.cc`` + ``bert_tokenizer.cc``) does:

1. lowercase **ASCII letters only** (no accent stripping, unlike Hugging Face's tokenizer);
2. split on whitespace (dropped) and on punctuation, each punctuation character becoming a
   token: ASCII ``!-/ :-@ [-` {-~``, any Unicode punctuation (category P*), CJK ideographs;
3. WordPiece each piece: greedy longest match from the left, continuations prefixed ``##``,
   a piece that cannot be covered (or longer than 100 bytes) becomes ``[UNK]``;
4. ``[CLS]`` + the first ``seq_len - 2`` pieces + ``[SEP]``, padded with id 0; mask 1 on real
   tokens; segment ids all 0.
For plain English text this equals Hugging Face's ``BertTokenizer(do_lower_case=True)``.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

MAX_BYTES_PER_TOKEN = 100


def minilm_vocab_path() -> Path:
    from scannlite.plugin.dual_encoder.minilm_files import model_dir

    return model_dir() / "vocab.txt"


@lru_cache(maxsize=4)
def load_vocab(path: str) -> dict[str, int]:
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def _is_split_char(ch: str) -> bool:
    o = ord(ch)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    if unicodedata.category(ch).startswith("P"):
        return True
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or 0xF900 <= o <= 0xFAFF


def basic_split(text: str) -> list[str]:
    lowered = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)
    pieces: list[str] = []
    for chunk in lowered.split():
        current = ""
        for ch in chunk:
            if _is_split_char(ch):
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(ch)
            else:
                current += ch
        if current:
            pieces.append(current)
    return pieces


def wordpiece(word: str, vocab: dict[str, int]) -> list[str]:
    if len(word.encode("utf-8")) > MAX_BYTES_PER_TOKEN:
        return ["[UNK]"]
    out: list[str] = []
    start = 0
    while start < len(word):
        end = len(word)
        match = None
        while end > start:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                match = candidate
                break
            end -= 1
        if match is None:
            return ["[UNK]"]
        out.append(match)
        start = end
    return out


def tokenize(text: str, vocab: dict[str, int]) -> list[str]:
    return [piece for word in basic_split(text) for piece in wordpiece(word, vocab)]


def encode(texts: list[str], seq_len: int, vocab_path: str | Path | None = None) -> dict[str, np.ndarray]:
    """``{"ids", "mask", "segment_ids"}``, each int32 (len(texts), seq_len)."""
    vocab = load_vocab(str(vocab_path or minilm_vocab_path()))
    ids = np.zeros((len(texts), seq_len), dtype=np.int32)
    mask = np.zeros((len(texts), seq_len), dtype=np.int32)
    for row, text in enumerate(texts):
        pieces = ["[CLS]"] + tokenize(text, vocab)[: seq_len - 2] + ["[SEP]"]
        ids[row, : len(pieces)] = [vocab.get(p, vocab["[UNK]"]) for p in pieces]
        mask[row, : len(pieces)] = 1
    return {"ids": ids, "mask": mask, "segment_ids": np.zeros_like(ids)}
