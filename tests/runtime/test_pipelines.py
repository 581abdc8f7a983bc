"""Pipelines on an ONNX export vs transformers' pipelines on the same saved checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import assert_close_nested, pipeline_for

TEXTS = [
    "hello world",
    "john lives in paris and works at google in new york",
    "the movie was great , i love it !",
    "unhappy dog ran",
]


@pytest.fixture(scope="module")
def classifier(artifacts):
    with pipeline_for(artifacts, "text-classification", batch_size=4) as pipe:
        yield pipe


def test_text_classification_matches_transformers(classifier, hf_pipeline):
    hf = hf_pipeline("text-classification")
    assert_close_nested(classifier(TEXTS[1]), hf(TEXTS[1]))
    assert_close_nested(classifier(TEXTS), hf(TEXTS))
    assert_close_nested(classifier(TEXTS, top_k=None), hf(TEXTS, top_k=None))
    assert_close_nested(classifier(TEXTS[0], top_k=2), hf(TEXTS[0], top_k=2))
    for fn in ("sigmoid", "none"):
        assert_close_nested(classifier(TEXTS, function_to_apply=fn, top_k=None),
                            hf(TEXTS, function_to_apply=fn, top_k=None))
    pair = {"text": "who lives in paris ?", "text_pair": "john lives in paris"}
    assert_close_nested(classifier(pair), hf(pair))


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_transformers(artifacts, hf_pipeline, strategy):
    hf = hf_pipeline("token-classification")
    with pipeline_for(artifacts, "token-classification", batch_size=3) as pipe:
        for text in TEXTS:
            ours = pipe(text, aggregation_strategy=strategy, ignore_labels=[])
            theirs = hf(text, aggregation_strategy=strategy, ignore_labels=[])
            assert_close_nested(ours, theirs)
            assert_close_nested(pipe(text, aggregation_strategy=strategy), hf(text, aggregation_strategy=strategy))


def test_fill_mask_matches_transformers(artifacts, hf_pipeline):
    hf = hf_pipeline("fill-mask")
    with pipeline_for(artifacts, "fill-mask") as pipe:
        texts = ["paris is the [MASK] of france .", "the [MASK] runs to the [MASK] ."]
        for text in texts:
            assert_close_nested(pipe(text), hf(text))
            assert_close_nested(pipe(text, top_k=3), hf(text, top_k=3))
        assert_close_nested(pipe(texts[0], targets=["city", "capital", "dog"]),
                            hf(texts[0], targets=["city", "capital", "dog"]))


def test_feature_extraction_matches_transformers(artifacts, hf_pipeline):
    hf = hf_pipeline("feature-extraction")
    with pipeline_for(artifacts, "feature-extraction") as pipe:
        assert_close_nested(pipe(TEXTS), hf(TEXTS))
        mean = pipe(TEXTS[1], pooling="mean", return_tensors=True)
        np.testing.assert_allclose(mean, np.asarray(hf(TEXTS[1]))[0].mean(axis=0), atol=1e-5)
        cls = pipe(TEXTS[1], pooling="cls")
        np.testing.assert_allclose(cls, np.asarray(hf(TEXTS[1]))[0, 0], atol=1e-5)


def _brute_force_qa(model, tokenizer, question, context, max_answer_len=15):
    """Independent oracle: transformers' model logits, every valid span scored by a loop."""
    import torch

    enc = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    enc.pop("offset_mapping")  # not a model input
    with torch.no_grad():
        out = model(**enc)
    seq = enc.sequence_ids(0)
    allowed = np.array([s == 1 or i == 0 for i, s in enumerate(seq)])
    def probs(x):
        x = np.where(allowed, x.numpy()[0], -10000.0)
        e = np.exp(x - x.max())
        return e / e.sum()
    ps, pe = probs(out.start_logits), probs(out.end_logits)
    best = (-1.0, 0, 0)
    for s in range(1, len(seq)):
        for e in range(s, min(len(seq), s + max_answer_len)):
            if seq[s] == 1 and seq[e] == 1 and ps[s] * pe[e] > best[0]:
                best = (ps[s] * pe[e], s, e)
    score, s, e = best
    words = enc.word_ids(0)
    start = enc.word_to_chars(words[s], sequence_index=1)[0]
    end = enc.word_to_chars(words[e], sequence_index=1)[1]
    return {"score": float(score), "start": start, "end": end, "answer": context[start:end]}


def test_question_answering_matches_span_oracle(artifacts):
    from transformers import AutoTokenizer

    from transformers import AutoModelForQuestionAnswering

    checkpoint, _, _ = artifacts.get("question-answering")
    model = AutoModelForQuestionAnswering.from_pretrained(checkpoint).eval()  # as a pipeline loads it
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    question, context = "where does john live ?", "john lives in paris and mary works at google in new york ."
    with pipeline_for(artifacts, "question-answering") as pipe:
        ours = pipe({"question": question, "context": context})
        assert_close_nested(ours, _brute_force_qa(model, tokenizer, question, context))
        top = pipe({"question": question, "context": context}, top_k=3)
        assert len(top) == 3 and top[0] == ours
        assert all(a["score"] >= b["score"] for a, b in zip(top, top[1:]))
        impossible = pipe({"question": question, "context": context}, handle_impossible_answer=True, top_k=5)
        assert any(a["answer"] == "" and a["start"] == a["end"] == 0 for a in impossible)
        # a context longer than max_seq_len is split into windows; the answer lies in the text
        long_context = " ".join([context] * 8)
        windowed = pipe({"question": question, "context": long_context}, max_seq_len=32, doc_stride=8)
        assert long_context[windowed["start"]:windowed["end"]] == windowed["answer"] != ""


def test_multiple_choice_matches_transformers_model(artifacts):
    import torch
    from transformers import AutoTokenizer

    from transformers import AutoModelForMultipleChoice

    checkpoint, _, _ = artifacts.get("multiple-choice")
    model = AutoModelForMultipleChoice.from_pretrained(checkpoint).eval()  # as a pipeline loads it
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    prompt, choices = "the dog", ["runs in the house", "is big", "lives in paris with john"]
    enc = tokenizer([prompt] * 3, choices, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v[None] for k, v in enc.items()}).logits[0].numpy()
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    with pipeline_for(artifacts, "multiple-choice") as pipe:
        ours = pipe({"prompt": prompt, "choices": choices})
    np.testing.assert_allclose(ours["scores"], expected, atol=1e-5)
    assert ours["index"] == int(expected.argmax()) and ours["choice"] == choices[ours["index"]]
