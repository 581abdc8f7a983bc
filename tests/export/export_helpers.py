"""Shared pieces of the export tests: tiny configs, a model factory, a fast validation grid."""

from __future__ import annotations

import reference_model
from convbert_export.validate import ValidationSettings

# Small grid: batch 1, 2, 5 x sequence 1, 7 and the maximum (64): still covers shapes unlike
# the trace shape (2 x 8), right padding and both token types.
FAST_GRID = ValidationSettings(sequences=(1, 7, 0), num_choices=(2, 3))

# embedding_size != hidden_size with num_groups > 1
GROUPED = dict(
    vocab_size=8192, hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, num_groups=2, max_position_embeddings=64, conv_kernel_size=5, pad_token_id=0,
)
# base-shaped, tiny
BASE = dict(
    vocab_size=8192, hidden_size=32, embedding_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=37, max_position_embeddings=64, conv_kernel_size=9, pad_token_id=0,
)


def make_model(task: str, values: dict, seed: int = 0):
    from convbert_export.tasks import get_task

    import torch

    spec = get_task(task)
    config = reference_model.ConvBertConfig(**values, architectures=[spec.architecture])
    if task == "token-classification":
        config = reference_model.ConvBertConfig(**values, architectures=[spec.architecture], num_labels=3)
    from reference_model.presets import initialize_weights

    model = reference_model.MODEL_CLASSES[spec.architecture](config)
    generator = torch.Generator().manual_seed(seed)
    initialize_weights(model, config.initializer_range, generator)  # transformers' init
    # non-zero biases and LayerNorm shifts, so a dropped bias cannot pass unnoticed
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(0.02 * torch.randn(param.shape, generator=generator))
    return model.eval()
