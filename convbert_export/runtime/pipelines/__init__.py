"""Task pipelines: text in, answers out (tokenize -> batch exactly -> run -> post-process).

One module per task plus ``base.py`` (the shared steps: input checks, tokenization, exact
batching, running, per-item failure isolation). ``PIPELINES`` maps each task to its class;
``Pipeline.from_export(path)`` picks it from the directory's manifest and gets its runner from
``runtime/factory.py``. See ``base.py`` for the documented behaviour on bad input.
"""

from __future__ import annotations

from .base import DEFAULT_MAX_INPUT_CHARS, Feature, Pipeline, is_engine_dir
from .feature_extraction import POOLINGS, FeatureExtractionPipeline
from .fill_mask import FillMaskPipeline
from .multiple_choice import MultipleChoicePipeline
from .question_answering import QuestionAnsweringPipeline
from .text_classification import TextClassificationPipeline
from .token_classification import AGGREGATIONS, TokenClassificationPipeline

__all__ = [
    "Pipeline",
    "TextClassificationPipeline",
    "TokenClassificationPipeline",
    "QuestionAnsweringPipeline",
    "FillMaskPipeline",
    "FeatureExtractionPipeline",
    "MultipleChoicePipeline",
    "PIPELINES",
    "Feature",
    "is_engine_dir",
    "DEFAULT_MAX_INPUT_CHARS",
    "AGGREGATIONS",
    "POOLINGS",
]

def _pipelines() -> dict[str, type[Pipeline]]:
    from ...tasks import TASKS

    return {name: spec.pipeline_class() for name, spec in TASKS.items() if spec.pipeline}


# task -> Pipeline class, read from the task registry (TaskSpec.pipeline)
PIPELINES: dict[str, type[Pipeline]] = _pipelines()
