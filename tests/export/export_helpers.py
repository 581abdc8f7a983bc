"""Shared pieces of the export tests: a fast validation grid (the models come from
tests/factories.py: ``make_model``, ``GROUPED``, ``BASE``)."""

from __future__ import annotations

from convbert_export.validate import ValidationSettings

# Small grid: batch 1, 2, 5 x sequence 1, 7 and the maximum (64): still covers shapes unlike
# the trace shape (2 x 8), right padding and both token types.
FAST_GRID = ValidationSettings(sequences=(1, 7, 0), num_choices=(2, 3))
