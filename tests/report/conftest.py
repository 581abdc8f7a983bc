"""A validated demo export (its reports written by the exporter) and an evaluation report, once
per session."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def validated_export(tmp_path_factory):
    """The demo text-classification head exported with validation: export writes validation.html."""
    import reference_model
    import torch
    from convbert_export.export import export
    from convbert_export.validate import ValidationSettings

    torch.set_num_threads(1)
    model = reference_model.from_preset("demo", "text-classification", seed=0)
    out = tmp_path_factory.mktemp("report") / "clf"
    export(model, "text-classification", out, validation=ValidationSettings(batches=(1, 3), sequences=(1, 9, 40)))
    return out


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
