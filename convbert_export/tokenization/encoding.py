"""One encoded sequence (:class:`Encoding`), the input checks every encode call runs, and padding
a batch of encodings into int64 arrays."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Encoding:
    """One encoded sequence (or one overflow window of it), unpadded.

    Every array is int64 and has one entry per token (``offsets`` is (S, 2)). ``word_ids`` and
    ``sequence_ids`` hold -1 where transformers has ``None`` (special tokens). ``offsets`` are
    character offsets into the text the token came from (``sequence_ids`` says which one);
    special tokens have (0, 0). ``overflow_to_sample`` is the index of the input example.
    """

    ids: np.ndarray
    type_ids: np.ndarray
    attention_mask: np.ndarray
    offsets: np.ndarray
    special_tokens_mask: np.ndarray
    word_ids: np.ndarray
    sequence_ids: np.ndarray
    tokens: tuple[str, ...]
    overflow_to_sample: int

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def word_to_chars(self, word_index: int, sequence_index: int = 0) -> tuple[int, int]:
        """Character span ``(start, end)`` of a word in the text it came from, like
        transformers' ``BatchEncoding.word_to_chars``: from the start of the word's first token
        to the end of its last token in THIS encoding (an overflow window may hold only part
        of a word).

        Raises:
            InvalidInputError: no token of this encoding belongs to that word of that sequence.
        """
        hits = np.flatnonzero((self.word_ids == word_index) & (self.sequence_ids == sequence_index))
        if hits.size == 0:
            raise InvalidInputError(
                f"word {word_index} of sequence {sequence_index} has no token in this encoding; "
                f"expected a word index from word_ids where sequence_ids == {sequence_index}"
            )
        return int(self.offsets[hits[0], 0]), int(self.offsets[hits[-1], 1])


def _from_backend_encoding(enc: Any, sample: int) -> Encoding:
    n = len(enc.ids)
    offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(n, 2)
    return Encoding(
        ids=np.asarray(enc.ids, dtype=np.int64),
        type_ids=np.asarray(enc.type_ids, dtype=np.int64),
        attention_mask=np.asarray(enc.attention_mask, dtype=np.int64),
        offsets=offsets,
        special_tokens_mask=np.asarray(enc.special_tokens_mask, dtype=np.int64),
        word_ids=np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64),
        sequence_ids=np.asarray([-1 if s is None else s for s in enc.sequence_ids], dtype=np.int64),
        tokens=tuple(enc.tokens),
        overflow_to_sample=sample,
    )


def check_texts(texts: Any, name: str) -> tuple[list[str], bool]:
    """Validate ``texts`` (a str or a list/tuple of str); returns (list, was_batched)."""
    if isinstance(texts, str):
        items, batched = [texts], False
    elif isinstance(texts, (list, tuple)):
        items, batched = list(texts), True
    else:
        raise InvalidInputError(
            f"{name} must be a string or a list of strings, got {type(texts).__name__}"
        )
    for index, item in enumerate(items):
        if not isinstance(item, str):
            where = f"{name}[{index}]" if batched else name
            raise InvalidInputError(
                f"{where} must be a string, got {type(item).__name__} ({item!r:.60}); "
                "pass text, not None, numbers or pre-split words"
            )
        match = _SURROGATE.search(item)
        if match:
            where = f"{name}[{index}]" if batched else name
            raise InvalidInputError(
                f"{where} is not valid Unicode: lone surrogate U+{ord(match.group()):04X} at character "
                f"{match.start()}; expected text without surrogates (decode bytes with errors='replace')"
            )
    return items, batched


def pad(encodings: list[Encoding], target: int, pad_id: int, *, offsets: bool = False,
        special_tokens_mask: bool = False, overflow: bool = False) -> dict[str, np.ndarray]:
    """Encodings padded on the right to ``target`` tokens, as int64 arrays (N, S): ``input_ids``
    (``pad_id``), ``token_type_ids`` (0) and ``attention_mask`` (0); ``offset_mapping``
    (N, S, 2; (0, 0)), ``special_tokens_mask`` (1) and ``overflow_to_sample_mapping`` (N,)
    when asked."""
    n = len(encodings)
    input_ids = np.full((n, target), pad_id, dtype=np.int64)
    type_ids = np.zeros((n, target), dtype=np.int64)
    mask = np.zeros((n, target), dtype=np.int64)
    offset_rows = np.zeros((n, target, 2), dtype=np.int64) if offsets else None
    special_rows = np.ones((n, target), dtype=np.int64) if special_tokens_mask else None
    for row, enc in enumerate(encodings):
        length = len(enc)
        input_ids[row, :length] = enc.ids
        type_ids[row, :length] = enc.type_ids
        mask[row, :length] = enc.attention_mask
        if offset_rows is not None:
            offset_rows[row, :length] = enc.offsets
        if special_rows is not None:
            special_rows[row, :length] = enc.special_tokens_mask
    result = {"input_ids": input_ids, "token_type_ids": type_ids, "attention_mask": mask}
    if offset_rows is not None:
        result["offset_mapping"] = offset_rows
    if special_rows is not None:
        result["special_tokens_mask"] = special_rows
    if overflow:
        result["overflow_to_sample_mapping"] = np.asarray(
            [e.overflow_to_sample for e in encodings], dtype=np.int64
        )
    return result
