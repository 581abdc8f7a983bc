"""evaluate() and the CLI on demo-preset exports: real runs of the reference and ONNX Runtime."""

from __future__ import annotations

import json
import re

import pytest

from convbert_export.cli import main
from convbert_export.evaluate import EvaluationSettings, evaluate

from .conftest import write_jsonl

TEXTS = ["The museum opens at nine.", "I loved this film from the first scene to the last.",
         "The service was slow and the soup arrived cold.", "Rain is expected across the northern hills tonight.",
         "Fantastic value, would buy again.", "The printer jammed again."]
FAST = EvaluationSettings(resamples=50, batch_size=4)


def _by_name(report):
    return {m.name: m for m in report.models}


@pytest.mark.filterwarnings("ignore:.*depend on batch-mates")
def test_text_classification_fp32_matches_reference_and_int8_is_compared(demo_exports, tmp_path):
    rows = [{"text": t, "label": ["LABEL_0", "LABEL_1"][i % 2]} for i, t in enumerate(TEXTS)]
    rows += [{"text": "no label"}, {"text": "odd label", "label": "MAYBE"}, {"text": "id label", "label": 1}]
    data = write_jsonl(tmp_path / "clf.jsonl", rows)
    fp32, int8 = demo_exports.get("text-classification"), demo_exports.int8("text-classification")
    report = evaluate([fp32, int8], data, FAST)
    assert report.examples == 7
    assert [b["line"] for b in report.bad_rows] == [7, 8]
    assert "missing field 'label'" in report.bad_rows[0]["reason"] and "unknown label 'MAYBE'" in report.bad_rows[1]["reason"]
    models = _by_name(report)
    ref, exp, q = models["reference"], models["text-classification"], models["text-classification-int8"]
    assert exp.metrics == ref.metrics and exp.disagreements == 0 and exp.delta["accuracy"] == 0.0
    assert exp.delta_intervals["accuracy"] == (0.0, 0.0)  # paired: same predictions, same resamples
    assert set(ref.metrics) == {"accuracy", "macro_f1", "mcc"}
    low, high = ref.intervals["accuracy"]
    assert low <= ref.metrics["accuracy"] <= high
    # the int8 variant's disagreements are exactly the examples whose label differs from the reference's
    differ = sum(a["label"] != b["label"] for a, b in zip(ref.predictions, q.predictions))
    assert q.disagreements == differ and len(q.worst) == min(differ, 10)
    assert q.delta["accuracy"] == pytest.approx(q.metrics["accuracy"] - ref.metrics["accuracy"])
    gold = [("LABEL_0", "LABEL_1")[i % 2] for i in range(6)] + ["LABEL_1"]
    assert ref.metrics["accuracy"] == pytest.approx(sum(p["label"] == g for p, g in zip(ref.predictions, gold)) / 7)


@pytest.mark.parametrize("task, rows, metrics", [
    ("token-classification",
     [{"tokens": ["Ada", "lived", "in", "London", "."], "ner_tags": ["B-PER", "O", "O", "B-LOC", "O"]},
      {"tokens": ["Rain", "fell", "."], "ner_tags": [0, 0, 0]},
      {"tokens": ["x"], "ner_tags": ["O", "O"]}],
     {"precision", "recall", "f1", "token_accuracy"}),
    ("question-answering",
     [{"question": "Where is the tower?", "context": "The tower is in Paris.", "answers": {"text": ["Paris"], "answer_start": [16]}},
      {"question": "Who?", "context": "Nobody is here.", "answers": {"text": [], "answer_start": []}},
      {"question": "Where?", "context": "In Rome.", "answers": ["Paris"]}],
     {"exact_match", "f1", "has_answer_f1", "no_answer_f1"}),
    ("multiple-choice",
     [{"prompt": "The glass fell and", "choices": ["shattered.", "flew away."], "label": 0},
      {"prompt": "He was thirsty so", "choices": ["he drank.", "he slept."], "label": "he drank."},
      {"prompt": "x", "choices": ["a", "b"], "label": 5}],
     {"accuracy"}),
    ("fill-mask",
     [{"text": "The museum [MASK] at nine.", "label": "opens"}, {"text": "The <mask> was slow.", "label": "service"},
      {"text": "no mask here", "label": "the"}],
     {"top1_accuracy", "top5_accuracy"}),
    ("feature-extraction", [{"text": t} for t in TEXTS[:3]] + [{"text": ""}], {"mean_cosine", "min_cosine"}),
])
def test_every_task_scores_the_fp32_export_like_the_reference(demo_exports, tmp_path, task, rows, metrics):
    report = evaluate([demo_exports.get(task)], write_jsonl(tmp_path / "d.jsonl", rows), FAST)
    ref, exp = report.models
    assert report.examples == len(rows) - 1 and [b["line"] for b in report.bad_rows] == [len(rows)]
    assert set(ref.metrics) == metrics
    assert exp.disagreements == 0 and not exp.errors
    for name in metrics:
        assert exp.metrics[name] == pytest.approx(ref.metrics[name], abs=1e-6)
    # the bootstrap's count-based metrics equal the libraries' on the full data
    from convbert_export.evaluate.tasks import evaluator_for
    from convbert_export.runtime import Pipeline

    with Pipeline.from_export(demo_exports.get(task)) as pipeline:
        evaluator = evaluator_for(task, pipeline)
    examples = [evaluator.parse(row, i) for i, row in enumerate(rows[:-1])]
    evaluator.prepare(examples)
    counted = evaluator.bootstrap_counts([e.gold for e in examples], ref.predictions)
    if counted is not None:
        matrix, finish = counted
        assert {k: float(v) for k, v in finish(matrix.sum(0)).items()} == pytest.approx(ref.metrics, nan_ok=True)


def test_cli_writes_json_markdown_and_html_and_refuses_mixed_tasks(demo_exports, tmp_path, capsys):
    data = write_jsonl(tmp_path / "mc.jsonl", [{"prompt": "The glass fell and", "choices": ["shattered.", "flew."], "label": 0}] * 3)
    out = tmp_path / "report"
    code = main(["evaluate", str(demo_exports.get("multiple-choice")), "--data", str(data), "-o", str(out),
                 "--resamples", "20", "-q"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["task"] == "multiple-choice" and saved["examples"] == 3 and len(saved["models"]) == 2
    assert "| reference |" in (out / "evaluation.md").read_text()
    page = (out / "evaluation.html").read_text()
    again = ["evaluate", str(demo_exports.get("multiple-choice")), "--data", str(data), "-o", str(out), "--resamples", "0", "-q"]
    assert main(again) == 2 and "already exists" in capsys.readouterr().err
    assert main(again + ["--force"]) == 0 and json.loads((out / "evaluation.json").read_text())["settings"]["resamples"] == 0
    assert page.count("<svg") == 1 and not re.search(r"(src|href)=[\"']?(https?:|//)", page)
    code = main(["evaluate", str(demo_exports.get("multiple-choice")), str(demo_exports.get("fill-mask")),
                 "--data", str(data), "-o", str(tmp_path / "r2")])
    assert code == 2 and "different tasks" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
