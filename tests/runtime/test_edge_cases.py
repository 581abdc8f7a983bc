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
