"""Labeled examples from JSON lines or CSV, with the ecosystem's column names per task.

A row becomes a :class:`Row` (its line number and its fields after ``--column`` renaming); the
task's parser (``evaluate/tasks.py``) turns it into an example or rejects it with a
:class:`BadRow` reason. A bad row is counted and listed, never fatal.

CSV cells holding lists or objects (``tokens``, ``ner_tags``, ``choices``, ``answers``) are
written as JSON (``["a", "b"]``); they are decoded when the cell starts with ``[`` or ``{``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, lookup
from ..fileio import read_jsonl

FORMATS = ("jsonl", "csv")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


class BadRow(ValueError):
    """A row the task cannot use (missing field, unknown label, answer not in context)."""


@dataclass
class Row:
    line: int
    fields: dict


def parse_columns(pairs) -> dict[str, str]:
    """``["label=sentiment", ...]`` (``--column name=field``) -> {task name: file field}."""
    mapping = {}
    for pair in pairs or ():
        name, sep, field = str(pair).partition("=")
        if not sep or not name.strip() or not field.strip():
            raise InvalidInputError(f"--column expects NAME=FIELD (e.g. label=sentiment), got {pair!r}")
        mapping[name.strip()] = field.strip()
    return mapping


def read_rows(path: str | Path, columns: dict[str, str] | None = None, limit: int | None = None) -> list[Row]:
    """The rows of ``path`` (JSON lines or CSV, by suffix), renamed through ``columns``.

    ``columns`` maps the task's field name to the file's (``{"label": "sentiment"}``): the
    file's ``sentiment`` is read as ``label``. ``limit`` keeps the first N rows.
    """
    path = Path(path)
    fmt = lookup(dict(sorted(_SUFFIXES.items())), path.suffix.lower(), "data file suffix (JSON lines or CSV)")
    if not path.is_file():
        raise InvalidInputError(f"data file {str(path)!r} does not exist")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"--limit must be >= 1, got {limit}")
    rows = _read_jsonl(path) if fmt == "jsonl" else _read_csv(path)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise InvalidInputError(f"{path} holds no rows; expected one labeled example per line")
    if columns:
        inverse = {field: name for name, field in columns.items()}
        rows = [Row(r.line, {inverse.get(k, k): v for k, v in r.fields.items() if k not in columns or k in inverse})
                for r in rows]
    return rows


def _read_jsonl(path: Path) -> list[Row]:
    return [Row(line, item) for line, item in read_jsonl(path, "a JSON object (one labeled example)")]


def _read_csv(path: Path) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise InvalidInputError(f"{path}: no header row; expected column names on the first line")
        for record in reader:
            fields = {key: _cell(value) for key, value in record.items() if key is not None and value not in (None, "")}
            rows.append(Row(reader.line_num, fields))
    return rows


def _cell(value: str):
    text = value.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value
