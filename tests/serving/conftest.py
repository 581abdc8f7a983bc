"""Fixtures for the serving tests: one tiny exact-padding export per task, built once per session
(a one-layer, 32-wide ConvBERT over the demo vocabulary, seeded weights)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

MAX_POSITIONS = 64
TEXTS = [
    "a fine movie with a good story",
    "the weather in paris was grey",
    "short",
    "python is a programming language that lets you work quickly and integrate systems effectively",
]


def tiny_model(task: str):
    import torch

    from reference_model.modeling import MODEL_CLASSES
    from reference_model.presets import initialize_weights, preset_config

    config = dataclasses.replace(
        preset_config("demo", task), num_hidden_layers=1, hidden_size=32, embedding_size=32,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
    )
    model = MODEL_CLASSES[config.architectures[0]](config)
    initialize_weights(model, config.initializer_range, torch.Generator().manual_seed(0))
    return model.eval()


@pytest.fixture(scope="session")
def serving_export(tmp_path_factory):
    """``serving_export(task)`` -> a tiny exact-padding export directory (cached per session)."""
    import convbert_export

    root = tmp_path_factory.mktemp("serving-exports")
    cache: dict[str, object] = {}

    def get(task: str):
        if task not in cache:
            path = root / task
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                convbert_export.export(tiny_model(task), task, path, validate=False)
            cache[task] = path
        return cache[task]

    return get


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
