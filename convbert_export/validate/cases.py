"""The inputs validation runs: a seeded random grid (batch x sequence, right padding, both
token types) and the packaged validation texts through the export's own tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..manifest import Manifest
from ..tasks import get_task
from .settings import ValidationSettings


def random_cases(manifest: Manifest, settings: ValidationSettings):
    """Yield (name, feeds) over the seeded grid."""
    spec = get_task(manifest.task)
    model = manifest.model
    max_len = int(model["max_position_embeddings"])
    vocab, types = int(model["vocab_size"]), int(model.get("type_vocab_size", 2))
    rng = np.random.default_rng(settings.seed)
    sequences = sorted({max_len if s == 0 else min(s, max_len) for s in settings.sequences})
    choices = settings.num_choices if spec.multiple_choice else (None,)
    for batch in settings.batches:
        for seq in sequences:
            for nc in choices:
                rows = batch * (nc or 1)
                ids = rng.integers(0, vocab, size=(rows, seq), dtype=np.int64)
                lengths = rng.integers(1, seq + 1, size=rows)
                lengths[0] = seq  # at least one row unpadded
                mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
                token_types = np.zeros((rows, seq), dtype=np.int64)
                if types > 1:
                    split = np.maximum(lengths // 2, 1)
                    token_types = ((np.arange(seq)[None, :] >= split[:, None]) & (mask == 1)).astype(np.int64)
                ids = np.where(mask == 1, ids, int(model.get("pad_token_id") or 0))
                shape = (batch, nc, seq) if nc else (batch, seq)
                name = f"random b={batch}" + (f" c={nc}" if nc else "") + f" s={seq}"
                yield name, {
                    "input_ids": ids.reshape(shape),
                    "attention_mask": mask.reshape(shape),
                    "token_type_ids": token_types.reshape(shape),
                }


def text_cases(manifest: Manifest, export_dir: Path, batch_size: int = 8):
    """Yield (name, feeds) of the packaged validation texts, tokenized for the task."""
    from ..tokenization import Tokenizer, validation_texts

    tokenizer = Tokenizer.from_pretrained(export_dir)
    max_len = min(int(manifest.model["max_position_embeddings"]), tokenizer.model_max_length or 10**9)
    items = validation_texts()
    spec = get_task(manifest.task)
    kw = dict(truncation=True, max_length=max_len, padding="longest")
    if spec.multiple_choice:
        prompt, choices_field = spec.record_fields
        examples = [it for it in items if choices_field in it]
        if not examples:
            return
        width = max(len(it[choices_field]) for it in examples)
        for start in range(0, len(examples), batch_size):
            group = examples[start : start + batch_size]
            prompts = [it[prompt] for it in group for _ in range(width)]
            choices = [
                (it[choices_field][i] if i < len(it[choices_field]) else it[choices_field][-1])
                for it in group for i in range(width)
            ]
            enc = tokenizer(prompts, choices, **kw)
            shape = (len(group), width, enc["input_ids"].shape[-1])
            yield f"texts mc[{start}:{start + len(group)}]", {k: enc[k].reshape(shape) for k in _INPUTS}
        return
    if spec.record_fields != ("text",):  # (first, second): the second is the one truncated
        first, second = spec.record_fields
        pairs = [(it[first], it[second]) for it in items if first in it]
        kw["truncation"] = "only_second"
    else:
        pairs = [(it["text"], it.get(spec.pair_field) if spec.pair_field else None) for it in items if "text" in it]
    for start in range(0, len(pairs), batch_size):
        group = pairs[start : start + batch_size]
        firsts = [a for a, _ in group]
        seconds = [b for _, b in group]
        if all(b is None for b in seconds):
            enc = tokenizer(firsts, **kw)
        elif all(b is not None for b in seconds):
            enc = tokenizer(firsts, seconds, **kw)
        else:  # mixed singles and pairs: encode separately, pad together
            yield from _mixed(tokenizer, group, kw, start)
            continue
        yield f"texts [{start}:{start + len(group)}]", {k: enc[k] for k in _INPUTS}


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tokenizer_mismatch(manifest: Manifest, export_dir: Path) -> str | None:
    """A reason the export's tokenizer cannot feed its model, or None."""
    from ..tokenization import Tokenizer

    try:
        tokenizer = Tokenizer.from_pretrained(export_dir)
    except Exception as exc:
        return f"tokenizer: cannot load the export's tokenizer files ({exc})"
    vocab = int(manifest.model["vocab_size"])
    if tokenizer.vocab_size > vocab:
        return (
            f"tokenizer: its vocabulary has {tokenizer.vocab_size} ids but the model embeds {vocab}; "
            "export with the checkpoint's own tokenizer files (vocab.txt or tokenizer.json beside config.json)"
        )
    return None


def _mixed(tokenizer, group, kw, start):
    singles = [(i, a) for i, (a, b) in enumerate(group) if b is None]
    pairs = [(i, a, b) for i, (a, b) in enumerate(group) if b is not None]
    if singles:
        enc = tokenizer([a for _, a in singles], **kw)
        yield f"texts [{start}] singles", {k: enc[k] for k in _INPUTS}
    if pairs:
        enc = tokenizer([a for _, a, _ in pairs], [b for _, _, b in pairs], **kw)
        yield f"texts [{start}] pairs", {k: enc[k] for k in _INPUTS}
