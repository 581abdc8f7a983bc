"""Errors a user can cause: one line on stderr, exit 2; an internal error has its own exit code
(issue 11, items 10-14)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from convbert_export.cli import EXIT_INTERNAL, main
from convbert_export.errors import InvalidInputError
from factories import demo_export


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("error: ")


# ---- item 10: lone surrogates in QA contexts and choices ---------------------------------
@pytest.mark.parametrize("task, record", [
    ("question-answering", {"question": "who?", "context": "Ada\ud800 lived\ud800 in\ud800 London\ud800."}),
    ("multiple-choice", {"prompt": "pick", "choices": ["a \ud800 b", "c \ud800 d"]}),
])
def test_lone_surrogates_are_replaced_and_warned_per_line(capsys, tmp_path, task, record):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "x"}\n\n' + json.dumps(record) + "\n", encoding="utf-8")
    out_path = tmp_path / "out.jsonl"
    code, out, err = _run(capsys, "predict", demo_export(task), "--input", source, "--output", out_path)
    assert code == 0, err
    answers = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
    assert [a["line"] for a in answers] == [1, 3]
    assert "error" in answers[0] and "result" in answers[1]
    text = json.dumps(answers[1]["result"], ensure_ascii=False)
    assert "\ud800" not in text  # valid UTF-8 written
    assert "warning: line 3:" in err and "lone surrogates" in err, err
    code, out, err = _run(capsys, "predict", demo_export(task), "--input", source, "-q")
    assert code == 0 and err == "", err
    assert len(out.splitlines()) == 2


# ---- item 11: malformed files and paths: one line, exit 2 ----------------------------------
def test_manifest_holding_a_list_and_truncated_config(capsys, tmp_path):
    export = shutil.copytree(demo_export("text-classification"), tmp_path / "clf")
    manifest = (export / "manifest.json").read_text(encoding="utf-8")
    (export / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    code, _, err = _run(capsys, "predict", export, "--text", "hi", "-q")
    assert code == 2 and _one_line(err) and "expected a JSON object" in err, err
    (export / "manifest.json").write_text(manifest, encoding="utf-8")
    config = (export / "config.json").read_text(encoding="utf-8")
    (export / "config.json").write_text(config[: len(config) // 2], encoding="utf-8")
    code, _, err = _run(capsys, "predict", export, "--text", "hi", "-q", "--no-verify")
    assert code == 2 and _one_line(err) and "config.json: invalid JSON" in err, err


def test_engine_json_bad_dtype_list_or_no_profiles():
    from convbert_export.engine.metadata import EngineInfo

    good = {
        "format": "convbert-export-engine/1", "backend": "tensorrt-rtx", "backend_version": "1.7", "task": "text-classification",
        "precision": "fp32", "dynamic_conv": "decomposed", "target": {},
        "profiles": [{"batch": [1, 1, 1], "sequence": [1, 8, 8]}],
        "inputs": [{"name": "input_ids", "dtype": "int64", "axes": ["batch", "sequence"]}],
        "outputs": [{"name": "logits", "dtype": "float32", "axes": ["batch", 2]}],
        "plan": {"file": "model.plan", "sha256": "0" * 64, "bytes": 1},
    }
    from convbert_export.engine import metadata

    good["format"] = metadata.ENGINE_FORMAT
    try:
        EngineInfo.from_dict(good)
    except InvalidInputError as exc:  # the profile layout may differ: adapt from the error
        pytest.fail(f"the well-formed engine.json was refused: {exc}")
    bad_dtype = json.loads(json.dumps(good))
    bad_dtype["inputs"][0]["dtype"] = 5.5
    no_profiles = {**good, "profiles": []}
    for data, expected in ((bad_dtype, "malformed engine.json"), ([good], "expected a JSON object"),
                           (no_profiles, "profiles")):
        with pytest.raises(InvalidInputError, match=expected) as info:
            EngineInfo.from_dict(data)
        assert "max_contexts" not in str(info.value)


def test_predict_output_in_a_missing_directory_fails_before_loading(capsys, tmp_path):
    started = time.perf_counter()
    code, _, err = _run(capsys, "predict", demo_export("text-classification"), "--text", "hi",
                        "--output", tmp_path / "nonexistent" / "x.jsonl", "-q")
    assert code == 2 and _one_line(err) and "does not exist" in err, err


def test_optimize_with_external_data_outside_the_directory(capsys, tmp_path):
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    from convbert_export.fileio import sha256_file

    export = shutil.copytree(demo_export("text-classification"), tmp_path / "clf")
    model = onnx.load(str(export / "model.onnx"))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    onnx.save(model, str(export / "model.onnx"))  # writes the data, then point every tensor outside
    (export / "model.onnx.data").rename(tmp_path / "outside.data")
    model = onnx.load(str(export / "model.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../outside.data"
    onnx.save(model, str(export / "model.onnx"))
    data = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    data["files"]["model.onnx"] = sha256_file(export / "model.onnx")  # consistent, yet still refused
    (export / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    assert (tmp_path / "outside.data").is_file()
    code, _, err = _run(capsys, "optimize", export, "-o", tmp_path / "opt", "--int8", "dynamic", "--no-validate", "-q")
    assert code == 2 and _one_line(err) and "points outside the directory" in err, err
    assert not (tmp_path / "opt").exists()


# ---- item 12: messages that say what is wrong ----------------------------------------------
def test_token_type_id_range_error_does_not_blame_the_vocabulary():
    import numpy as np

    from convbert_export.runtime.ort import OrtRunner

    with OrtRunner(demo_export("text-classification")) as runner:
        feeds = {"input_ids": np.array([[2, 10, 3]]), "attention_mask": np.ones((1, 3), np.int64),
                 "token_type_ids": np.array([[0, 0, 5]])}
        with pytest.raises(InvalidInputError, match="type_vocab_size") as info:
            runner.run(feeds)
    assert "vocabulary" not in str(info.value)


def test_corrupt_vocab_does_not_advise_a_larger_max_length(tmp_path):
    from convbert_export.tokenization import Tokenizer

    export = demo_export("text-classification")
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(export / name, tmp_path / name)
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "vocab.txt").write_text("\n".join(l for l in lines if l != "[UNK]") + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="tokenizer files") as info:
        Tokenizer.from_pretrained(tmp_path)(["hello \u2603"], truncation=True, max_length=16)
    assert "max_length" not in str(info.value)


def test_fill_mask_whose_mask_was_truncated_away():
    from convbert_export.runtime.pipelines import Pipeline

    with Pipeline.from_export(demo_export("fill-mask")) as pipe:
        with pytest.raises(InvalidInputError, match="cut off"):
            pipe("word " * 300 + "[MASK]")
        with pytest.raises(InvalidInputError, match="no mask token"):
            pipe("no mask here")


def test_missing_tensorrt_hint_offers_no_backend_option_when_running(monkeypatch):
    import sys

    from convbert_export.engine.backends import import_backend
    from convbert_export.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    with pytest.raises(MissingDependencyError) as info:
        import_backend("tensorrt-rtx", alternative=False)
    assert "--backend" not in str(info.value) and "pip install" in str(info.value)
    with pytest.raises(MissingDependencyError, match="--backend"):
        import_backend("tensorrt-rtx")  # build-engine has the option


def test_pickle_refusal_never_suggests_weights_only_false(tmp_path):
    import torch

    import reference_model
    from reference_model.errors import CheckpointError  # reference_model.load raises its own errors

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    reference_model.ConvBertConfig(vocab_size=32, embedding_size=8, hidden_size=8, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=8).save_pretrained(checkpoint)
    torch.save({"x": Payload()}, checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as info:
        reference_model.load(checkpoint)
    message = str(info.value)
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message
    assert "will likely succeed" not in message and "GLOBAL" in message, message


def test_export_no_validate_json_does_not_say_passed(capsys, tmp_path):
    code, out, err = _run(capsys, "export", "--preset", "demo", "--task", "text-classification", "-o",
                          tmp_path / "x", "--no-validate", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["passed"] is None and data["validated"] is False


# ---- item 13: an internal error has its own exit code ------------------------------------
def test_an_unexpected_exception_exits_3_in_one_line(capsys, monkeypatch):
    from convbert_export.runtime.pipelines import Pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Pipeline, "from_export", broken)
    code, _, err = _run(capsys, "predict", demo_export("text-classification"), "--text", "hi", "-q")
    assert code == EXIT_INTERNAL == 3
    assert err.count("\n") == 1 and "internal error" in err and "ZeroDivisionError: a bug" in err, err


# ---- item 14: close(timeout) returns in time with a full queue ----------------------------
def test_batcher_close_honours_its_timeout_with_a_full_queue():
    from convbert_export.runtime.batcher import MicroBatcher
    from convbert_export.runtime.pipelines import Pipeline

    with Pipeline.from_export(demo_export("text-classification"), batch_size=1) as pipe:
        slow_run_many = pipe.run_many

        def run_many(items, **params):  # one batch takes a second
            time.sleep(1.0)
            return slow_run_many(items, **params)

        pipe.run_many = run_many
        batcher = MicroBatcher(pipe, max_batch_size=1, max_delay_ms=0, max_queue=2)
        futures = [batcher.submit("a fine movie")]
        time.sleep(0.1)  # the worker takes it and runs for a second; then fill the queue
        futures += [batcher.submit("a fine movie"), batcher.submit("a fine movie")]
        started = time.perf_counter()
        batcher.close(timeout=0.1)
        elapsed = time.perf_counter() - started
        # it blocked putting its stop marker into the full queue until a batch finished (~1 s);
        # now it returns after its timeout (bound far above 0.1 s, far below one batch)
        assert elapsed < 0.7, elapsed
        for future in futures:  # and every queued request still completes
            assert future.result(timeout=30)["label"].startswith("LABEL_")
