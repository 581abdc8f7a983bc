"""Tiny configs, inputs and the transformers twin of a reference model."""

from __future__ import annotations

import torch

from reference_model import ConvBertConfig

# name -> ConvBertConfig kwargs; each exercises a different branch of the model.
TINY_CONFIGS: dict[str, dict] = {
    # base-shaped but tiny: E == H, one group, 4 heads // head_ratio 2 = 2 heads
    "base": dict(vocab_size=99, embedding_size=32, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=37, conv_kernel_size=9,
                 max_position_embeddings=64, pad_token_id=0),
    # embeddings_project (E != H) and GroupedLinearLayer (num_groups 2)
    "grouped": dict(vocab_size=99, embedding_size=16, hidden_size=48, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64, num_groups=2, conv_kernel_size=5,
                    max_position_embeddings=64, pad_token_id=0, hidden_act="gelu_new"),
    # num_attention_heads // head_ratio < 1: a single head
    "single_head": dict(vocab_size=99, embedding_size=24, hidden_size=24, num_hidden_layers=2,
                        num_attention_heads=1, head_ratio=2, intermediate_size=40, conv_kernel_size=3,
                        max_position_embeddings=64, pad_token_id=1, hidden_act="relu"),
}


def tiny_config(name: str = "base", **changes) -> ConvBertConfig:
    return ConvBertConfig(**{**TINY_CONFIGS[name], **changes})


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> torch.nn.Module:
    """Draw every parameter at random (LayerNorm weights around 1) so outputs are far from trivial."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        noise = torch.randn(param.shape, generator=generator) * std
        param.copy_(1.0 + noise if name.endswith("LayerNorm.weight") else noise)
    return model


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
