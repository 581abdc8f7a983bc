"""What the pipelines share besides the base class: a ``Feature`` (one model row of one input),
the sequence limit a runner accepts, and small numeric and message helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidInputError
from ...tokenization import Encoding, Tokenizer
from ..base import Runner


def _read_json(path: Path):
    if not path.is_file():
        return None
    from ...fileio import read_json

    data = read_json(path, fix="re-export the model")
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: expected a JSON object, got a {type(data).__name__}; re-export the model")
    return data


def _keys(item: dict) -> list[str]:
    """A dict's keys for an error message (sorted as text: keys need not be comparable)."""
    return sorted(repr(key) if not isinstance(key, str) else key for key in item)


def _max_length(tokenizer: Tokenizer, max_positions: int | None, runner: Runner) -> int:
    """The longest sequence (in tokens) a pipeline sends to its runner: the tokenizer's
    ``model_max_length``, capped by the model's positions and, for a runner with TensorRT
    optimization profiles, by the longest sequence any profile accepts."""
    limit = tokenizer.model_max_length
    if max_positions:
        limit = min(limit, int(max_positions))
    profiles = getattr(runner, "profiles", None)
    if profiles:
        limit = min(limit, max(profile.sequence.max for profile in profiles))
    return limit


# ---------------------------------------------------------------------------------------------
# features: one model row (or one multiple-choice block) of one input
# ---------------------------------------------------------------------------------------------
@dataclass
class Feature:
    """One row the model runs: token ids and type ids (2-D blocks for multiple choice)."""

    item: int
    ids: np.ndarray
    type_ids: np.ndarray
    encoding: Encoding | None = None
    extra: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.ids.shape[-1])


def _is_int(value: Any) -> bool:
    """An int parameter (bool excluded: ``top_k=True`` is a mistake, not 1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
