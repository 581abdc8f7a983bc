"""The base of the per-task evaluations: :class:`Example` (one parsed row), :class:`TaskEval`
(what every task's evaluation provides) and the field helpers the tasks' row parsers share.

The tasks themselves are in ``evaluate/tasks.py``; each TaskSpec names its own (``TaskSpec.evaluator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import BadRow

__all__ = ["Example", "TaskEval"]


@dataclass
class Example:
    line: int          # the data file's line (CSV: its record's last line)
    inputs: Any        # what the task's pipeline takes
    gold: Any
    text: str          # shown in the report
    extra: Any = None  # what the task needs besides the inputs (word starts)


def _field(fields: dict, names: tuple[str, ...], what: str):
    for name in names:
        if name in fields and fields[name] is not None:
            return fields[name]
    raise BadRow(f"missing field {names[0]!r}" + (f" (or {', '.join(map(repr, names[1:]))})" if names[1:] else "")
                 + f" for {what}; rename a column with --column {names[0]}=FIELD")


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f"{name} must be a non-empty string, got {value!r:.60}")
    return value


class TaskEval:
    """The evaluation of one task. ``ctx`` is the export's :class:`Pipeline` (labels, tokenizer)."""

    task = ""
    primary = ""          # the metric a reviewer reads first
    params: dict = {}     # pipeline call parameters

    def __init__(self, pipeline):
        self.id2label: dict[int, str] = dict(pipeline.id2label)
        self.label2id = {v: k for k, v in self.id2label.items()}
        self.tokenizer = pipeline.tokenizer
        self.config = pipeline.config

    def prepare(self, examples: list[Example]) -> None:
        """Adjust call parameters to the whole data set (e.g. impossible QA answers)."""

    def parse(self, fields: dict, line: int) -> Example:
        raise NotImplementedError

    def predict(self, result, example: Example):
        raise NotImplementedError

    def metrics(self, golds: list, preds: list) -> dict[str, float]:
        raise NotImplementedError

    def bootstrap_counts(self, golds: list, preds: list):
        """Per-example counts the metrics are built from, for a fast bootstrap: ``(matrix (n, k),
        finish)`` where ``finish(sums (..., k))`` returns each metric; None: the bootstrap calls
        :meth:`metrics` on every resample instead."""
        return None

    def distance(self, ref, pred) -> float:
        """How far ``pred`` is from the reference's prediction (0 = the same)."""
        raise NotImplementedError

    def disagree(self, ref, pred) -> bool:
        raise NotImplementedError

    def show(self, pred) -> str:
        return str(pred)

    def label_of(self, value, what: str = "label") -> str:
        """A label name from a name or an id (int or digit string), through the export's id2label."""
        if isinstance(value, str) and value in self.label2id:
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            index = int(value)
            if index in self.id2label:
                return self.id2label[index]
        known = ", ".join(f"{k}={v}" for k, v in sorted(self.id2label.items()))
        raise BadRow(f"unknown {what} {value!r}; the export's labels are {known}")
