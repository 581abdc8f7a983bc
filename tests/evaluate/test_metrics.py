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


def test_count_based_bootstrap_metrics_equal_the_libraries():
    """The bootstrap builds each resample's metrics from per-example counts; on the full data
    they must equal scikit-learn's and seqeval's values."""
    rng = np.random.default_rng(1)
    labels = ["a", "b", "c"]
    gold = list(rng.choice(labels, 40))
    pred = [g if rng.random() < 0.6 else str(rng.choice(labels)) for g in gold]
    conf = np.zeros((3, 3))
    for g, p in zip(gold, pred):
        conf[labels.index(g), labels.index(p)] += 1
    ours = M.classification_from_confusion(conf)
    theirs = M.classification_metrics(gold, pred, labels)
    for name in theirs:
        assert float(ours[name]) == pytest.approx(theirs[name], abs=1e-12), name
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    golds = [list(rng.choice(tags, int(rng.integers(1, 9)))) for _ in range(30)]
    preds = [[t if rng.random() < 0.7 else str(rng.choice(tags)) for t in g] for g in golds]
    sums = np.sum([M.sentence_counts(g, p) for g, p in zip(golds, preds)], axis=0)
    ours = M.entities_from_counts(sums)
    for name, value in M.entity_metrics(golds, preds).items():
        assert float(ours[name]) == pytest.approx(value, abs=1e-12), name
    weights = M.resample_weights(np.array([[0, 0, 2], [1, 2, 2]]), 3)
    assert weights.tolist() == [[2, 0, 1], [0, 1, 2]]
