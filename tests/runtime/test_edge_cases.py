"""Edge cases found in a bug hunt: each test failed before its fix."""

from __future__ import annotations

import pytest

from convbert_export.errors import InvalidInputError

from .conftest import pipeline_for


@pytest.fixture(scope="module")
def qa(artifacts):
    with pipeline_for(artifacts, "question-answering", batch_size=4) as pipe:
        yield pipe


def test_qa_top_k_at_least_the_number_of_spans(qa):
    """top_k equal to the number of span candidates used to raise numpy's ValueError (and so
    fail every request in the call); now every valid span is returned, best first."""
    short = {"question": "where", "context": "paris"}  # 5 tokens -> 25 candidate cells
    longer = {"question": "where does john live ?", "context": "john lives in paris and mary works"}
    results = qa.run_many([short, longer], top_k=25)
    assert not any(isinstance(r, Exception) for r in results), results
    for answers in results:
        assert answers and all(a["score"] >= b["score"] for a, b in zip(answers, answers[1:]))
    assert results[0][0] == qa(short)  # the best of many is the top_k=1 answer


@pytest.mark.parametrize("params", [
    {"doc_stride": -1},
    {"max_seq_len": 32, "doc_stride": 32},
    {"max_seq_len": -5},
    {"max_seq_len": 3},
    {"max_seq_len": 20.5},
    {"max_answer_len": 2.5},
    {"top_k": True},
])
def test_qa_bad_parameters_rejected_up_front(qa, params):
    with pytest.raises(InvalidInputError):
        qa.run_many([{"question": "where", "context": "paris"}], **params)


@pytest.mark.parametrize("task,item", [
    ("question-answering", {1: "a", "question": "where"}),
    ("text-classification", {1: "a", "text": "hello"}),
    ("multiple-choice", {1: "a", "prompt": "the dog"}),
])
def test_dict_with_non_string_keys_is_a_typed_error(artifacts, task, item):
    with pipeline_for(artifacts, task) as pipe:
        with pytest.raises(InvalidInputError):
            pipe.check_input(item)
        results = pipe.run_many([item])
        assert isinstance(results[0], InvalidInputError)


def _export_with_extra_token(artifacts, tmp_path, token: str = "zzextra"):
    """A copy of the feature-extraction export whose tokenizer knows one token more than the
    model's vocabulary (a tokenizer extended with add_tokens but a model not resized)."""
    import json
    import shutil

    _, _, export = artifacts.get("feature-extraction")
    copy = tmp_path / "extra-token"
    shutil.copytree(export, copy)
    data = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    new_id = len(data["model"]["vocab"])
    data["added_tokens"].append({"id": new_id, "content": token, "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": True, "special": False})
    (copy / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    # a deliberate edit: record it in the manifest, as a deployer re-signing the directory would
    from convbert_export.fileio import sha256_file

    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["tokenizer.json"] = sha256_file(copy / "tokenizer.json")
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def test_a_request_the_runner_rejects_fails_alone(artifacts, tmp_path):
    """An out-of-vocabulary token id in one text used to make the runner's check raise for the
    whole batch, failing every batch-mate (and the whole micro-batch / predict chunk)."""
    from convbert_export.runtime.ort import OrtSettings
    from convbert_export.runtime.pipeline import Pipeline

    copy = _export_with_extra_token(artifacts, tmp_path)
    settings = OrtSettings(intra_op_threads=1, inter_op_threads=1)
    with Pipeline.from_export(copy, batch_size=8, settings=settings) as pipe:
        texts = ["hello world", "hello zzextra", "hello big", "the dog runs"]  # equal lengths: one batch
        solo = {t: pipe(t, return_tensors=True) for t in texts if t != "hello zzextra"}
        results = pipe.run_many(texts, return_tensors=True)
    assert isinstance(results[1], InvalidInputError), results[1]
    for text, result in zip(texts, results):
        if text != "hello zzextra":
            assert not isinstance(result, Exception), result
            import numpy as np

            np.testing.assert_allclose(result, solo[text], atol=1e-5, rtol=0)


def test_an_unexpected_error_in_one_item_fails_that_item_only(artifacts):
    """A non-typed exception while post-processing one item used to escape run_many, failing
    the whole call (every micro-batcher future of the group, the whole predict chunk)."""
    import numpy as np

    from convbert_export.runtime.batcher import MicroBatcher
    from convbert_export.runtime.pipeline import FeatureExtractionPipeline

    class Fragile(FeatureExtractionPipeline):
        def postprocess(self, text, features, outputs, params):
            if text == "the dog":
                raise ZeroDivisionError("post-processing bug")
            return super().postprocess(text, features, outputs, params)

    _, _, export = artifacts.get("feature-extraction")
    with pipeline_for(artifacts, "feature-extraction") as plain:
        with Fragile(plain.runner, export, batch_size=4) as pipe:
            results = pipe.run_many(["hello world", "the dog", "red house"], return_tensors=True)
            assert isinstance(results[1], ZeroDivisionError)
            np.testing.assert_allclose(results[0], pipe("hello world", return_tensors=True), atol=1e-5)
            with MicroBatcher(pipe, max_batch_size=4, max_delay_ms=50) as batcher:
                good, bad = batcher.submit("red house"), batcher.submit("the dog")
                assert len(good.result(timeout=30)) == 1
                with pytest.raises(ZeroDivisionError):
                    bad.result(timeout=30)


def test_predict_line_numbers_count_blank_lines(artifacts, tmp_path):
    """Blank lines are skipped, but "line" must still name the file's line (it used to count
    non-blank lines only, so an error pointed at the wrong line)."""
    import json

    from click.testing import CliRunner

    from convbert_export.commands.predict import command

    _, _, export = artifacts.get("text-classification")
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "hello world"}\n\n   \n{"text": ""}\n{"text": "dog ran"}\n', encoding="utf-8")
    result = CliRunner().invoke(command, [str(export), "--input", str(source), "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 4, 5]
    assert "error" in rows[1] and "result" in rows[0] and "result" in rows[2]


def test_ignore_labels_as_one_string(artifacts):
    """ignore_labels="B-PER" used to become ["B", "-", "P", "E", "R"], ignoring nothing."""
    with pipeline_for(artifacts, "token-classification") as pipe:
        text = "john lives in paris and works at google"
        everything = pipe(text, ignore_labels=[])
        label = everything[0]["entity"]
        kept = pipe(text, ignore_labels=label)
        assert kept == pipe(text, ignore_labels=[label])
        assert label not in {e["entity"] for e in kept} and len(kept) < len(everything)


def test_batch_size_must_be_an_int(artifacts):
    """batch_size=2.5 used to be accepted, and no batch ever reached its size: one unbounded batch."""
    with pytest.raises(InvalidInputError):
        pipeline_for(artifacts, "feature-extraction", batch_size=2.5)
