"""Fixtures for the serving tests: one tiny exact-padding export per task, built once per session
(a one-layer, 32-wide ConvBERT over the demo vocabulary, seeded weights), the per-task records,
and a nested comparison of answers."""

from __future__ import annotations

import pytest

from factories import tiny_export  # the one export factory (shared with tests/engine)

TEXTS = [
    "a fine movie with a good story",
    "the weather in paris was grey",
    "short",
    "python is a programming language that lets you work quickly and integrate systems effectively",
]


@pytest.fixture(scope="session")
def serving_export():
    """``serving_export(task)`` -> a tiny exact-padding export directory named ``task``, exported
    once per test process (tests/factories.py's ``tiny_export``, shared with the engine tests)."""
    return tiny_export


def records_for(task: str) -> list[dict]:
    """Per-task records as `predict` reads them, including a long question-answering context."""
    if task == "question-answering":
        context = " ".join(TEXTS * 6)  # longer than one 64-token window
        return [{"question": "where was the weather grey?", "context": TEXTS[1]},
                {"question": "what is python?", "context": context}]
    if task == "multiple-choice":
        return [{"prompt": "the movie was", "choices": ["fine", "a good story about paris", "grey"]},
                {"prompt": TEXTS[3], "choices": ["yes", "no"]}]
    if task == "fill-mask":
        return [{"text": "a fine [MASK] with a good story"}, {"text": "the [MASK] in paris was [MASK]"}]
    if task == "text-classification":
        return [{"text": t} for t in TEXTS] + [{"text": TEXTS[0], "text_pair": TEXTS[1]}]
    return [{"text": t} for t in TEXTS]


def assert_same(ours, theirs, path="answer", atol=1e-5):
    """Nested answers equal: same keys and lengths, floats within ``atol``."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{path}.{key}", atol)
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{i}]", atol)
    elif isinstance(theirs, float):
        assert abs(ours - theirs) <= atol, f"{path}: {ours} vs {theirs}"
    else:
        assert ours == theirs, f"{path}: {ours!r} vs {theirs!r}"
