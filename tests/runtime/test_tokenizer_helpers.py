"""The Tokenizer helpers the pipelines use (num_tokens, convert_tokens_to_string,
Encoding.word_to_chars) against transformers' tokenizer on the same files."""

from __future__ import annotations

import warnings

import pytest

from convbert_export.errors import InvalidInputError
from convbert_export.tokenization import Tokenizer

from .conftest import save_tokenizer

TEXTS = ["john lives in paris", "unhappy dogs played , then ran !", "xyz hello qqq world", "  the  cat  "]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("tok")
    save_tokenizer(directory)
    return Tokenizer.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)


def test_num_tokens_counts_untruncated_without_warning(tokenizers):
    ours, theirs = tokenizers
    for text in TEXTS:
        assert ours.num_tokens(text) == len(theirs(text)["input_ids"])
        assert ours.num_tokens(text, "who ?") == len(theirs(text, "who ?")["input_ids"])
        assert ours.num_tokens(text, add_special_tokens=False) == len(theirs(text, add_special_tokens=False)["input_ids"])
    long = "dog " * 100  # 102 tokens > model_max_length 64: counted in full, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ours.num_tokens(long) == 102
    for bad in (None, 3, "a\ud800b"):
        with pytest.raises(InvalidInputError):
            ours.num_tokens(bad)


def test_convert_tokens_to_string_matches_transformers(tokenizers):
    ours, theirs = tokenizers
    assert any(t.startswith("##") for t in theirs.tokenize(TEXTS[1]))  # subwords are exercised
    for text in TEXTS:
        tokens = theirs.tokenize(text)
        assert ours.convert_tokens_to_string(tokens) == theirs.convert_tokens_to_string(tokens)


def test_word_to_chars_matches_transformers(tokenizers):
    ours, theirs = tokenizers
    question = "who lives here ?"
    for context in TEXTS:
        enc = ours.encode_batch(question, context)[0]
        ref = theirs(question, context)
        for sequence in (0, 1):
            words = sorted({int(w) for w, s in zip(enc.word_ids, enc.sequence_ids) if s == sequence})
            assert words, "every sequence has words"
            for word in words:
                span = ref.word_to_chars(word, sequence_index=sequence)
                assert enc.word_to_chars(word, sequence_index=sequence) == (span.start, span.end)
        with pytest.raises(InvalidInputError, match="has no token in this encoding"):
            enc.word_to_chars(99, sequence_index=1)


def test_word_to_chars_in_an_overflow_window(tokenizers):
    """A window holding part of the context: spans come from the tokens in that window."""
    ours, theirs = tokenizers
    question, context = "who ?", "john lives in paris and mary works at google in new york"
    windows = ours.encode_batch(question, context, truncation="only_second", max_length=10, stride=2,
                                return_overflowing_tokens=True)
    ref = theirs(question, context, truncation="only_second", max_length=10, stride=2,
                 return_overflowing_tokens=True)
    assert len(windows) == len(ref["input_ids"]) > 1
    for index, enc in enumerate(windows):
        words = {int(w) for w, s in zip(enc.word_ids, enc.sequence_ids) if s == 1}
        for word in words:
            span = ref.word_to_chars(index, word, sequence_index=1)
            assert enc.word_to_chars(word, sequence_index=1) == (span.start, span.end)
