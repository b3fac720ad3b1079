"""Tokenizers that must equal the Task Library's: WordPiece (BERT route) and the regex word tokenizer."""

from pathlib import Path

import numpy as np

from scannlite.plugin.dual_encoder import wordpiece, words

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"


def test_wordpiece_matches_hugging_face_ids_on_reference_sentences():
    ref = np.load(FIXTURE)
    for sentence, hf_ids, length in zip(ref["sentences"], ref["input_ids"], ref["lengths"]):
        ours = wordpiece.encode([str(sentence)], 64)
        assert list(ours["ids"][0][:length]) == list(hf_ids[:length]), sentence
        assert ours["mask"][0].sum() == length and not ours["segment_ids"].any()


def test_wordpiece_lowercases_ascii_splits_punctuation_and_truncates():
    vocab = wordpiece.load_vocab(str(wordpiece.minilm_vocab_path()))
    assert wordpiece.tokenize("Hello, WORLD!", vocab) == ["hello", ",", "world", "!"]
    assert wordpiece.tokenize("unaffable", vocab)[0] == "una"
    ids = wordpiece.encode(["word " * 100], 8)["ids"][0]
    assert ids[0] == vocab["[CLS]"] and ids[-1] == vocab["[SEP]"] and len(ids) == 8


def test_regex_tokenizer_keeps_case_and_apostrophes_ascii_word_chars_only():
    assert words.tokenize("Red apple, it's RED!") == ["Red", "apple", "it's", "RED"]
    assert words.tokenize("  café_au-lait 42  ") == ["caf", "_au", "lait", "42"]  # RE2's \w is ASCII
    assert words.tokenize("...") == []


def test_word_vocab_file_and_ids(tmp_path):
    tokens = words.build_vocab(["red apple", "red car", "Apple pie"])
    assert tokens[:4] == ["<PAD>", "<START>", "<UNKNOWN>", "red"]
    words.write_vocab(tokens, tmp_path / "v.txt")
    assert (tmp_path / "v.txt").read_text().splitlines()[0] == "<PAD> 0"
    vocab = words.read_vocab(tmp_path / "v.txt")
    ids = words.encode(["red Apple banana", "red red red red red"], vocab, 4)
    assert list(ids[0]) == [1, vocab["red"], vocab["Apple"], 2]  # <START>, known, known, <UNKNOWN>
    assert list(ids[1]) == [1] + [vocab["red"]] * 3  # truncated to the input length
    assert list(words.encode([""], vocab, 3)[0]) == [1, 0, 0]  # padded with <PAD>
