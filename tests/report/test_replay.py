"""validate --save-inputs/--save-outputs writes the worst case; --load-inputs re-runs exactly it."""

from __future__ import annotations

import json

import numpy as np

from convbert_export.cli import main


def test_worst_case_round_trip(validated_export, tmp_path, capsys):
    inputs, outputs = tmp_path / "worst.npz", tmp_path / "worst-out.npz"
    code = main(["validate", str(validated_export), "-q", "--json", "--save-inputs", str(inputs), "--save-outputs", str(outputs)])
    full = json.loads(capsys.readouterr().out)
    assert code == 0
    worst = full["outputs"][0]["worst_case"]
    assert worst in full["replay"]
    with np.load(inputs) as saved:
        assert sorted(saved.files) == ["attention_mask", "input_ids", "token_type_ids"]
        feeds = {k: saved[k] for k in saved.files}
    with np.load(outputs) as saved:
        assert sorted(saved.files) == ["logits", "logits.reference"]
        saved_diff = float(np.abs(saved["logits"].astype(np.float64) - saved["logits.reference"]).max())
    assert saved_diff == full["outputs"][0]["max_abs"]  # the saved case is the one holding the maximum

    before = (validated_export / "validation.json").read_text()
    code = main(["validate", str(validated_export), "-q", "--json", "--load-inputs", str(inputs)])
    replay = json.loads(capsys.readouterr().out)
    assert code == 0 and len(replay["cases"]) == 1 and replay["cases"][0] == "replay worst.npz"
    assert replay["outputs"][0]["max_abs"] == saved_diff
    assert replay["outputs"][0]["elements"] == feeds["input_ids"].shape[0] * 2  # (batch, 2 labels) of that case only
    assert (validated_export / "validation.json").read_text() == before  # a replay does not rewrite the reports


def test_bad_replay_files_are_one_line_errors(validated_export, tmp_path, capsys):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, ids=np.zeros((1, 4), dtype=np.int64))
    assert main(["validate", str(validated_export), "-q", "--load-inputs", str(wrong)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model's inputs are ['input_ids', 'attention_mask', 'token_type_ids']" in err
    floats = tmp_path / "floats.npz"
    np.savez(floats, input_ids=np.zeros((1, 4)), attention_mask=np.ones((1, 4)), token_type_ids=np.zeros((1, 4)))
    assert main(["validate", str(validated_export), "-q", "--load-inputs", str(floats)]) == 2
    assert "must be an integer array" in capsys.readouterr().err
