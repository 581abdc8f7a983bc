"""The validation statistics behind the report, against numpy computed directly."""

from __future__ import annotations

import numpy as np
import pytest

from convbert_export.validate.compare import OutputStats


def test_error_statistics_match_numpy():
    rng = np.random.default_rng(0)
    ref = [rng.normal(size=(4, 90, 8)), rng.normal(size=(3, 50, 8))]
    got = [r + rng.normal(scale=1e-6, size=r.shape) * (rng.random(r.shape) < 0.8) for r in ref]
    stats = OutputStats("logits", atol=1e-6, rtol=1e-5)
    for i, (g, r) in enumerate(zip(got, ref)):
        stats.update(f"case{i}", g, r, length=r.shape[1])
    diff = np.concatenate([np.abs(g - r).ravel() for g, r in zip(got, ref)])
    refs = np.concatenate([r.ravel() for r in ref])
    data = stats.to_dict()
    err = data["error"]
    assert err["mean"] == pytest.approx(diff.mean(), rel=1e-12)
    assert err["zeros"] == int(np.count_nonzero(diff == 0)) and sum(err["counts"]) + err["zeros"] == diff.size
    for q in (50, 90, 99):
        assert err[f"p{q}"] == pytest.approx(np.percentile(diff, q), rel=0.13)  # a bin of 20 per decade
    # the smallest tolerances that pass: at those values nothing is outside, a hair less and something is
    assert data["min_atol"] == pytest.approx(np.max(diff - 1e-5 * np.abs(refs)))
    assert not np.any(diff > data["min_atol"] + 1e-5 * np.abs(refs) + 1e-18)
    assert np.any(diff > 0.999 * data["min_atol"] + 1e-5 * np.abs(refs))
    assert np.all(diff <= 1e-6 + data["min_rtol"] * np.abs(refs) * (1 + 1e-9))
    case = int(np.argmax([np.abs(g - r).max() for g, r in zip(got, ref)]))
    at = tuple(data["worst"]["index"])
    assert data["worst_case"] == f"case{case}" and data["worst"]["got"] == got[case][at] and data["worst"]["ref"] == ref[case][at]
    assert data["values"]["reference"]["max"] == pytest.approx(refs.max())
    assert data["values"]["reference"]["std"] == pytest.approx(refs.std(), rel=1e-9)
    assert data["by_length"] == [[90, pytest.approx(np.abs(got[0] - ref[0]).max())], [50, pytest.approx(np.abs(got[1] - ref[1]).max())]]
