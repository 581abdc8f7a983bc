"""Special tokens and the tokenizer's files: building from a ``vocab.txt``, loading a checkpoint or
export directory, and writing the files transformers reads (``from_vocab``,
``from_pretrained`` and ``save_pretrained`` of :class:`~convbert_export.tokenization.Tokenizer`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as _Backend
from tokenizers import decoders, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from ..errors import InvalidInputError

#: Names of the special tokens in tokenizer_config.json / special_tokens_map.json, in the order
#: transformers adds them to the backend.
SPECIAL_TOKEN_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_DEFAULT_SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
#: Files :meth:`Tokenizer.save_pretrained` writes (and :meth:`Tokenizer.from_pretrained` reads).
from ..manifest import TOKENIZER_FILES  # noqa: E402 - defined once, with the export directory's files
DEFAULT_MODEL_MAX_LENGTH = 512


def _token_content(value: Any, key: str, source: str) -> str:
    """A special token from a config file: a string or an AddedToken dict with "content"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise InvalidInputError(
        f"{source}: {key} must be a string or an object with a 'content' string, got {value!r}; "
        f"fix the file, e.g. \"{key}\": \"{_DEFAULT_SPECIAL_TOKENS[key]}\""
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}; expected a JSON object") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _optional_bool(value: Any, key: str, source: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInputError(f"{source}: {key} must be true, false or null, got {value!r}")


class TokenizerFiles:
    """``from_vocab``, ``from_pretrained`` and ``save_pretrained`` of
    :class:`~convbert_export.tokenization.Tokenizer` (its base class; not used alone)."""

    @classmethod
    def from_vocab(
        cls,
        vocab_path: str | os.PathLike,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        *,
        special_tokens: dict[str, str] | None = None,
        clean_up_tokenization_spaces: bool = False,
    ) -> Tokenizer:
        """Build from a WordPiece ``vocab.txt`` (one token per line, the line number is its id).

        ``strip_accents=None`` follows ``lowercase`` (as in the original BERT).
        """
        path = Path(vocab_path)
        if not path.is_file():
            raise InvalidInputError(f"vocabulary file not found: expected a vocab.txt at {path}")
        special = dict(_DEFAULT_SPECIAL_TOKENS)
        special.update(special_tokens or {})
        # WordPiece.read_file is what transformers uses for vocab.txt (line i -> id i,
        # trailing whitespace trimmed).
        try:
            vocab = WordPiece.read_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception
            raise InvalidInputError(f"cannot read vocabulary {path}: {exc}") from exc
        if not vocab:
            raise InvalidInputError(f"vocabulary {path} is empty: expected one token per line")
        backend = _Backend(
            WordPiece(vocab, unk_token=special["unk_token"], continuing_subword_prefix="##", max_input_chars_per_word=100)
        )
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=lowercase,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        return cls(
            backend,
            special_tokens=special,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
        )

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> Tokenizer:
        """Load from a directory holding ``tokenizer.json`` or ``vocab.txt``.

        ``tokenizer_config.json`` (optional) supplies do_lower_case, strip_accents,
        tokenize_chinese_chars, model_max_length, clean_up_tokenization_spaces and the special
        tokens; ``special_tokens_map.json`` (optional) overrides the special tokens. With a
        ``tokenizer.json``, its normalizer is used as is and the config's do_lower_case,
        strip_accents and tokenize_chinese_chars are ignored, as transformers 5 does
        (transformers 4 let the config win; the files agree in every checkpoint we know of).
        """
        root = Path(directory)
        if not root.is_dir():
            raise InvalidInputError(f"tokenizer directory not found: {root}")
        config: dict[str, Any] = {}
        if (root / "tokenizer_config.json").is_file():
            config = _read_json(root / "tokenizer_config.json")
        source = str(root / "tokenizer_config.json")
        special = dict(_DEFAULT_SPECIAL_TOKENS)
        for key in SPECIAL_TOKEN_KEYS:
            if config.get(key) is not None:
                special[key] = _token_content(config[key], key, source)
        if (root / "special_tokens_map.json").is_file():
            smap = _read_json(root / "special_tokens_map.json")
            for key in SPECIAL_TOKEN_KEYS:
                if smap.get(key) is not None:
                    special[key] = _token_content(smap[key], key, str(root / "special_tokens_map.json"))

        max_len = config.get("model_max_length")
        if max_len is None or (isinstance(max_len, (int, float)) and max_len > 1e12):
            max_len = DEFAULT_MODEL_MAX_LENGTH  # absent or transformers' "unlimited"
        if not isinstance(max_len, int) or isinstance(max_len, bool):
            raise InvalidInputError(f"{source}: model_max_length must be an integer, got {max_len!r}")
        lower = _optional_bool(config.get("do_lower_case"), "do_lower_case", source)
        strip = _optional_bool(config.get("strip_accents"), "strip_accents", source)
        chinese = _optional_bool(config.get("tokenize_chinese_chars"), "tokenize_chinese_chars", source)
        clean_up = bool(config.get("clean_up_tokenization_spaces", False))

        if (root / "tokenizer.json").is_file():
            try:
                backend = _Backend.from_file(str(root / "tokenizer.json"))
            except Exception as exc:
                raise InvalidInputError(
                    f"cannot load {root / 'tokenizer.json'}: {exc}; expected a tokenizers serialization"
                ) from exc
            return cls(backend, special_tokens=special, model_max_length=max_len, clean_up_tokenization_spaces=clean_up)
        if (root / "vocab.txt").is_file():
            return cls.from_vocab(
                root / "vocab.txt",
                lowercase=True if lower is None else lower,
                strip_accents=strip,
                tokenize_chinese_chars=True if chinese is None else chinese,
                model_max_length=max_len,
                special_tokens=special,
                clean_up_tokenization_spaces=clean_up,
            )
        raise InvalidInputError(
            f"no tokenizer in {root}: expected tokenizer.json or vocab.txt (with optional "
            f"tokenizer_config.json and special_tokens_map.json), found "
            f"{sorted(p.name for p in root.iterdir()) or 'nothing'}"
        )

    def save_pretrained(self, directory: str | os.PathLike) -> list[str]:
        """Write tokenizer.json, vocab.txt, tokenizer_config.json and special_tokens_map.json.

        transformers' ``AutoTokenizer`` / ``ConvBertTokenizer`` load the result to the same
        ids. Returns the written paths. Files are written atomically; the directory is created.
        """
        from ..fileio import write_json_atomic, write_text_atomic

        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        by_id = {i: token for token, i in self._backend.get_vocab(with_added_tokens=True).items()}
        # A vocab.txt with duplicate lines leaves unused ids (the last line wins); keep every
        # id in place with a placeholder no text can produce (brackets are split off).
        lines = [by_id.get(i, f"[unused_id_{i}]") for i in range(self.vocab_size)]
        written = []
        path = root / "tokenizer.json"
        write_text_atomic(path, self._backend.to_str(pretty=True))
        written.append(str(path))
        path = root / "vocab.txt"
        write_text_atomic(path, "".join(token + "\n" for token in lines))
        written.append(str(path))
        config = {
            "tokenizer_class": "ConvBertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "model_max_length": self._model_max_length,
            "clean_up_tokenization_spaces": self._clean_up,
            **self._special,
        }
        path = root / "tokenizer_config.json"
        write_json_atomic(path, config)
        written.append(str(path))
        path = root / "special_tokens_map.json"
        write_json_atomic(path, dict(self._special))
        written.append(str(path))
        return written
