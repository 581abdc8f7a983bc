"""Reading labeled rows: formats, column renaming, bad input."""

from __future__ import annotations

import pytest

from convbert_export.errors import InvalidInputError
from convbert_export.evaluate import parse_columns, read_rows

from .conftest import write_jsonl


def test_jsonl_and_csv_rows_with_renamed_columns(tmp_path):
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", [{"sentence": "a", "sentiment": 1, "label": "x"}]),
                     parse_columns(["text=sentence", "label=sentiment"]))
    assert rows[0].fields == {"text": "a", "label": 1} and rows[0].line == 1
    csv = tmp_path / "d.csv"
    csv.write_text('tokens,ner_tags\n"[""Ada"", ""ran""]","[""B-PER"", ""O""]"\nplain,\n', encoding="utf-8")
    rows = read_rows(csv)
    assert rows[0].fields == {"tokens": ["Ada", "ran"], "ner_tags": ["B-PER", "O"]}
    assert rows[1].fields == {"tokens": "plain"} and rows[1].line == 3
    assert len(read_rows(csv, limit=1)) == 1


@pytest.mark.parametrize("bad, message", [
    ("d.txt", r"unknown data file suffix \(JSON lines or CSV\) '.txt'; expected one of: .csv, .json, .jsonl"),
    ("missing.jsonl", "does not exist"),
])
def test_bad_files_are_one_line_errors(tmp_path, bad, message):
    if bad.endswith(".txt"):
        (tmp_path / bad).write_text("x")
    with pytest.raises(InvalidInputError, match=message):
        read_rows(tmp_path / bad)
    with pytest.raises(InvalidInputError, match="NAME=FIELD"):
        parse_columns(["label"])
