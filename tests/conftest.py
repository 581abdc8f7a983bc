"""Shared test fixtures: tiny ConvBERT configs, padded inputs, a transformers oracle helper."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def transformers():
    """transformers, the test-only oracle (skips the test when it is not installed)."""
    return pytest.importorskip("transformers")
