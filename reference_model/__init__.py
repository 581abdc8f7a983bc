"""The ConvBERT reference model: transformers' math and checkpoint layout, in one readable file.

Every class takes a :class:`ConvBertConfig`, loads with ``Cls.from_pretrained(dir)`` and saves
with ``model.save_pretrained(dir)``; ``forward(input_ids, attention_mask=None,
token_type_ids=None)`` returns a dict keyed by the task's output names. ``load(dir, task=None)``
picks the head; ``from_preset(name, task)`` builds a named shape with seeded random weights.
"""

from __future__ import annotations

from .configuration import ConvBertConfig
from . import dynamic_conv  # registers torch.ops.convbert.dynamic_conv (the module, not its function)
from .loading import load
from .modeling import (
    MODEL_CLASSES,
    ConvBertForMaskedLM,
    ConvBertForMultipleChoice,
    ConvBertForQuestionAnswering,
    ConvBertForSequenceClassification,
    ConvBertForTokenClassification,
    ConvBertModel,
    ConvBertPreTrainedModel,
)
from .presets import PRESETS, from_preset

__all__ = [
    "ConvBertConfig",
    "ConvBertModel",
    "ConvBertForMaskedLM",
    "ConvBertForSequenceClassification",
    "ConvBertForMultipleChoice",
    "ConvBertForTokenClassification",
    "ConvBertForQuestionAnswering",
    "ConvBertPreTrainedModel",
    "MODEL_CLASSES",
    "PRESETS",
    "from_preset",
    "load",
]
