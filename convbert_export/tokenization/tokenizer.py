"""The :class:`Tokenizer` itself: construction from a backend, properties, ids <-> tokens,
truncation and encoding. Its file handling is in ``files.py``, the :class:`Encoding` type,
input checks and padding in ``encoding.py``.

Over ~400 lines on purpose: it is one class (the ConvBertTokenizer surface); what remains is
its methods, and splitting it further would cut ``encode_batch``/``__call__`` or scatter the class
over mixins."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from tokenizers import AddedToken, normalizers, processors
from tokenizers import Tokenizer as _Backend

from ..errors import InvalidInputError
from .encoding import Encoding, _from_backend_encoding, check_texts, pad
from .files import _DEFAULT_SPECIAL_TOKENS, DEFAULT_MODEL_MAX_LENGTH, SPECIAL_TOKEN_KEYS, TokenizerFiles

_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
_PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
_CACHE_SIZE = 8


class Tokenizer(TokenizerFiles):
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
    _check_texts = staticmethod(check_texts)

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

        return pad(encodings, target, self.pad_token_id, offsets=return_offsets_mapping,
                   special_tokens_mask=return_special_tokens_mask, overflow=return_overflowing_tokens)
