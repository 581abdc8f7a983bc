"""Question answering against transformers 4.x's own pipeline (issue 11, item 7).

transformers 5 dropped the question-answering pipeline, so these tests need transformers 4.57
(the ``test`` extra pins it); with transformers 5 they skip and say why. Same checkpoint, same
tokenizer files: transformers runs its torch model, we run our ONNX export of it; answers,
offsets and scores must agree (scores within 1e-5), on real windows (a context longer than
max_seq_len), top_k 1 and 5, with and without impossible answers.
"""

from __future__ import annotations

import pytest

from .conftest import assert_close_nested, pipeline_for, transformers

if int(transformers.__version__.split(".")[0]) >= 5:
    pytest.skip("transformers 5 has no question-answering pipeline; the `test` extra pins "
                "transformers 4.57 (pip install -e '.[test]') for this oracle", allow_module_level=True)

QUESTION = "where does john live ?"
CONTEXT = "john lives in paris and mary works at google in new york . "
LONG = (CONTEXT + "the big dog runs in the house . ") * 6  # several windows at max_seq_len 32


@pytest.mark.parametrize("params", [
    {},
    {"top_k": 5},
    {"handle_impossible_answer": True},
    {"top_k": 5, "handle_impossible_answer": True},
    {"max_seq_len": 32, "doc_stride": 8},
    {"max_seq_len": 32, "doc_stride": 8, "top_k": 5},
    {"max_seq_len": 32, "doc_stride": 8, "top_k": 5, "handle_impossible_answer": True},
    {"top_k": 5, "align_to_words": False},
])
@pytest.mark.parametrize("context", [CONTEXT, LONG], ids=["short", "long"])
def test_question_answering_matches_transformers_4_pipeline(artifacts, hf_pipeline, params, context):
    hf = hf_pipeline("question-answering")
    theirs = hf(question=QUESTION, context=context, **params)
    with pipeline_for(artifacts, "question-answering") as pipe:
        ours = pipe({"question": QUESTION, "context": context}, **params)
    assert_close_nested(ours, theirs, atol=1e-5)
