"""Metric definitions against hand-computed values (SQuAD's script, sklearn, seqeval)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convbert_export.evaluate import metrics as M


def test_squad_normalisation_and_scores_follow_the_official_script():
    assert M.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert M.normalize_answer("an apple and a pear") == "apple and pear"
    assert M.squad_exact("Paris, France", "paris france") == 1.0
    # pred "in paris" vs gold "paris france": 1 common token, p = 1/2, r = 1/2
    assert M.squad_f1("Paris, France", "in Paris") == pytest.approx(0.5)
    assert M.squad_f1("", "") == 1.0 and M.squad_f1("", "Paris") == 0.0  # impossible questions
    assert M.squad_scores(["1825", "in 1825"], "1825") == (1.0, 1.0)


def test_classification_metrics_match_hand_computation():
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    out = M.classification_metrics(gold, pred, ["a", "b"])
    assert out["accuracy"] == pytest.approx(0.75)
    # F1(a) = 2/3, F1(b) = 0.8
    assert out["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    # tp=2 (b), tn=1, fp=1, fn=0 with b positive: (2*1 - 1*0) / sqrt(3*2*2*1)
    assert out["mcc"] == pytest.approx(2 / math.sqrt(12))


def test_regression_and_entity_metrics():
    out = M.regression_metrics([1, 2, 3, 4], [2, 4, 6, 9])
    assert out["spearman"] == pytest.approx(1.0) and 0.98 < out["pearson"] < 1.0
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "O"]]
    ents = M.entity_metrics(gold, pred)
    assert ents["precision"] == 1.0 and ents["recall"] == 0.5
    assert ents["f1"] == pytest.approx(2 / 3) and ents["token_accuracy"] == 0.75


def test_bootstrap_interval_covers_the_estimate_and_is_reproducible():
    draws = M.bootstrap_indices(50, 300, seed=0)
    assert draws.shape == (300, 50) and np.array_equal(draws, M.bootstrap_indices(50, 300, seed=0))
    values = np.r_[np.ones(30), np.zeros(20)]
    replicates = values[draws].mean(axis=1)
    low, high = M.percentile_interval(replicates)
    assert low < 0.6 < high and high - low < 0.4
