"""A task's model inputs, built in one place (numpy only: tools and serving code read it without torch).

Every feed the project makes comes from the :class:`TaskInputs` a TaskSpec names
(``TaskSpec.inputs_class``; ``spec.model_inputs()``):

- synthetic ids: the validation grid (:meth:`~TaskInputs.random_grid`), the tracing sample
  (:meth:`~TaskInputs.sample`; the exporter turns it into torch tensors), one text alone and
  padded (:meth:`~TaskInputs.padded_pair`), the benchmark's (:meth:`~TaskInputs.benchmark`);
- tokenized texts: the packaged validation texts (:meth:`~TaskInputs.text_cases`) and the int8
  calibration batches (:meth:`~TaskInputs.calibration`), both through :func:`encode_pairs`.

The task decides the shape, (batch, sequence) or (batch, num_choices, sequence) for a
multiple-choice head, and which record fields are tokenized together. Synthetic rows follow one
rule (:func:`rows_to_feeds`): right padding with the pad id, the attention mask from each row's
length, token type 1 from half the row's length on (when the model has two token types).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .tasks import INPUT_NAMES


@dataclass(frozen=True)
class ModelDims:
    """What synthetic inputs need to know of a model (a manifest's ``model`` or a config)."""

    vocab_size: int
    max_length: int  # max_position_embeddings
    type_vocab_size: int = 2
    pad_token_id: int = 0

    @classmethod
    def of(cls, config) -> "ModelDims":
        """From a manifest's ``model`` dict or a config object (``ConvBertConfig``)."""
        def get(key, default=None):
            return config.get(key, default) if isinstance(config, Mapping) else getattr(config, key, default)

        return cls(int(get("vocab_size")), int(get("max_position_embeddings")), int(get("type_vocab_size", 2)),
                   int(get("pad_token_id") or 0))


def rows_to_feeds(ids: np.ndarray, lengths: np.ndarray, dims: ModelDims, shape: tuple[int, ...],
                  token_types: bool = True) -> dict[str, np.ndarray]:
    """The feeds of ``ids`` (rows, sequence) whose row i holds ``lengths[i]`` real tokens.

    Past its length a row is padding (the pad id, mask 0); with ``token_types`` (and two token
    types in the model) a row's second half, from ``max(length // 2, 1)``, is type 1.
    Every array is reshaped to ``shape``.
    """
    positions = np.arange(ids.shape[-1])[None, :]
    mask = (positions < lengths[:, None]).astype(np.int64)
    types = np.zeros(ids.shape, dtype=np.int64)
    if token_types and dims.type_vocab_size > 1:
        split = np.maximum(lengths // 2, 1)
        types = ((positions >= split[:, None]) & (mask == 1)).astype(np.int64)
    ids = np.where(mask == 1, ids, dims.pad_token_id)
    return {"input_ids": ids.reshape(shape), "attention_mask": mask.reshape(shape), "token_type_ids": types.reshape(shape)}


def encode_pairs(tokenizer, pairs, **kwargs) -> list[tuple[str, list[int], dict]]:
    """Tokenize ``(first, second or None)`` texts. One tokenizer call takes singles or pairs, not
    both, so a mix encodes as two groups: ``[("singles", rows, encoding), ("pairs", rows,
    encoding)]``, each present only when it has rows (``rows`` index ``pairs``)."""
    groups = []
    singles = [i for i, (_, second) in enumerate(pairs) if second is None]
    if singles:
        groups.append(("singles", singles, tokenizer([pairs[i][0] for i in singles], **kwargs)))
    doubles = [i for i, (_, second) in enumerate(pairs) if second is not None]
    if doubles:
        groups.append(("pairs", doubles, tokenizer([pairs[i][0] for i in doubles], [pairs[i][1] for i in doubles], **kwargs)))
    return groups


def text_max_length(dims: ModelDims, tokenizer) -> int:
    """The longest sequence texts are truncated to: the model's and the tokenizer's limit."""
    return min(dims.max_length, tokenizer.model_max_length or 10**9)


class TaskInputs:
    """The inputs of one task's graph (``spec``: its TaskSpec)."""

    def __init__(self, spec):
        self.spec = spec
        self.multiple_choice = bool(spec.multiple_choice)

    def shape(self, batch: int, sequence: int, num_choices: int | None = None) -> tuple[int, ...]:
        """(batch, sequence), or (batch, num_choices, sequence) for a multiple-choice head."""
        return (batch, num_choices or 1, sequence) if self.multiple_choice else (batch, sequence)

    # ------------------------------------------------------------------------- synthetic ids

    def random_grid(self, dims: ModelDims, batches, sequences, num_choices, seed: int):
        """Yield ``(name, feeds)`` over batch x sequence (x num_choices for multiple choice).

        Seeded: random ids, random lengths (the first row unpadded), right padding, both token
        types. A sequence of 0 means max_position_embeddings; longer ones are capped there. The
        names (``random b=2 s=7``, ``random b=2 c=3 s=7``) are what reports and replay use.
        """
        rng = np.random.default_rng(seed)
        sequences = sorted({dims.max_length if s == 0 else min(s, dims.max_length) for s in sequences})
        for batch in batches:
            for seq in sequences:
                for nc in (num_choices if self.multiple_choice else (None,)):
                    rows = batch * (nc or 1)
                    ids = rng.integers(0, dims.vocab_size, size=(rows, seq), dtype=np.int64)
                    lengths = rng.integers(1, seq + 1, size=rows)
                    lengths[0] = seq  # at least one row unpadded
                    name = f"random b={batch}" + (f" c={nc}" if nc else "") + f" s={seq}"
                    yield name, rows_to_feeds(ids, lengths, dims, self.shape(batch, seq, nc))

    def sample(self, dims: ModelDims, batch: int = 2, sequence: int = 8, num_choices: int = 3, seed: int = 0) -> dict:
        """Small inputs to trace the model with: random ids, right padding in the last row, both
        token types (sizes above 1, so the exporter keeps every axis dynamic)."""
        rng = np.random.default_rng(seed)
        sequence = min(sequence, dims.max_length)
        shape = self.shape(batch, sequence, num_choices)
        rows = int(np.prod(shape[:-1]))
        lengths = np.full(rows, sequence)
        lengths[-1] = max(sequence // 2, 1)
        return rows_to_feeds(rng.integers(0, dims.vocab_size, size=(rows, sequence), dtype=np.int64), lengths, dims, shape)

    def padded_pair(self, dims: ModelDims, length: int, padded: int, seed: int = 1234) -> tuple[dict, dict]:
        """One seeded text of ``length`` tokens (one token type) alone, and right-padded to ``padded``."""
        text = np.random.default_rng(seed).integers(0, dims.vocab_size, size=length, dtype=np.int64)

        def feeds(total: int) -> dict:
            ids = np.zeros((1, total), dtype=np.int64)
            ids[0, :length] = text
            return rows_to_feeds(ids, np.array([length]), dims, self.shape(1, total, 1), token_types=False)

        return feeds(length), feeds(padded)

    def benchmark(self, dims: ModelDims, batch: int, sequence: int, seed: int, num_choices: int = 2) -> dict:
        """Random ids that avoid the special tokens (ids >= 1000 in a large vocabulary), no
        padding, token types in halves; ``num_choices`` choices for a multiple-choice head."""
        rng = np.random.default_rng(seed)
        sequence = min(sequence, dims.max_length)
        shape = self.shape(batch, sequence, num_choices)
        rows = int(np.prod(shape[:-1]))
        low = 1000 if dims.vocab_size > 2000 else 1
        ids = rng.integers(low, dims.vocab_size, size=(rows, sequence), dtype=np.int64)
        return rows_to_feeds(ids, np.full(rows, sequence), dims, shape)

    # ------------------------------------------------------------------------- tokenized texts

    def record_pairs(self, records) -> list[tuple[str, str | None]]:
        """The ``(first, second or None)`` texts of the records this task reads: ``text`` (and its
        ``pair_field``), or the two ``record_fields`` (the second is the one truncated)."""
        fields = self.spec.record_fields
        if fields != ("text",):
            first, second = fields
            return [(r[first], r[second]) for r in records if first in r]
        pair = self.spec.pair_field
        return [(r["text"], r.get(pair) if pair else None) for r in records if "text" in r]

    def text_cases(self, tokenizer, records, max_length: int, batch_size: int = 8):
        """Yield ``(name, feeds)`` of the task's records, ``batch_size`` at a time, padded to the
        longest of each batch (a batch mixing singles and pairs yields one case of each)."""
        kw = dict(truncation=True, max_length=max_length, padding="longest")
        if self.multiple_choice:
            yield from self._choice_cases(tokenizer, records, kw, batch_size)
            return
        if self.spec.record_fields != ("text",):
            kw["truncation"] = "only_second"
        pairs = self.record_pairs(records)
        for start in range(0, len(pairs), batch_size):
            group = pairs[start : start + batch_size]
            encoded = encode_pairs(tokenizer, group, **kw)
            for kind, _, enc in encoded:
                name = f"texts [{start}:{start + len(group)}]" if len(encoded) == 1 else f"texts [{start}] {kind}"
                yield name, {k: enc[k] for k in INPUT_NAMES}

    def _choice_cases(self, tokenizer, records, kw, batch_size):
        """Multiple choice: each prompt with each of its choices (the last repeated up to the widest)."""
        prompt, choices_field = self.spec.record_fields
        examples = [r for r in records if choices_field in r]
        if not examples:
            return
        width = max(len(r[choices_field]) for r in examples)
        for start in range(0, len(examples), batch_size):
            group = examples[start : start + batch_size]
            prompts = [r[prompt] for r in group for _ in range(width)]
            choices = [r[choices_field][min(i, len(r[choices_field]) - 1)] for r in group for i in range(width)]
            enc = tokenizer(prompts, choices, **kw)
            shape = (len(group), width, enc["input_ids"].shape[-1])
            yield f"texts mc[{start}:{start + len(group)}]", {k: enc[k].reshape(shape) for k in INPUT_NAMES}

    @staticmethod
    def calibration_pairs(records) -> list[tuple[str, str | None]]:
        """The texts of a calibration file, whatever the task: ``text`` (with its ``text_pair``)
        and ``question`` + ``context`` records."""
        pairs = [(r["text"], r.get("text_pair")) for r in records if isinstance(r.get("text"), str)]
        return pairs + [(r["question"], r["context"]) for r in records if "question" in r and "context" in r]

    def calibration(self, tokenizer, pairs, max_length: int, max_batches: int, batch_size: int = 8) -> list[dict]:
        """Calibration batches of ``pairs`` (at most ``max_batches`` of ``batch_size``), all of
        one shape (calibrators such as Percentile stack them): every text padded to the longest,
        the last batch filled by wrapping around; one choice per row for multiple choice."""
        pairs = pairs[: max_batches * batch_size]

        def encode(padding: str, length: int) -> list[dict]:
            return [enc for _, _, enc in encode_pairs(tokenizer, pairs, truncation=True, max_length=length, padding=padding)]

        length = max(enc["input_ids"].shape[1] for enc in encode("longest", max_length))
        rows = {k: np.concatenate([np.asarray(enc[k], dtype=np.int64) for enc in encode("max_length", length)])
                for k in INPUT_NAMES}
        count = rows["input_ids"].shape[0]
        batches = max(1, min(max_batches, -(-count // batch_size)))
        order = np.arange(batches * batch_size) % count
        feeds = []
        for index in range(batches):
            take = order[index * batch_size : (index + 1) * batch_size]
            feeds.append({k: v[take].reshape(self.shape(len(take), length, 1)) for k, v in rows.items()})
        return feeds
