"""Batching that never changes an answer: padding and length bucketing (pure functions, numpy only).

ConvBERT's convolution branch ignores the attention mask, so how a text is padded can change
its result. Two export kinds exist (manifest ``padding``):

* ``exact``: the model zeroes the convolution branch at padding positions, so a text padded
  inside a batch gives what it gives alone. Batches may mix lengths freely; we sort by length
  and cut consecutive runs so padding waste stays small.
* ``transformers``: padding leaks into the last (k-1)/2 real tokens of every layer. The only
  exact scheme is to batch texts of EQUAL length only (length bucketing). Cost: with many
  distinct lengths, batches are small (a batch per distinct length at worst); with real
  traffic the buckets fill up as requests accumulate.

Multiple choice: every choice of one question is padded to that question's longest choice
(what transformers does, and what pooling position "last" reads), so a question is one block of
shape (num_choices, L). Blocks batch together only when (num_choices, L) are equal, whatever
the export's padding: merging blocks of different L would move the pooled "last" position.

A "key" below is what must be equal for two items to share a batch without changing results:
the sequence length (leaking exports), or (num_choices, L) for multiple choice.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from .errors import InvalidInputError

__all__ = ["plan_batches", "pad_sequences", "padding_waste"]


def plan_batches(
    lengths: Sequence[int] | Sequence[Hashable],
    batch_size: int,
    *,
    exact: bool,
) -> list[list[int]]:
    """Split item indices into batches whose results equal each item's solo result.

    Args:
        lengths: per item, its sequence length (or any sortable key, e.g. (num_choices, L)).
        batch_size: the largest batch.
        exact: the export masks padding (mixed lengths allowed). False groups equal keys only.

    Returns:
        Lists of item indices; every index appears exactly once. Items are sorted by key so
        each batch pads as little as possible; ties keep input order.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) == batch_size or (not exact and lengths[current[0]] != lengths[index])):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    pad_value: int,
    length: int | None = None,
) -> np.ndarray:
    """Right-pad integer sequences into an int64 array of shape (len(sequences), length)."""
    longest = max((len(s) for s in sequences), default=0)
    length = longest if length is None else length
    if length < longest:
        raise InvalidInputError(f"cannot pad to {length}: a sequence has {longest} tokens")
    out = np.full((len(sequences), length), pad_value, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return out


def padding_waste(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Fraction of computed positions that are padding for a batch plan (0 = none)."""
    total = sum(max(lengths[i] for i in b) * len(b) for b in batches if b)
    real = sum(lengths[i] for b in batches for i in b)
    return 0.0 if total == 0 else 1.0 - real / total
