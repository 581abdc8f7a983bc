"""The task registry: one :class:`TaskSpec` per task head.

A task name is what users know from the HuggingFace ecosystem. Each entry says which reference
head class computes it, the graph's inputs and outputs with their dynamic axes, the default
tolerances, and which task-level agreement validation reports. Adding a task is adding one entry
here (and a test case: tests/test_tasks.py fails for a task nobody tests).

This module imports nothing heavy: serving code reads it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UnknownNameError

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class TaskSpec:
    """What one task head looks like from outside.

    Attributes:
        name: the task name (``text-classification``...).
        architecture: the reference_model class (and transformers' ``architectures`` entry).
        outputs: output name -> dynamic axis names, in graph order.
        agreement: the task-level metric validation reports: ``cosine`` (hidden states),
            ``topk`` (fill-mask top-5), ``argmax`` (classification logits), ``span`` (QA start/end).
        multiple_choice: inputs carry a ``num_choices`` axis: (batch, num_choices, sequence).
        atol, rtol: default fp32 tolerances against the reference.
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

    @property
    def input_axes(self) -> tuple[str, ...]:
        return ("batch", "num_choices", "sequence") if self.multiple_choice else ("batch", "sequence")

    @property
    def inputs(self) -> dict[str, tuple[str, ...]]:
        return {name: self.input_axes for name in self.input_names}

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    def check_head(self, model) -> None:
        """Refuse a loaded head of another task (its outputs would not be this task's)."""
        from .errors import InvalidInputError

        found = type(model).__name__
        if found != self.architecture:
            raise InvalidInputError(
                f"the model is a {found}, but {self.name} needs {self.architecture}; load the {self.name} head "
                f"(reference_model.load(checkpoint, task={self.name!r})) or pass the model's own task"
            )


_SPECS = [
    TaskSpec(
        name="feature-extraction",
        architecture="ConvBertModel",
        outputs={"last_hidden_state": ("batch", "sequence", "hidden")},
        agreement="cosine",
        description="token embeddings (last hidden state)",
    ),
    TaskSpec(
        name="fill-mask",
        architecture="ConvBertForMaskedLM",
        outputs={"logits": ("batch", "sequence", "vocab")},
        agreement="topk",
        description="masked-token prediction",
    ),
    TaskSpec(
        name="text-classification",
        architecture="ConvBertForSequenceClassification",
        outputs={"logits": ("batch", "num_labels")},
        agreement="argmax",
        description="sequence classification / regression",
    ),
    TaskSpec(
        name="token-classification",
        architecture="ConvBertForTokenClassification",
        outputs={"logits": ("batch", "sequence", "num_labels")},
        agreement="argmax",
        description="per-token tagging (NER, POS)",
    ),
    TaskSpec(
        name="question-answering",
        architecture="ConvBertForQuestionAnswering",
        outputs={"start_logits": ("batch", "sequence"), "end_logits": ("batch", "sequence")},
        agreement="span",
        description="extractive question answering",
    ),
    TaskSpec(
        name="multiple-choice",
        architecture="ConvBertForMultipleChoice",
        outputs={"logits": ("batch", "num_choices")},
        agreement="argmax",
        multiple_choice=True,
        description="choose among candidate continuations",
    ),
]

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in _SPECS}
ARCHITECTURE_TO_TASK: dict[str, str] = {spec.architecture: spec.name for spec in _SPECS}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; a miss lists the tasks that exist."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown task {name!r}; expected one of: {', '.join(TASKS)}"
        ) from None


def task_for_architecture(architecture: str) -> TaskSpec:
    """The task of a transformers ``architectures`` entry (``ConvBertForMaskedLM`` -> fill-mask)."""
    try:
        return TASKS[ARCHITECTURE_TO_TASK[architecture]]
    except KeyError:
        raise UnknownNameError(
            f"unknown ConvBERT architecture {architecture!r}; expected one of: "
            f"{', '.join(ARCHITECTURE_TO_TASK)}"
        ) from None
