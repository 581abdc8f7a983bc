"""The inputs validation runs: a seeded random grid (batch x sequence, right padding, both
token types) and the packaged validation texts through the export's own tokenizer. The task's
:class:`~convbert_export.inputs.TaskInputs` builds both; this module picks what to build."""

from __future__ import annotations

from pathlib import Path

from ..inputs import ModelDims, text_max_length
from ..manifest import Manifest
from ..tasks import get_task
from .settings import ValidationSettings


def random_cases(manifest: Manifest, settings: ValidationSettings):
    """Yield (name, feeds) over the seeded grid (the task's :meth:`~convbert_export.inputs.TaskInputs.random_grid`)."""
    return get_task(manifest.task).model_inputs().random_grid(
        ModelDims.of(manifest.model), settings.batches, settings.sequences, settings.num_choices, settings.seed)


def text_cases(manifest: Manifest, export_dir: Path, batch_size: int = 8):
    """Yield (name, feeds) of the packaged validation texts, tokenized for the task by the
    export's own tokenizer (:meth:`~convbert_export.inputs.TaskInputs.text_cases`)."""
    from ..tokenization import Tokenizer, validation_texts

    tokenizer = Tokenizer.from_pretrained(export_dir)
    max_length = text_max_length(ModelDims.of(manifest.model), tokenizer)
    return get_task(manifest.task).model_inputs().text_cases(tokenizer, validation_texts(), max_length, batch_size)


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

