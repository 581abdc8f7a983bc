"""A validated demo export (its reports written by the exporter) and an evaluation report, once
per session."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def validated_export():
    """The demo text-classification head exported with validation: export writes validation.html
    (tests/factories.py's cached ``demo_export(..., validation=...)``; read-only)."""
    import torch
    from convbert_export.validate import ValidationSettings
    from factories import demo_export

    torch.set_num_threads(1)
    return demo_export("text-classification", validation=ValidationSettings(batches=(1, 3), sequences=(1, 9, 40)))


@pytest.fixture(scope="session")
def evaluation_dir(validated_export, tmp_path_factory):
    pytest.importorskip("sklearn")
    from convbert_export.evaluate import EvaluationSettings, evaluate, write_evaluation

    data = tmp_path_factory.mktemp("evaldata") / "clf.jsonl"
    texts = ["The museum opens at nine.", "The printer jammed again.", "Fantastic value, would buy again.",
             "Rain is expected across the northern hills tonight."]
    data.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)) + '{"text": "x"}\n')
    report = evaluate([validated_export], data, EvaluationSettings(resamples=50))
    return write_evaluation(report, tmp_path_factory.mktemp("evalreport") / "report")
