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

The package: ``encoding.py`` (:class:`Encoding`, input checks, padding into arrays),
``files.py`` (special tokens, ``from_vocab`` / ``from_pretrained`` / ``save_pretrained``),
``tokenizer.py`` (:class:`Tokenizer`: properties, ids <-> tokens, truncation, encoding) and
``data.py`` (the packaged demo vocabulary and validation texts).
"""

from .data import demo_vocab_dir, replace_lone_surrogates, validation_texts
from .encoding import Encoding
from .files import DEFAULT_MODEL_MAX_LENGTH, SPECIAL_TOKEN_KEYS, TOKENIZER_FILES
from .tokenizer import Tokenizer

__all__ = [
    "Encoding",
    "Tokenizer",
    "replace_lone_surrogates",
    "demo_vocab_dir",
    "validation_texts",
    "SPECIAL_TOKEN_KEYS",
    "TOKENIZER_FILES",
]
