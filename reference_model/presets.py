"""Named model shapes with seeded random weights, for demos, tests and benchmarks.

``conv-bert-base``, ``conv-bert-medium-small`` and ``conv-bert-small`` have the shapes of the
published YituTech checkpoints (vocab 30522, 512 positions, 2 token types, pad id 0); ``demo`` is
a tiny model over the built-in demo WordPiece vocabulary that exports and validates in seconds.
Weights are drawn like transformers initializes them (normal(0, initializer_range) for linear,
convolution and embedding weights, LayerNorm 1/0, biases 0) from ``torch.Generator(seed)``, so a
preset is the same model on every machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UnknownNameError

from .configuration import ConvBertConfig

# The size of the demo WordPiece vocabulary convbert_export ships (tools/make_demo_vocab.py makes
# exactly this many ids; tests/reference_model checks the file still has them).
DEMO_VOCAB_SIZE = 8192

_COMMON: dict[str, Any] = {
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "pad_token_id": 0,
    "conv_kernel_size": 9,
    "head_ratio": 2,
    "hidden_act": "gelu",
}

PRESETS: dict[str, dict[str, Any]] = {
    "conv-bert-base": {
        **_COMMON, "embedding_size": 768, "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "num_groups": 1,
    },
    "conv-bert-medium-small": {
        **_COMMON, "embedding_size": 128, "hidden_size": 384, "num_hidden_layers": 12,
        "num_attention_heads": 8, "intermediate_size": 1536, "num_groups": 2,
    },
    "conv-bert-small": {
        **_COMMON, "embedding_size": 128, "hidden_size": 256, "num_hidden_layers": 12,
        "num_attention_heads": 4, "intermediate_size": 1024, "num_groups": 1,
    },
    "demo": {
        **_COMMON, "vocab_size": DEMO_VOCAB_SIZE, "max_position_embeddings": 128,
        "embedding_size": 64, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 128, "num_groups": 1,
    },
}

# Labels the presets give their classification heads.
TOKEN_CLASSIFICATION_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")


def demo_vocab_size() -> int:
    """The demo vocabulary's size (the reference model reads no file of convbert_export's)."""
    return DEMO_VOCAB_SIZE


def preset_config(name: str, task: str = "feature-extraction") -> ConvBertConfig:
    """The config of a preset for one head (a pipeline task or an architecture name;
    architectures and labels filled in)."""
    from .loading import head_architecture

    if name not in PRESETS:
        raise UnknownNameError(f"unknown preset {name!r}; expected one of: {', '.join(PRESETS)}")
    architecture = head_architecture(task)
    values = dict(PRESETS[name])
    if name == "demo":
        values["vocab_size"] = demo_vocab_size()
    values["architectures"] = [architecture]
    if architecture == "ConvBertForTokenClassification":
        values["id2label"] = dict(enumerate(TOKEN_CLASSIFICATION_LABELS))
    return ConvBertConfig(**values)


@torch.no_grad()
def initialize_weights(model: nn.Module, initializer_range: float, generator: torch.Generator) -> None:
    """transformers' ConvBERT initialization, drawn from ``generator``."""
    from .modeling import GroupedLinearLayer, SeparableConv1D

    seen: set[int] = set()  # a tied weight is drawn once (as the embedding)
    for module in model.modules():
        weight = getattr(module, "weight", None)
        tied = isinstance(weight, torch.Tensor) and id(weight) in seen
        if isinstance(weight, torch.Tensor):
            seen.add(id(weight))
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            if not tied:
                nn.init.normal_(module.weight, 0.0, initializer_range, generator=generator)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, initializer_range, generator=generator)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, GroupedLinearLayer):
            nn.init.normal_(module.weight, 0.0, initializer_range, generator=generator)
            module.bias.zero_()
        elif isinstance(module, SeparableConv1D):
            module.bias.zero_()


def from_preset(name: str, task: str = "feature-extraction", seed: int = 0):
    """A preset model for ``task`` with seeded random weights, in eval mode.

    Raises UnknownNameError (listing what exists) for an unknown preset or task.
    """
    from .modeling import MODEL_CLASSES

    config = preset_config(name, task)
    model = MODEL_CLASSES[config.architectures[0]](config)
    generator = torch.Generator().manual_seed(seed)
    initialize_weights(model, config.initializer_range, generator)
    model.tie_weights()
    model.source = {"preset": name, "seed": seed}
    return model.eval()
