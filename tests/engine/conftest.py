"""Fixtures for the engine tests: tiny export directories and TensorRT-for-RTX engines, each
built once per session.

Exports are the expensive part (a dynamo export of even a one-layer model takes seconds), so
the default grid covers every task once, alternating the dynamic-conv mode so both lowerings are
built; the complementary grid (every task x both modes) runs with ``-m slow``.
"""

from __future__ import annotations

import pytest

from convbert_export.tasks import TASKS

# every task once, both modes covered
FAST_GRID = [
    ("feature-extraction", "decomposed"),
    ("fill-mask", "custom-op"),
    ("text-classification", "decomposed"),
    ("token-classification", "custom-op"),
    ("question-answering", "decomposed"),
    ("multiple-choice", "custom-op"),
]
SLOW_GRID = [(task, mode) for task in TASKS for mode in ("decomposed", "custom-op")
             if (task, mode) not in FAST_GRID]

from factories import MAX_POSITIONS, tiny_export, tiny_model  # noqa: F401 - the one model factory


@pytest.fixture(scope="session")
def trt_rtx():
    """The tensorrt_rtx module (skips when TensorRT for RTX is not installed)."""
    return pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX is not installed (pip install tensorrt-rtx)")


class _Cache:
    def __init__(self, factory):
        self.factory = factory
        self.items = {}

    def __call__(self, *key):
        if key not in self.items:
            self.items[key] = self.factory(*key)
        return self.items[key]


@pytest.fixture(scope="session")
def export_dir():
    """``export_dir(task, mode)`` -> a tiny export directory, exported once per test process
    (tests/factories.py's ``tiny_export``, shared with the serving tests)."""
    return tiny_export


@pytest.fixture(scope="session")
def rtx_engine(trt_rtx, export_dir, tmp_path_factory):
    """``rtx_engine(task, mode)`` -> an engine directory built with default settings, once."""
    from convbert_export.engine import EngineSettings, build_engine

    root = tmp_path_factory.mktemp("engines")

    def make(task: str, mode: str):
        return build_engine(export_dir(task, mode), root / f"{task}-{mode}",
                            EngineSettings(backend="tensorrt-rtx"))

    return _Cache(make)
