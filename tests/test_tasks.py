"""The task registry, and a coverage check: a task nobody tests fails here.

Optimum's ``test_all_models_tested`` idea: adding a TaskSpec without a pipeline and a pipeline
parity test is caught by this file, not by a user.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import reference_model
from convbert_export.errors import UnknownNameError
from convbert_export.inputs import TaskInputs
from convbert_export.tasks import TASKS, get_task, task_for_architecture

TESTS = Path(__file__).parent


def test_every_task_has_a_reference_head_with_the_declared_outputs():
    for name, spec in TASKS.items():
        assert spec.architecture in reference_model.MODEL_CLASSES, name
        assert task_for_architecture(spec.architecture) is spec
        model = reference_model.from_preset("demo", name)
        shape = (2, 3, 5) if spec.multiple_choice else (2, 5)
        with torch.no_grad():
            out = model(input_ids=torch.ones(shape, dtype=torch.long))
        assert tuple(out) == spec.output_names, name
        for output, axes in spec.outputs.items():
            assert out[output].dim() == len(axes), (name, output)


def test_lookup_misses_list_what_exists():
    with pytest.raises(UnknownNameError, match="expected one of: feature-extraction, fill-mask"):
        get_task("translation")
    with pytest.raises(UnknownNameError, match="ConvBertForMaskedLM"):
        task_for_architecture("BertForMaskedLM")


def test_every_task_names_an_agreement_metric_and_a_miss_lists_them():
    from convbert_export.validate.compare import AGREEMENT_METRICS, Agreement

    assert {spec.agreement for spec in TASKS.values()} <= set(AGREEMENT_METRICS)
    with pytest.raises(UnknownNameError, match="unknown agreement metric 'bleu'; expected one of: cosine, topk, argmax, span"):
        Agreement("bleu")


def test_a_new_agreement_metric_is_one_registry_entry(monkeypatch):
    """A similarity-kind metric nobody named "cosine" is summarized, judged and reported as one."""
    import numpy as np

    from convbert_export.report.validation import agreement_text
    from convbert_export.validate import compare

    def add(agreement, got, ref, token_mask):
        agreement.cosines.extend(compare.cosine_rows(got["pooled"], ref["pooled"]).tolist())

    metric = compare.AgreementMetric(add, "similarity", "pooled cosine")
    monkeypatch.setitem(compare.AGREEMENT_METRICS, "pooled-cosine", metric)
    agreement = compare.Agreement("pooled-cosine")
    ref = {"pooled": np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)}
    got = {"pooled": np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)}
    compare.update_agreement(agreement, "pooled-cosine", got, ref, None)
    assert agreement.kind == "similarity"
    assert agreement.rate == pytest.approx(np.sqrt(0.5))  # the minimum over vectors
    data = agreement.to_dict()
    assert data["kind"] == "similarity" and data["vectors"] == 2 and data["mean"] == pytest.approx((1 + np.sqrt(0.5)) / 2)
    assert agreement_text(data).startswith("cosine min 0.7071068")
    with pytest.raises(UnknownNameError, match="unknown agreement kind 'median'; expected one of: rate, similarity"):
        compare.AgreementMetric(add, "median", "x")


def _collected(*paths: str) -> list[str]:
    """The test ids pytest collects from ``paths`` (what actually runs, not what a file says)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *paths],
                         cwd=TESTS.parent, capture_output=True, text=True, timeout=300)
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_every_task_has_a_pipeline_a_parity_test_an_export_in_both_modes_and_an_engine():
    from convbert_export.runtime.pipeline import PIPELINES

    ids = _collected("tests/runtime/test_pipelines.py", "tests/export/test_export_tasks.py",
                     "tests/engine/test_engine_build.py")
    for task in TASKS:
        assert task in PIPELINES, f"task {task!r} has no pipeline (TaskSpec.pipeline)"
        slug = task.replace("-", "_")
        assert any(i.startswith("tests/runtime/test_pipelines.py::test_" + slug) for i in ids), \
            f"task {task!r} has no test in tests/runtime/test_pipelines.py"
        for test in ("test_decomposed_export_validates", "test_custom_op_export_validates"):
            assert f"tests/export/test_export_tasks.py::{test}[{task}]" in ids, f"{task!r} not exported by {test}"
        for mode in ("decomposed", "custom-op"):
            assert f"tests/engine/test_engine_build.py::test_engine_for_every_task[{task}-{mode}]" in ids, \
                f"{task!r} ({mode}) not built as an engine"


class SentimentInputs(TaskInputs):
    """The throwaway task's input builder: the default one, noting which of its methods ran."""

    used: set[str] = set()

    def sample(self, *args, **kwargs):
        SentimentInputs.used.add("sample")  # the exporter's tracing inputs
        return super().sample(*args, **kwargs)

    def random_grid(self, *args, **kwargs):
        SentimentInputs.used.add("random_grid")
        return super().random_grid(*args, **kwargs)

    def text_cases(self, *args, **kwargs):
        SentimentInputs.used.add("text_cases")
        return super().text_cases(*args, **kwargs)

    def padded_pair(self, *args, **kwargs):
        SentimentInputs.used.add("padded_pair")
        return super().padded_pair(*args, **kwargs)


def test_a_new_task_is_one_registry_entry(monkeypatch, tmp_path, capsys):
    """A throwaway task added to a copy of the registry exports (traced with the inputs its
    TaskSpec names), validates (on them), serves, predicts and evaluates (with the evaluator it
    names) with no other module edited: everything task-specific is read from its TaskSpec. Without
    an evaluator, evaluate refuses it in one line naming the tasks that have one."""
    import dataclasses
    import json

    import convbert_export.tasks as tasks
    from convbert_export.cli import main
    from convbert_export.evaluate import EvaluationSettings, evaluate
    from convbert_export.runtime import Pipeline
    from convbert_export.tasks import TaskSpec

    spec = TaskSpec(
        name="sentiment", architecture="ConvBertForSequenceClassification", outputs={"logits": ("batch", "num_labels")},
        agreement="argmax", description="a throwaway task", pair_field="text_pair", has_labels=True,
        pipeline="convbert_export.runtime.pipelines.text_classification:TextClassificationPipeline",
        evaluator="convbert_export.evaluate.tasks:TextClassification", inputs_class=f"{__name__}:SentimentInputs",
    )
    monkeypatch.setattr(tasks, "TASKS", {**tasks.TASKS, "sentiment": spec})
    SentimentInputs.used.clear()
    out = tmp_path / "sentiment"
    assert main(["export", "--preset", "demo", "--task", "sentiment", "-o", str(out), "-q"]) == 0  # + validation
    assert SentimentInputs.used == {"sample", "random_grid", "text_cases", "padded_pair"}
    report = json.loads((out / "validation.json").read_text())
    assert report["passed"] and report["task"] == "sentiment" and any(c.startswith("texts") for c in report["cases"])
    assert any(c.startswith("random b=") for c in report["cases"]) and "export_max_abs_diff" in report["padding_effect"]
    id2label = json.loads((out / "manifest.json").read_text())["id2label"]
    assert id2label  # has_labels: the labels are kept
    with Pipeline.from_export(out) as pipe:
        assert pipe.task == "sentiment" and pipe({"text": "a good day", "text_pair": "yes"})["label"]
    capsys.readouterr()
    assert main(["predict", str(out), "--text", "a good day", "-q"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])["result"]
    assert set(result) == {"label", "score"}, result

    data = tmp_path / "sentiment.jsonl"
    labels = list(id2label.values())
    data.write_text("".join(json.dumps({"text": t, "label": labels[i % len(labels)]}) + "\n"
                            for i, t in enumerate(["a good day", "a bad day", "rain again", "sun at last"])))
    evaluation = evaluate(out, data, EvaluationSettings(resamples=0))
    assert evaluation.task == "sentiment" and evaluation.examples == 4 and evaluation.primary == "accuracy"
    assert [m.name for m in evaluation.models][0] == "reference" and all("accuracy" in m.metrics for m in evaluation.models)

    monkeypatch.setattr(tasks, "TASKS", {**tasks.TASKS, "sentiment": dataclasses.replace(spec, evaluator="")})
    with pytest.raises(UnknownNameError) as refused:
        evaluate(out, data, EvaluationSettings(resamples=0))
    message = str(refused.value)
    assert message.startswith("unknown evaluation task 'sentiment'; expected one of: ") and "\n" not in message
    assert "text-classification" in message and "sentiment" not in message.partition("expected one of:")[2]
