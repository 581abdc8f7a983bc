"""The task registry: one :class:`TaskSpec` per task head.

A task name is what users know from the HuggingFace ecosystem. Each entry says which reference
head class computes it, the graph's inputs and outputs with their dynamic axes, the default
tolerances, and which task-level agreement validation reports. Adding a task is adding one entry
here (and a test case: tests/test_tasks.py fails for a task nobody tests).

This module imports nothing heavy: serving code reads it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import lookup

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class TaskSpec:
    """What one task head looks like from outside.

    Attributes:
        name: the task name (``text-classification``...).
        architecture: the reference_model class (and transformers' ``architectures`` entry).
        outputs: output name -> dynamic axis names, in graph order.
        agreement: the task-level metric validation reports, a name in
            ``validate.compare.AGREEMENT_METRICS``, each a rate or a similarity: ``cosine`` (hidden states), ``topk``
            (fill-mask top-5), ``argmax`` (classification logits), ``span`` (QA start/end).
        multiple_choice: inputs carry a ``num_choices`` axis: (batch, num_choices, sequence).
        atol, rtol: default fp32 tolerances against the reference.
        record_fields: the JSON fields of one input (``predict`` records, the packaged
            validation texts): ``("text",)``, or a dict input's keys (``("question",
            "context")``: the second is the text that is truncated / windowed).
        pair_field: an optional second text of a ``text`` record (``text_pair``).
        has_labels: the head's outputs are classes named by the config's ``id2label``.
        pipeline: ``module:Class`` of its Pipeline (``runtime/pipelines/``).
        evaluator: ``module:Class`` of its evaluation on labeled data (a ``TaskEval`` of
            ``evaluate/tasks.py``); empty: ``evaluate`` refuses the task.
        inputs_class: ``module:Class`` that builds its model inputs (synthetic and tokenized:
            :class:`convbert_export.inputs.TaskInputs`); see :meth:`model_inputs`.
    """

    name: str
    architecture: str
    outputs: dict[str, tuple[str, ...]]
    agreement: str
    multiple_choice: bool = False
    atol: float = 1e-5
    rtol: float = 1e-5
    description: str = ""
    input_names: tuple[str, ...] = field(default=INPUT_NAMES)
    record_fields: tuple[str, ...] = ("text",)
    pair_field: str | None = None
    has_labels: bool = False
    pipeline: str = ""
    evaluator: str = ""
    inputs_class: str = "convbert_export.inputs:TaskInputs"

    @property
    def input_axes(self) -> tuple[str, ...]:
        return ("batch", "num_choices", "sequence") if self.multiple_choice else ("batch", "sequence")

    @property
    def inputs(self) -> dict[str, tuple[str, ...]]:
        return {name: self.input_axes for name in self.input_names}

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    def record_to_input(self, record: dict):
        """The pipeline input of one JSON record (a dict already): a text, or the task's dict.
        Raises KeyError naming the missing ``text`` field."""
        if self.record_fields != ("text",):
            return {name: record.get(name) for name in self.record_fields}
        if "text" not in record:
            raise KeyError("text")
        if self.pair_field and record.get(self.pair_field) is not None:
            return {"text": record["text"], self.pair_field: record[self.pair_field]}
        return record["text"]

    def pipeline_class(self):
        """The task's Pipeline class (imported on first use: serving code never loads others)."""
        return _named(self.pipeline)

    def evaluator_class(self):
        """The task's evaluation class (``TaskEval``); None when the task has none."""
        return _named(self.evaluator) if self.evaluator else None

    def model_inputs(self):
        """The builder of this task's model inputs (:class:`convbert_export.inputs.TaskInputs`):
        tracing, validation, padding effect, benchmark and calibration all take theirs here."""
        return _named(self.inputs_class)(self)

    def check_head(self, model) -> None:
        """Refuse a loaded head of another task (its outputs would not be this task's)."""
        from .errors import InvalidInputError

        found = type(model).__name__
        if found != self.architecture:
            raise InvalidInputError(
                f"the model is a {found}, but {self.name} needs {self.architecture}; load the {self.name} head "
                f"(reference_model.load(checkpoint, task={self.name!r})) or pass the model's own task"
            )


def _named(path: str):
    """The object a ``module:Name`` string names (imported on first use)."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_EVAL = "convbert_export.evaluate.tasks:"

_SPECS = [
    TaskSpec(
        name="feature-extraction",
        architecture="ConvBertModel",
        outputs={"last_hidden_state": ("batch", "sequence", "hidden")},
        agreement="cosine",
        description="token embeddings (last hidden state)",
        pipeline="convbert_export.runtime.pipelines.feature_extraction:FeatureExtractionPipeline",
        evaluator=_EVAL + "FeatureExtraction",
    ),
    TaskSpec(
        name="fill-mask",
        architecture="ConvBertForMaskedLM",
        outputs={"logits": ("batch", "sequence", "vocab")},
        agreement="topk",
        description="masked-token prediction",
        pipeline="convbert_export.runtime.pipelines.fill_mask:FillMaskPipeline",
        evaluator=_EVAL + "FillMask",
    ),
    TaskSpec(
        name="text-classification",
        architecture="ConvBertForSequenceClassification",
        outputs={"logits": ("batch", "num_labels")},
        agreement="argmax",
        description="sequence classification / regression",
        pair_field="text_pair",
        has_labels=True,
        pipeline="convbert_export.runtime.pipelines.text_classification:TextClassificationPipeline",
        evaluator=_EVAL + "TextClassification",
    ),
    TaskSpec(
        name="token-classification",
        architecture="ConvBertForTokenClassification",
        outputs={"logits": ("batch", "sequence", "num_labels")},
        agreement="argmax",
        description="per-token tagging (NER, POS)",
        has_labels=True,
        pipeline="convbert_export.runtime.pipelines.token_classification:TokenClassificationPipeline",
        evaluator=_EVAL + "TokenClassification",
    ),
    TaskSpec(
        name="question-answering",
        architecture="ConvBertForQuestionAnswering",
        outputs={"start_logits": ("batch", "sequence"), "end_logits": ("batch", "sequence")},
        agreement="span",
        description="extractive question answering",
        record_fields=("question", "context"),
        pipeline="convbert_export.runtime.pipelines.question_answering:QuestionAnsweringPipeline",
        evaluator=_EVAL + "QuestionAnswering",
    ),
    TaskSpec(
        name="multiple-choice",
        architecture="ConvBertForMultipleChoice",
        outputs={"logits": ("batch", "num_choices")},
        agreement="argmax",
        multiple_choice=True,
        description="choose among candidate continuations",
        record_fields=("prompt", "choices"),
        pipeline="convbert_export.runtime.pipelines.multiple_choice:MultipleChoicePipeline",
        evaluator=_EVAL + "MultipleChoice",
    ),
]

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in _SPECS}
ARCHITECTURE_TO_TASK: dict[str, str] = {spec.architecture: spec.name for spec in _SPECS}  # the built-in heads


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; a miss lists the tasks that exist."""
    return lookup(TASKS, name, "task")


def task_for_architecture(architecture: str) -> TaskSpec:
    """The task of a transformers ``architectures`` entry (``ConvBertForMaskedLM`` -> fill-mask)."""
    by_architecture: dict[str, TaskSpec] = {}
    for spec in TASKS.values():
        by_architecture.setdefault(spec.architecture, spec)  # the first task of an architecture
    return lookup(by_architecture, architecture, "ConvBERT architecture")
