"""The packaged data the tokenizer ships with: the demo vocabulary and the validation texts."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError


def _data_dir(name: str) -> Path:
    path = Path(str(resources.files("convbert_export") / "data" / name))
    if not path.is_dir():
        raise InvalidInputError(
            f"packaged data folder missing: expected {path}; reinstall convbert-export"
        )
    return path


def replace_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (U+D800..U+DFFF, e.g. JSON's ``"\\ud800"``) replaced by
    U+FFFD: the same length, so character offsets into the text stay valid."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def demo_vocab_dir() -> Path:
    """Directory of the demo WordPiece vocabulary (vocab.txt, tokenizer_config.json,
    special_tokens_map.json): 8192 ids, [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, lowercase.
    Made by ``tools/make_demo_vocab.py``."""
    return _data_dir("demo_vocab")


def validation_texts() -> list[dict[str, Any]]:
    """The packaged validation examples (data/texts/validation.jsonl), one dict per line.

    Keys per kind: ``{"text"}`` (some with ``[MASK]``), ``{"text", "text_pair"}``,
    ``{"question", "context"}`` and ``{"prompt", "choices"}``. A fresh list every call.
    """
    path = _data_dir("texts") / "validation.jsonl"
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"{path}:{number}: not valid JSON: {exc}") from exc
    return rows
