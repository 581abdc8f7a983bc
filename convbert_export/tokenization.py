"""BERT WordPiece tokenization for ConvBERT, built on the ``tokenizers`` library (no torch).

transformers' ``ConvBertTokenizer`` is a ``BertTokenizer``: a ``tokenizers`` pipeline of
``BertNormalizer`` (clean text, CJK splitting, lowercase, accent stripping) ->
``BertPreTokenizer`` -> ``WordPiece`` (``##`` continuation, words over 100 characters become
``[UNK]``) -> ``[CLS] A [SEP] (B [SEP])`` with type ids 0 / 1. :class:`Tokenizer` builds the same
pipeline, so ids, type ids, attention masks, offsets, truncation and stride windows equal
transformers' (the tests check this against transformers itself).

The API, and where it departs from transformers on purpose:

* :meth:`Tokenizer.encode_batch` returns one :class:`Encoding` per sequence (overflow windows
  included), unpadded, with everything the pipelines need (``word_ids``, ``sequence_ids``,
  offsets, ``overflow_to_sample``).
* :meth:`Tokenizer.__call__` returns a ``dict[str, np.ndarray]`` of int64 arrays shaped (N, S):
  it always batches (a single string gives N = 1, or more with overflow windows) and pads to
  the longest sequence by default, because a ragged batch cannot be one array.
  ``padding=False`` is accepted only when every encoding has the same length.
* Empty and whitespace-only strings encode to ``[CLS] [SEP]``, like transformers; the pipelines
  decide whether to reject them. A pair is a pair even when its second text is empty
  (``[CLS] A [SEP] [SEP]``); transformers' single-example call drops an empty ``text_pair``
  (``if text_pair``), while its batched call keeps it, as we always do.
* Lone surrogates (``"\\ud800"``, typically from broken decoding) make transformers raise a
  bare ``TypeError``; we raise :class:`InvalidInputError` naming the item and the character
  position, so a server can fail that request alone. Fix at the source: decode bytes with
  ``errors="replace"``.
* ``None``, non-strings and lists with non-strings raise :class:`InvalidInputError` naming the
  index of the bad item.
* ``convert_ids_to_tokens`` raises on an id outside the vocabulary (transformers returns None).
* ``model_max_length`` defaults to 512 (ConvBERT's ``max_position_embeddings``) when the
  tokenizer config has none; transformers uses "unlimited" (1e30) then.
"""

from __future__ import annotations

import json
import os
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as _Backend
from tokenizers.models import WordPiece

from .errors import InvalidInputError

__all__ = [
    "Encoding",
    "Tokenizer",
    "replace_lone_surrogates",
    "demo_vocab_dir",
    "validation_texts",
    "SPECIAL_TOKEN_KEYS",
    "TOKENIZER_FILES",
]

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
from .manifest import TOKENIZER_FILES  # noqa: E402 - defined once, with the export directory's files
DEFAULT_MODEL_MAX_LENGTH = 512
_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
_PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CACHE_SIZE = 8


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


class Tokenizer:
    """BERT WordPiece tokenizer with ConvBertTokenizer's behaviour.

    Build it with :meth:`from_pretrained` (a checkpoint or export directory) or
    :meth:`from_vocab` (a ``vocab.txt``). Instances are safe to share between threads: the
    backend is never mutated after construction; each truncation setting gets its own
    configured copy.
    """

    def __init__(
        self,
        backend: _Backend,
        *,
        special_tokens: dict[str, str] | None = None,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces: bool = False,
    ) -> None:
        """Wrap a ``tokenizers.Tokenizer`` that already has the BERT normalizer and model.

        Adds the special tokens (as special, unnormalized added tokens) and BERT's
        ``[CLS] A [SEP] B [SEP]`` template, and turns off any truncation/padding baked into
        the backend. Prefer :meth:`from_pretrained` / :meth:`from_vocab`.
        """
        tokens = dict(_DEFAULT_SPECIAL_TOKENS)
        tokens.update(special_tokens or {})
        if not isinstance(model_max_length, int) or isinstance(model_max_length, bool) or model_max_length < 2:
            raise InvalidInputError(
                f"model_max_length must be an integer >= 2, got {model_max_length!r}; ConvBERT uses 512"
            )
        self._special = tokens
        self._model_max_length = model_max_length
        self._clean_up = bool(clean_up_tokenization_spaces)
        backend.no_truncation()
        backend.no_padding()
        backend.add_special_tokens(
            [AddedToken(tokens[key], special=True, normalized=False) for key in SPECIAL_TOKEN_KEYS]
        )
        cls, sep = tokens["cls_token"], tokens["sep_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
        )
        self._backend = backend
        self._configured: dict[tuple[int, int, str], _Backend] = {}
        self._lock = threading.Lock()
        self._special_ids = frozenset(backend.token_to_id(tokens[key]) for key in SPECIAL_TOKEN_KEYS)

    # ------------------------------------------------------------------ construction
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
        from .fileio import write_json_atomic, write_text_atomic

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

    # ------------------------------------------------------------------ properties
    def _normalizer_attr(self, name: str, default: Any) -> Any:
        norm = self._backend.normalizer
        return getattr(norm, name) if isinstance(norm, normalizers.BertNormalizer) else default

    @property
    def do_lower_case(self) -> bool:
        """Whether text is lowercased before WordPiece."""
        return bool(self._normalizer_attr("lowercase", False))

    @property
    def strip_accents(self) -> bool | None:
        """Accent stripping; None means "same as do_lower_case"."""
        return self._normalizer_attr("strip_accents", None)

    @property
    def tokenize_chinese_chars(self) -> bool:
        """Whether every CJK character becomes its own word."""
        return bool(self._normalizer_attr("handle_chinese_chars", True))

    @property
    def vocab_size(self) -> int:
        """Number of ids (vocabulary plus added tokens): every id is below this."""
        return max(self._backend.get_vocab(with_added_tokens=True).values()) + 1

    @property
    def model_max_length(self) -> int:
        """Longest sequence the model accepts (tokens, special tokens included)."""
        return self._model_max_length

    @property
    def special_tokens(self) -> dict[str, str]:
        """The special tokens by name (unk_token, sep_token, pad_token, cls_token, mask_token)."""
        return dict(self._special)

    def _special_id(self, key: str) -> int:
        return int(self._backend.token_to_id(self._special[key]))

    @property
    def pad_token(self) -> str:
        return self._special["pad_token"]

    @property
    def mask_token(self) -> str:
        return self._special["mask_token"]

    @property
    def pad_token_id(self) -> int:
        return self._special_id("pad_token")

    @property
    def cls_token_id(self) -> int:
        return self._special_id("cls_token")

    @property
    def sep_token_id(self) -> int:
        return self._special_id("sep_token")

    @property
    def mask_token_id(self) -> int:
        return self._special_id("mask_token")

    @property
    def unk_token_id(self) -> int:
        return self._special_id("unk_token")

    @property
    def backend(self) -> _Backend:
        """The underlying ``tokenizers.Tokenizer`` (do not change its settings)."""
        return self._backend

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars}, "
            f"model_max_length={self.model_max_length})"
        )

    # ------------------------------------------------------------------ ids <-> tokens
    def convert_ids_to_tokens(self, ids: int | Sequence[int] | np.ndarray) -> str | list[str]:
        """Token strings for ids; raises InvalidInputError for an id outside the vocabulary."""

        def one(index: Any) -> str:
            token = self._backend.id_to_token(int(index))
            if token is None:
                raise InvalidInputError(
                    f"token id {int(index)} is out of range: expected 0..{self.vocab_size - 1}"
                )
            return token

        if isinstance(ids, (int, np.integer)):
            return one(ids)
        return [one(i) for i in np.asarray(ids).reshape(-1)]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Ids for token strings; a token not in the vocabulary maps to ``unk_token_id``."""
        unk = self.unk_token_id

        def one(token: str) -> int:
            index = self._backend.token_to_id(token)
            return unk if index is None else int(index)

        if isinstance(tokens, str):
            return one(tokens)
        return [one(t) for t in tokens]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens into text with the backend's decoder, like transformers' fast
        tokenizers (``##`` pieces glued to the previous token, others separated by a space)."""
        decoder = self._backend.decoder
        tokens = list(tokens)
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def decode(
        self,
        ids: Sequence[int] | np.ndarray,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Text for ids, like transformers' ``decode`` (``##`` pieces joined; ids of padding
        are kept unless ``skip_special_tokens``). ``clean_up_tokenization_spaces=None`` uses
        the tokenizer config's value (False unless the config says otherwise)."""
        flat = [int(i) for i in np.asarray(ids).reshape(-1)]
        text = self._backend.decode(flat, skip_special_tokens=skip_special_tokens)
        clean = self._clean_up if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        if clean:
            for before, after in (
                (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
            ):  # fmt: skip
                text = text.replace(before, after)
        return text

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def _check_texts(texts: Any, name: str) -> tuple[list[str], bool]:
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

    def _resolve_truncation(
        self, truncation: bool | str | None, max_length: int | None, padding: Any
    ) -> tuple[str | None, int | None]:
        if max_length is not None and (
            not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1
        ):
            raise InvalidInputError(f"max_length must be a positive integer or None, got {max_length!r}")
        # transformers: max_length alone (no padding, truncation unset) turns on truncation.
        if truncation is None and max_length is not None and padding in (False, "do_not_pad"):
            truncation = "longest_first"
        if truncation is None or truncation is False or truncation == "do_not_truncate":
            return None, max_length
        if truncation is True:
            truncation = "longest_first"
        if truncation not in _TRUNCATION_STRATEGIES:
            raise InvalidInputError(
                f"unknown truncation {truncation!r}: expected True, False or one of {', '.join(_TRUNCATION_STRATEGIES)}"
            )
        return truncation, self._model_max_length if max_length is None else max_length

    def _backend_for(self, strategy: str | None, max_length: int | None, stride: int) -> _Backend:
        if strategy is None:
            return self._backend
        key = (int(max_length), int(stride), strategy)
        with self._lock:
            backend = self._configured.get(key)
            if backend is None:
                backend = _Backend.from_str(self._backend.to_str())
                try:
                    backend.enable_truncation(max_length=key[0], stride=key[1], strategy=strategy, direction="right")
                except Exception as exc:  # tokenizers rejects e.g. stride >= max_length - specials
                    raise InvalidInputError(
                        f"cannot truncate with max_length={key[0]}, stride={key[1]}: {exc}; expected a stride "
                        f"smaller than max_length minus the special tokens ({key[0]} - 3 for pairs)"
                    ) from exc
                if len(self._configured) >= _CACHE_SIZE:
                    self._configured.pop(next(iter(self._configured)))
                self._configured[key] = backend
            return backend

    def num_tokens(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True) -> int:
        """Length in tokens of one text (or pair), untruncated, special tokens included by
        default. Unlike :meth:`encode_batch`, no warning when it exceeds ``model_max_length``:
        this is for measuring (batch planning, length checks).

        Raises:
            InvalidInputError: ``text`` / ``text_pair`` is not a string or has lone surrogates.
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
        if text_pair is not None and not isinstance(text_pair, str):
            raise InvalidInputError(f"text_pair must be a string or None, got {type(text_pair).__name__}")
        self._check_texts(text, "text")
        if text_pair is not None:
            self._check_texts(text_pair, "text_pair")
        return len(self._backend.encode(text, text_pair, add_special_tokens=add_special_tokens))

    def encode_batch(
        self,
        texts: str | Sequence[str],
        text_pairs: str | Sequence[str] | None = None,
        *,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        add_special_tokens: bool = True,
    ) -> list[Encoding]:
        """Encode texts (and optional second texts) into unpadded :class:`Encoding` objects.

        Args:
            texts: a string or a list of strings.
            text_pairs: second sequences (same count as ``texts``), e.g. the QA context.
            truncation: True / "longest_first", "only_first", "only_second", or False/None.
                With a length limit but no truncation, longer sequences stay long.
            max_length: length limit in tokens, special tokens included; defaults to
                ``model_max_length`` when truncating. ``max_length`` alone turns truncation on
                ("longest_first"), as in transformers. Above ``model_max_length`` is allowed.
            stride: tokens shared by consecutive overflow windows (QA sliding windows).
            return_overflowing_tokens: also return the windows past the first, each with
                ``overflow_to_sample`` set to its example's index, in example order.
            add_special_tokens: add ``[CLS]`` / ``[SEP]``.

        Raises:
            InvalidInputError: bad input types, lone surrogates, mismatched pair counts, or a
                max_length/stride the sequences cannot fit (e.g. question longer than
                max_length with ``only_second``).
        """
        items, batched = self._check_texts(texts, "text")
        pairs: list[str] | None = None
        if text_pairs is not None:
            pairs, pair_batched = self._check_texts(text_pairs, "text_pair")
            if pair_batched != batched or len(pairs) != len(items):
                raise InvalidInputError(
                    f"text and text_pair must match: expected {len(items)} "
                    f"{'item' if not batched else 'items in a list'}, got "
                    f"{len(pairs)} {'item' if not pair_batched else 'items in a list'}"
                )
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
            raise InvalidInputError(f"stride must be a non-negative integer, got {stride!r}")
        strategy, limit = self._resolve_truncation(truncation, max_length, False)
        backend = self._backend_for(strategy, limit, stride)
        inputs = items if pairs is None else list(zip(items, pairs))
        try:
            raw = backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        except Exception as exc:  # tokenizers raises plain Exception for truncation errors
            if "vocabulary" in str(exc) or "WordPiece" in str(exc):  # e.g. no [UNK] in vocab.txt
                raise InvalidInputError(
                    f"tokenization failed: {exc}; the tokenizer files (vocab.txt / tokenizer.json) are "
                    "broken or incomplete: replace them with the model's own"
                ) from exc
            raise InvalidInputError(
                f"tokenization failed with truncation={strategy!r}, max_length={limit}, stride={stride}: "
                f"{exc}; use a larger max_length, a smaller stride or another truncation strategy"
            ) from exc
        out: list[Encoding] = []
        for sample, enc in enumerate(raw):
            out.append(_from_backend_encoding(enc, sample))
            if return_overflowing_tokens and strategy is not None:
                out.extend(_from_backend_encoding(o, sample) for o in enc.overflowing)
        if max_length is None and strategy is None:
            longest = max((len(e) for e in out), default=0)
            if longest > self._model_max_length:
                warnings.warn(
                    f"a sequence of {longest} tokens is longer than model_max_length "
                    f"({self._model_max_length}); pass truncation=True to cut it",
                    stacklevel=2,
                )
        return out

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        padding: bool | str | None = None,
        pad_to_multiple_of: int | None = None,
        add_special_tokens: bool = True,
    ) -> dict[str, np.ndarray]:
        """Encode and pad into int64 arrays: ``input_ids``, ``attention_mask``,
        ``token_type_ids`` (N, S); ``offset_mapping`` (N, S, 2) when asked;
        ``special_tokens_mask`` (N, S) when asked; ``overflow_to_sample_mapping`` (N,) when
        ``return_overflowing_tokens``. N counts overflow windows. Padding is on the right with
        ``pad_token_id``, type id 0, mask 0, offsets (0, 0).

        ``max_length`` without ``truncation`` truncates ("longest_first") unless ``padding`` is
        given, as in transformers (where the default is no padding).

        ``padding``: None (default) or True or "longest" pad to the longest encoding;
        "max_length" pads to ``max_length`` (or ``model_max_length``); False / "do_not_pad"
        requires equal lengths. ``pad_to_multiple_of`` rounds the padded length up.
        Other arguments: see :meth:`encode_batch`.
        """
        # max_length alone turns truncation on when the caller did not ask for padding (our
        # default padding is "longest", transformers' is none; the rule follows the request).
        requested_padding = padding
        if padding is None or padding is True:
            padding = "longest"
        elif padding is False:
            padding = "do_not_pad"
        if padding not in _PADDING_STRATEGIES:
            raise InvalidInputError(
                f"unknown padding {padding!r}: expected True, False or one of {', '.join(_PADDING_STRATEGIES)}"
            )
        if pad_to_multiple_of is not None and (
            not isinstance(pad_to_multiple_of, int) or isinstance(pad_to_multiple_of, bool) or pad_to_multiple_of < 1
        ):
            raise InvalidInputError(f"pad_to_multiple_of must be a positive integer, got {pad_to_multiple_of!r}")
        # max_length with padding="max_length" does not turn on truncation (transformers).
        strategy, _ = self._resolve_truncation(
            truncation, max_length, False if requested_padding is None else requested_padding
        )
        encodings = self.encode_batch(
            text,
            text_pair,
            truncation=strategy if strategy is not None else False,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=return_overflowing_tokens,
            add_special_tokens=add_special_tokens,
        )
        lengths = [len(e) for e in encodings]
        longest = max(lengths, default=0)
        if padding == "max_length":
            target = max_length if max_length is not None else self._model_max_length
            if longest > target:
                raise InvalidInputError(
                    f"cannot pad to max_length={target}: an encoding has {longest} tokens; "
                    "pass truncation=True or a larger max_length"
                )
        elif padding == "longest":
            target = longest
        else:
            if len(set(lengths)) > 1:
                raise InvalidInputError(
                    f"padding=False needs encodings of equal length, got lengths {sorted(set(lengths))}; "
                    "use padding='longest' or encode_batch() for unpadded encodings"
                )
            target = longest
        if pad_to_multiple_of and target % pad_to_multiple_of:
            target += pad_to_multiple_of - target % pad_to_multiple_of

        n = len(encodings)
        input_ids = np.full((n, target), self.pad_token_id, dtype=np.int64)
        type_ids = np.zeros((n, target), dtype=np.int64)
        mask = np.zeros((n, target), dtype=np.int64)
        offsets = np.zeros((n, target, 2), dtype=np.int64) if return_offsets_mapping else None
        special = np.ones((n, target), dtype=np.int64) if return_special_tokens_mask else None
        for row, enc in enumerate(encodings):
            length = len(enc)
            input_ids[row, :length] = enc.ids
            type_ids[row, :length] = enc.type_ids
            mask[row, :length] = enc.attention_mask
            if offsets is not None:
                offsets[row, :length] = enc.offsets
            if special is not None:
                special[row, :length] = enc.special_tokens_mask
        result = {"input_ids": input_ids, "token_type_ids": type_ids, "attention_mask": mask}
        if offsets is not None:
            result["offset_mapping"] = offsets
        if special is not None:
            result["special_tokens_mask"] = special
        if return_overflowing_tokens:
            result["overflow_to_sample_mapping"] = np.asarray(
                [e.overflow_to_sample for e in encodings], dtype=np.int64
            )
        return result


# ---------------------------------------------------------------------- packaged data
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
