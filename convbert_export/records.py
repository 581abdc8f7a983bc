"""Per-task JSON records in, JSON answers out: the format ``predict``, Triton and Ray Serve share.

A record is one JSON object: ``{"text"}`` (also ``{"text", "text_pair"}`` for
text-classification), ``{"question", "context"}`` for question-answering, ``{"prompt",
"choices"}`` for multiple-choice. Its answer is ``{"result": ...}`` (what ``Pipeline`` returns,
as JSON values) or ``{"error": "..."}``; one bad record never fails its neighbours.

No torch, no onnxruntime here: numpy and the pipeline passed in.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from .errors import InvalidInputError

__all__ = ["RecordError", "parse_line", "record_to_input", "to_jsonable", "answer_records"]


class RecordError(InvalidInputError):
    """A record that cannot be read (invalid UTF-8 or JSON, wrong shape); it fails alone."""


def parse_line(raw: bytes | str) -> Any:
    """One JSON value from raw bytes (or text); raises RecordError with the reason."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError as exc:
        raise RecordError(f"invalid UTF-8 at byte {exc.start}; save the file as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"bad input line: {exc}") from None


def record_to_input(task: str, record: Any) -> Any:
    """The pipeline input of one record for ``task`` (a text, or the task's dict)."""
    if not isinstance(record, dict):
        raise RecordError(f"bad input line: expected a JSON object, got {type(record).__name__}")
    from .tasks import get_task

    try:
        return get_task(task).record_to_input(record)  # the task's fields (TaskSpec.record_fields)
    except KeyError:
        raise RecordError(f"bad input line: expected a \"text\" field, got keys {sorted(map(str, record))}") from None


def to_jsonable(value):
    """``value`` with numpy arrays and scalars turned into lists and Python numbers."""
    import numpy as np

    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _replace_surrogates(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with lone surrogates (JSON's ``"\\ud800"``) replaced by U+FFFD (same length,
    so character offsets stay valid); ``found`` gets the name of each field changed."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            found.append(where)
            from .tokenization import replace_lone_surrogates

            return replace_lone_surrogates(value)
    if isinstance(value, list):
        return [_replace_surrogates(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _replace_surrogates(v, f"{k}" if where == "input" else f"{where}.{k}", found)
                for k, v in value.items()}
    return value


def answer_records(pipe, records: Sequence[Any], on_warning=None) -> list[dict]:
    """``{"result": ...}`` or ``{"error": "..."}`` for each record, in order.

    ``records`` holds parsed JSON values; an Exception in their place (e.g. a RecordError
    from :func:`parse_line`) becomes that record's error. Valid records run together through
    ``pipe.run_many`` (exact batching); a bad one fails alone. Lone surrogates in a record's
    strings are replaced by U+FFFD (answers are sliced from the replaced text, so they are
    valid UTF-8) and reported as ``on_warning(index, message)``.
    """
    answers: list[dict | None] = [None] * len(records)
    items = []
    for index, record in enumerate(records):
        if isinstance(record, Exception):
            answers[index] = {"error": str(record)}
            continue
        try:
            found: list[str] = []
            item = record_to_input(pipe.task, record)
            item = _replace_surrogates(item, "text" if isinstance(item, str) else "input", found)
            items.append((index, item))
        except RecordError as exc:
            answers[index] = {"error": str(exc)}
            continue
        if found and on_warning is not None:
            on_warning(index, f"{', '.join(found)}: lone surrogates replaced by U+FFFD")
    if items:
        outputs = pipe.run_many([item for _, item in items])
        for (index, _), result in zip(items, outputs):
            if isinstance(result, Exception):
                answers[index] = {"error": str(result)}
            else:
                answers[index] = {"result": to_jsonable(result)}
    return answers  # type: ignore[return-value]
