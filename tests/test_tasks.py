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


def test_a_new_task_is_one_registry_entry(monkeypatch, tmp_path, capsys):
    """A throwaway task added to a copy of the registry exports, validates, serves and predicts
    with no other module edited: everything task-specific is read from its TaskSpec."""
    import json

    import convbert_export.tasks as tasks
    from convbert_export.cli import main
    from convbert_export.runtime import Pipeline
    from convbert_export.tasks import TaskSpec

    spec = TaskSpec(
        name="sentiment", architecture="ConvBertForSequenceClassification", outputs={"logits": ("batch", "num_labels")},
        agreement="argmax", description="a throwaway task", pair_field="text_pair", has_labels=True,
        pipeline="convbert_export.runtime.pipelines.text_classification:TextClassificationPipeline",
    )
    monkeypatch.setattr(tasks, "TASKS", {**tasks.TASKS, "sentiment": spec})
    out = tmp_path / "sentiment"
    assert main(["export", "--preset", "demo", "--task", "sentiment", "-o", str(out), "-q"]) == 0  # + validation
    report = json.loads((out / "validation.json").read_text())
    assert report["passed"] and report["task"] == "sentiment" and any(c.startswith("texts") for c in report["cases"])
    assert json.loads((out / "manifest.json").read_text())["id2label"]  # has_labels: the labels are kept
    with Pipeline.from_export(out) as pipe:
        assert pipe.task == "sentiment" and pipe({"text": "a good day", "text_pair": "yes"})["label"]
    capsys.readouterr()
    assert main(["predict", str(out), "--text", "a good day", "-q"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])["result"]
    assert set(result) == {"label", "score"}, result
