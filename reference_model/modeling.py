"""The ConvBERT reference model: embeddings, mixed attention, layers, encoder and every task head.

Read top to bottom. Over 400 lines on purpose: the reference is ONE file (like nanoGPT's
model.py and transformers' modeling_convbert.py), so the whole model, with shape comments, is
read in one place (docs/ARCHITECTURE.md, convention 7). The math and the parameter names are transformers' ``modeling_convbert.py``
(the parameter names are the checkpoint contract); what differs:

* inference only: no dropout, no losses, always eval mode;
* ``forward(input_ids, attention_mask=None, token_type_ids=None)`` returns a ``dict`` keyed by the
  task's output names (each head's ``output_names``), in that order;
* the span-based dynamic convolution is the registered op ``torch.ops.convbert.dynamic_conv``
  (reference_model/dynamic_conv.py), the seam where the exporter chooses its lowering;
* optional exact padding (``set_exact_padding(True)``): ConvBERT's convolution branch never
  applies the attention mask, so padding tokens leak into the last (K-1)/2 real positions of
  every layer. With exact padding each layer zeroes the convolution branch's inputs at padding
  positions, and a padded text gives what the text gives alone. Default off (transformers).

Shapes: B batch, S sequence, E embedding_size, H hidden_size, A = heads * head_size (= H/2),
I intermediate_size, K conv_kernel_size, V vocab_size, L num_labels, C num_choices.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import ConvBertConfig
from .dynamic_conv import dynamic_conv
from .loading import PretrainedMixin

# ----------------------------------------------------------------------------- activations
# transformers' ACT2FN entries without parameters, in plain torch (formulas as in
# transformers/activations.py).
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_tanh_python(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * torch.pow(x, 3.0))))


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _laplace(x: torch.Tensor, mu: float = 0.707107, sigma: float = 0.282095) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf((x - mu).div(sigma * math.sqrt(2.0))))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # exact (erf)
    "gelu_python": lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_new": _gelu_tanh_python,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_python_tanh": _gelu_tanh_python,
    "gelu_fast": _gelu_fast,
    "gelu_accurate": _gelu_tanh_python,
    "gelu_10": lambda x: torch.clip(F.gelu(x), -10.0, 10.0),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "relu2": lambda x: torch.square(F.relu(x)),
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,  # slope 0.01, nn.LeakyReLU's default
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "hardswish": F.hardswish,
    "linear": lambda x: x,
    "laplace": _laplace,
}


# ----------------------------------------------------------------------------- embeddings
class ConvBertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm (width E)."""

    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)  # (1, S)
        embeddings = (
            self.word_embeddings(input_ids)  # (B, S, E)
            + self.position_embeddings(position_ids)  # (1, S, E)
            + self.token_type_embeddings(token_type_ids)  # (B, S, E)
        )
        return self.LayerNorm(embeddings)  # (B, S, E)


# ----------------------------------------------------------------------------- mixed attention
class SeparableConv1D(nn.Module):
    """Depthwise conv over the sequence (kernel K, zero padding K//2), pointwise conv, bias."""

    def __init__(self, input_filters: int, output_filters: int, kernel_size: int):
        super().__init__()
        self.depthwise = nn.Conv1d(
            input_filters, input_filters, kernel_size=kernel_size, groups=input_filters,
            padding=kernel_size // 2, bias=False,
        )
        self.pointwise = nn.Conv1d(input_filters, output_filters, kernel_size=1, bias=False)
        self.bias = nn.Parameter(torch.zeros(output_filters, 1))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = self.depthwise(hidden_states)  # (B, H, S)
        x = self.pointwise(x)  # (B, A, S)
        return x + self.bias  # (B, A, S)


class ConvBertSelfAttention(nn.Module):
    """Half the width is self-attention heads, half is span-based dynamic convolution heads.

    ``num_attention_heads // head_ratio`` heads of size ``(H / heads) // 2`` (transformers' rule:
    when the division gives 0 there is a single head).
    """

    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.num_attention_heads = config.effective_num_heads
        self.attention_head_size = (config.hidden_size // self.num_attention_heads) // 2
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.conv_kernel_size = config.conv_kernel_size
        self.exact_padding = False

        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.key_conv_attn_layer = SeparableConv1D(config.hidden_size, self.all_head_size, self.conv_kernel_size)
        self.conv_kernel_layer = nn.Linear(self.all_head_size, self.num_attention_heads * self.conv_kernel_size)
        self.conv_out_layer = nn.Linear(config.hidden_size, self.all_head_size)

    def forward(
        self,
        hidden_states: torch.Tensor,  # (B, S, H)
        additive_mask: torch.Tensor | None,  # (B, 1, 1, S): 0 keep, finfo.min drop
        padding_mask: torch.Tensor | None,  # (B, S, 1): 1.0 real, 0.0 padding
    ) -> torch.Tensor:
        batch, seq = hidden_states.shape[0], hidden_states.shape[1]
        exact = self.exact_padding and padding_mask is not None

        query = self.query(hidden_states)  # (B, S, A)
        key = self.key(hidden_states)  # (B, S, A)
        value = self.value(hidden_states)  # (B, S, A)

        # --- convolution branch: a kernel per position and head, from a separable conv of the input
        conv_input = hidden_states * padding_mask if exact else hidden_states  # (B, S, H)
        key_conv = self.key_conv_attn_layer(conv_input.transpose(1, 2)).transpose(1, 2)  # (B, S, A)
        kernel_logits = self.conv_kernel_layer(key_conv * query)  # (B, S, heads*K)
        conv_value = self.conv_out_layer(hidden_states)  # (B, S, A)
        if exact:
            conv_value = conv_value * padding_mask  # (B, S, A)
        conv_out = dynamic_conv(conv_value, kernel_logits, self.conv_kernel_size, self.num_attention_heads)  # (B, S, A)

        # --- self-attention branch
        head_shape = (batch, seq, -1, self.attention_head_size)
        query = query.view(head_shape).transpose(1, 2)  # (B, heads, S, D)
        key = key.view(head_shape).transpose(1, 2)  # (B, heads, S, D)
        value = value.view(head_shape).transpose(1, 2)  # (B, heads, S, D)
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.attention_head_size)  # (B, heads, S, S)
        if additive_mask is not None:
            scores = scores + additive_mask  # (B, heads, S, S)
        probs = torch.softmax(scores, dim=-1)  # (B, heads, S, S)
        context = torch.matmul(probs, value).permute(0, 2, 1, 3)  # (B, S, heads, D)

        # attention heads first, then convolution heads
        conv_out = conv_out.reshape(batch, seq, -1, self.attention_head_size)  # (B, S, heads, D)
        mixed = torch.cat([context, conv_out], dim=2)  # (B, S, 2*heads, D)
        return mixed.reshape(batch, seq, -1)  # (B, S, 2A) = (B, S, H)


class ConvBertSelfOutput(nn.Module):
    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(hidden_states) + input_tensor)  # (B, S, H)


class ConvBertAttention(nn.Module):
    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.self = ConvBertSelfAttention(config)
        self.output = ConvBertSelfOutput(config)

    def forward(self, hidden_states, additive_mask, padding_mask) -> torch.Tensor:
        context = self.self(hidden_states, additive_mask, padding_mask)  # (B, S, H)
        return self.output(context, hidden_states)  # (B, S, H)


# ----------------------------------------------------------------------------- feed-forward
class GroupedLinearLayer(nn.Module):
    """``num_groups`` independent linear maps over equal slices of the last dimension."""

    def __init__(self, input_size: int, output_size: int, num_groups: int, init_std: float = 0.02):
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.num_groups = num_groups
        self.group_in_dim = input_size // num_groups
        self.group_out_dim = output_size // num_groups
        self.weight = nn.Parameter(torch.empty(num_groups, self.group_in_dim, self.group_out_dim).normal_(0.0, init_std))
        self.bias = nn.Parameter(torch.zeros(output_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch = hidden_states.shape[0]
        x = hidden_states.reshape(-1, self.num_groups, self.group_in_dim)  # (B*S, G, in/G)
        x = x.permute(1, 0, 2)  # (G, B*S, in/G)
        x = torch.matmul(x, self.weight)  # (G, B*S, out/G)
        x = x.permute(1, 0, 2)  # (B*S, G, out/G)
        x = x.reshape(batch, -1, self.output_size)  # (B, S, out)
        return x + self.bias


def _dense(input_size: int, output_size: int, config: ConvBertConfig) -> nn.Module:
    if config.num_groups == 1:
        return nn.Linear(input_size, output_size)
    return GroupedLinearLayer(input_size, output_size, config.num_groups, config.initializer_range)


class ConvBertIntermediate(nn.Module):
    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.dense = _dense(config.hidden_size, config.intermediate_size, config)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(hidden_states))  # (B, S, I)


class ConvBertOutput(nn.Module):
    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.dense = _dense(config.intermediate_size, config.hidden_size, config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(hidden_states) + input_tensor)  # (B, S, H)


class ConvBertLayer(nn.Module):
    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.attention = ConvBertAttention(config)
        self.intermediate = ConvBertIntermediate(config)
        self.output = ConvBertOutput(config)

    def forward(self, hidden_states, additive_mask, padding_mask) -> torch.Tensor:
        attention_output = self.attention(hidden_states, additive_mask, padding_mask)  # (B, S, H)
        return self.output(self.intermediate(attention_output), attention_output)  # (B, S, H)


class ConvBertEncoder(nn.Module):
    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.layer = nn.ModuleList([ConvBertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, additive_mask, padding_mask) -> torch.Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states, additive_mask, padding_mask)  # (B, S, H)
        return hidden_states


# ----------------------------------------------------------------------------- base class
class ConvBertPreTrainedModel(PretrainedMixin, nn.Module):
    """Common parts of every head: config, eval mode, exact-padding switch, checkpoint I/O."""

    base_model_prefix = "convbert"

    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.config = config
        # where the weights came from ({"checkpoint": dir} or {"preset": name, "seed": n});
        # the exporter records it so `convbert-export validate` can rebuild the reference
        self.source: dict = {}

    def set_exact_padding(self, enabled: bool = True) -> "ConvBertPreTrainedModel":
        """Zero the convolution branch's inputs at padding positions in every layer (see module doc)."""
        for module in self.modules():
            if isinstance(module, ConvBertSelfAttention):
                module.exact_padding = bool(enabled)
        return self

    @property
    def exact_padding(self) -> bool:
        """Whether exact padding is on (every layer shares the flag)."""
        flags = {m.exact_padding for m in self.modules() if isinstance(m, ConvBertSelfAttention)}
        return flags == {True}

    def train(self, mode: bool = True) -> "ConvBertPreTrainedModel":
        """Inference only: the model stays in eval mode (there is no dropout to switch)."""
        return super().train(False)

    def _finish_init(self) -> None:
        """Tie weights, freeze parameters (inference only) and switch to eval mode.

        Called at the end of every class's __init__.
        """
        self.tie_weights()
        self.requires_grad_(False)
        self.eval()

    def tie_weights(self) -> None:
        """Overridden by the masked-LM head."""


# ----------------------------------------------------------------------------- base model
class ConvBertModel(ConvBertPreTrainedModel):
    """The encoder: returns ``{"last_hidden_state": (B, S, H)}``."""

    output_names = ("last_hidden_state",)

    def __init__(self, config: ConvBertConfig):
        super().__init__(config)
        self.embeddings = ConvBertEmbeddings(config)
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = nn.Linear(config.embedding_size, config.hidden_size)
        self.encoder = ConvBertEncoder(config)
        self._finish_init()

    def encode(
        self,
        input_ids: torch.Tensor,  # (B, S) int64
        attention_mask: torch.Tensor | None = None,  # (B, S) 1 real, 0 padding
        token_type_ids: torch.Tensor | None = None,  # (B, S)
    ) -> torch.Tensor:
        """The last hidden state (B, S, H) as a tensor."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # (B, S)
        hidden_states = self.embeddings(input_ids, token_type_ids)  # (B, S, E)
        if hasattr(self, "embeddings_project"):
            hidden_states = self.embeddings_project(hidden_states)  # (B, S, H)

        additive_mask = padding_mask = None
        if attention_mask is not None:
            mask = attention_mask.to(hidden_states.dtype)  # (B, S)
            # transformers' eager mask: 0 where attended, the dtype's minimum where masked
            additive_mask = ((1.0 - mask) * torch.finfo(hidden_states.dtype).min)[:, None, None, :]  # (B, 1, 1, S)
            padding_mask = mask.unsqueeze(-1)  # (B, S, 1)
        return self.encoder(hidden_states, additive_mask, padding_mask)  # (B, S, H)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        return {"last_hidden_state": self.encode(input_ids, attention_mask, token_type_ids)}


# ----------------------------------------------------------------------------- heads
class ConvBertGeneratorPredictions(nn.Module):
    """dense H -> E, gelu (always erf gelu, as transformers), LayerNorm."""

    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(hidden_states)))  # (B, S, E)


class ConvBertForMaskedLM(ConvBertPreTrainedModel):
    """Masked-token prediction: ``{"logits": (B, S, V)}``.

    With ``tie_word_embeddings`` (the default) ``generator_lm_head.weight`` IS the word-embedding
    Parameter.
    """

    output_names = ("logits",)

    def __init__(self, config: ConvBertConfig):
        super().__init__(config)
        self.convbert = ConvBertModel(config)
        self.generator_predictions = ConvBertGeneratorPredictions(config)
        self.generator_lm_head = nn.Linear(config.embedding_size, config.vocab_size)
        self._finish_init()

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.generator_lm_head.weight = self.convbert.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        hidden_states = self.convbert.encode(input_ids, attention_mask, token_type_ids)  # (B, S, H)
        logits = self.generator_lm_head(self.generator_predictions(hidden_states))  # (B, S, V)
        return {"logits": logits}


class ConvBertClassificationHead(nn.Module):
    """[CLS] (position 0) -> dense -> hidden_act -> out_proj."""

    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = hidden_states[:, 0, :]  # (B, H)
        return self.out_proj(self.act(self.dense(x)))  # (B, L)


class ConvBertForSequenceClassification(ConvBertPreTrainedModel):
    """Sequence classification / regression: ``{"logits": (B, L)}``."""

    output_names = ("logits",)

    def __init__(self, config: ConvBertConfig):
        super().__init__(config)
        self.convbert = ConvBertModel(config)
        self.classifier = ConvBertClassificationHead(config)
        self._finish_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        hidden_states = self.convbert.encode(input_ids, attention_mask, token_type_ids)  # (B, S, H)
        return {"logits": self.classifier(hidden_states)}  # (B, L)


class ConvBertSequenceSummary(nn.Module):
    """One vector per sequence, as transformers' ConvBertSequenceSummary (in eval mode).

    ``summary_type`` (default ``"last"``): ``last`` takes position -1, i.e. the LAST position of
    the padded sequence. Under right padding that is a padding position, whose hidden state still
    depends on the real tokens through attention (and, without exact padding, the convolution).
    This is transformers' behaviour and checkpoints are trained with it, so it is kept exactly.
    ``first`` takes position 0, ``mean`` averages every position (padding included),
    ``cls_index`` with no index is ``last``. Then the optional projection ``summary`` (when
    ``summary_use_proj``) and the optional activation ``summary_activation``.

    With ``mask`` (exact padding, see ``set_exact_padding``): ``last`` takes each sequence's last
    REAL position and ``mean`` averages real positions only, so a padded sequence pools what it
    pools alone. Without it (transformers' semantics) padding positions are pooled as above.
    """

    def __init__(self, config: ConvBertConfig):
        super().__init__()
        self.summary_type = config.summary_type or "last"
        if config.summary_use_proj:
            out = config.num_labels if config.summary_proj_to_labels and config.num_labels > 0 else config.hidden_size
            self.summary = nn.Linear(config.hidden_size, out)
        else:
            self.summary = nn.Identity()
        self.act = ACTIVATIONS[config.summary_activation] if config.summary_activation else (lambda x: x)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.summary_type == "first":
            output = hidden_states[:, 0]  # (N, H)
        elif self.summary_type == "mean" and mask is not None:
            weights = mask.to(hidden_states.dtype).unsqueeze(-1)  # (N, S, 1)
            output = (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (N, H)
        elif self.summary_type == "mean":
            output = hidden_states.mean(dim=1)  # (N, H)
        elif mask is not None:  # "last" real position: the highest index whose mask is 1
            positions = torch.arange(mask.shape[-1], device=mask.device).unsqueeze(0)  # (1, S)
            last = (positions * (mask > 0).to(positions.dtype)).amax(dim=-1)  # (N,)
            index = last.view(-1, 1, 1).expand(-1, 1, hidden_states.shape[-1])  # (N, 1, H)
            output = hidden_states.gather(1, index).squeeze(1)  # (N, H)
        else:  # "last", or "cls_index" without an index
            output = hidden_states[:, -1]  # (N, H)
        return self.act(self.summary(output))  # (N, H or L)


class ConvBertForMultipleChoice(ConvBertPreTrainedModel):
    """Choose among C candidates: inputs (B, C, S), ``{"logits": (B, C)}``.

    The C choices are flattened to B*C sequences, encoded, pooled by the sequence summary
    (transformers' default: the LAST position, a padding position under right padding; see
    ConvBertSequenceSummary) and scored by a linear layer. With exact padding the summary pools
    each choice's last real position instead, so padded choices score what they score alone.
    """

    output_names = ("logits",)

    def __init__(self, config: ConvBertConfig):
        super().__init__(config)
        self.convbert = ConvBertModel(config)
        self.sequence_summary = ConvBertSequenceSummary(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self._finish_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        num_choices, seq = input_ids.shape[1], input_ids.shape[-1]
        flat_ids = input_ids.reshape(-1, seq)  # (B*C, S)
        flat_mask = attention_mask.reshape(-1, seq) if attention_mask is not None else None  # (B*C, S)
        flat_types = token_type_ids.reshape(-1, seq) if token_type_ids is not None else None  # (B*C, S)
        hidden_states = self.convbert.encode(flat_ids, flat_mask, flat_types)  # (B*C, S, H)
        pool_mask = flat_mask if self.exact_padding and flat_mask is not None else None
        pooled = self.sequence_summary(hidden_states, pool_mask)  # (B*C, H)
        logits = self.classifier(pooled)  # (B*C, 1)
        return {"logits": logits.reshape(-1, num_choices)}  # (B, C)


class ConvBertForTokenClassification(ConvBertPreTrainedModel):
    """Per-token tagging: ``{"logits": (B, S, L)}``."""

    output_names = ("logits",)

    def __init__(self, config: ConvBertConfig):
        super().__init__(config)
        self.convbert = ConvBertModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self._finish_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        hidden_states = self.convbert.encode(input_ids, attention_mask, token_type_ids)  # (B, S, H)
        return {"logits": self.classifier(hidden_states)}  # (B, S, L)


class ConvBertForQuestionAnswering(ConvBertPreTrainedModel):
    """Extractive QA: ``{"start_logits": (B, S), "end_logits": (B, S)}``.

    ``qa_outputs`` maps H to ``num_labels`` = 2 (start, end), as in transformers.
    """

    output_names = ("start_logits", "end_logits")

    def __init__(self, config: ConvBertConfig):
        if config.num_labels != 2:
            from .errors import ConfigError

            raise ConfigError(
                f"config field 'num_labels': question answering expected 2 (start and end logits), "
                f"got {config.num_labels}"
            )
        super().__init__(config)
        self.convbert = ConvBertModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self._finish_init()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        hidden_states = self.convbert.encode(input_ids, attention_mask, token_type_ids)  # (B, S, H)
        logits = self.qa_outputs(hidden_states)  # (B, S, 2)
        return {"start_logits": logits[..., 0].contiguous(), "end_logits": logits[..., 1].contiguous()}  # (B, S) each


MODEL_CLASSES: dict[str, type[ConvBertPreTrainedModel]] = {
    cls.__name__: cls
    for cls in (
        ConvBertModel,
        ConvBertForMaskedLM,
        ConvBertForSequenceClassification,
        ConvBertForMultipleChoice,
        ConvBertForTokenClassification,
        ConvBertForQuestionAnswering,
    )
}

# transformers' pipeline task each head serves (how convbert_export's task registry names them)
TASK_HEADS: dict[str, str] = {
    "feature-extraction": "ConvBertModel",
    "fill-mask": "ConvBertForMaskedLM",
    "text-classification": "ConvBertForSequenceClassification",
    "token-classification": "ConvBertForTokenClassification",
    "question-answering": "ConvBertForQuestionAnswering",
    "multiple-choice": "ConvBertForMultipleChoice",
}
