"""The oracle side of the reference-model parity tests: padded inputs and the transformers twin
of a reference model (the models themselves come from tests/factories.py)."""

from __future__ import annotations

import torch

from reference_model import ConvBertConfig


def make_inputs(config: ConvBertConfig, batch: int = 3, seq: int = 12, choices: int | None = None,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded input_ids / attention_mask / token_type_ids (two segments), lengths differ."""
    generator = torch.Generator().manual_seed(seed)
    rows = batch * (choices or 1)
    ids = torch.randint(3, config.vocab_size, (rows, seq), generator=generator)
    lengths = torch.tensor([seq - (i * 3) % (seq - 2) for i in range(rows)])
    positions = torch.arange(seq).unsqueeze(0)
    mask = (positions < lengths.unsqueeze(1)).long()
    types = ((positions >= (lengths // 2).unsqueeze(1)) & mask.bool()).long()
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad))
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if choices is not None:
        inputs = {k: v.reshape(batch, choices, seq) for k, v in inputs.items()}
    return inputs


def hf_twin(transformers, model):
    """transformers' model of the same class and config, with our weights (strict load), eval."""
    hf_config = transformers.ConvBertConfig.from_dict(model.config.to_dict())
    hf_model = getattr(transformers, type(model).__name__)(hf_config).eval()
    missing, unexpected = hf_model.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected, unexpected
    assert not missing, missing
    return hf_model
