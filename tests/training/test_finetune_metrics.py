"""The fine-tuning metrics against hand-checked values and NumPy's own statistics."""

from __future__ import annotations

import numpy as np
import pytest

from modernbert.training import metrics as M


def test_binary_classification_by_hand():
    # tp=2 tn=1 fp=1 fn=0 (positive class 1): F1 of class 0 = 2/3, of class 1 = 4/5; MCC = 2 / sqrt(3*2*1*2).
    m = M.classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["matthews_correlation"] == pytest.approx(2 / np.sqrt(12))


def test_multiclass_mcc_by_hand_and_degenerate_cases():
    # Confusion (rows true, cols predicted) [[2,1,0],[0,1,1],[0,0,1]]: n=6, correct=4, t=(3,2,1), p=(2,2,2).
    # cov = 4*6 - (3*2 + 2*2 + 1*2) = 12; denom = sqrt((36 - 12) * (36 - 14)).
    y, p = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2])
    m = M.classification_metrics(y, p, 3)
    assert m["matthews_correlation"] == pytest.approx(12 / np.sqrt(24 * 22))
    assert m["f1"] == pytest.approx(np.mean([2 * 2 / (4 + 0 + 1), 2 * 1 / (2 + 1 + 1), 2 * 1 / (2 + 1 + 0)]))
    assert M.classification_metrics(np.array([1, 1]), np.array([1, 1]), 2)["matthews_correlation"] == 0.0
    assert M.classification_metrics(np.array([0, 1]), np.array([1, 0]), 2)["matthews_correlation"] == -1.0


def test_multilabel():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    p = np.array([[1, 0, 0], [0, 1, 0]])
    m = M.multilabel_metrics(y, p)
    assert m["accuracy"] == 0.5
    assert m["f1"] == pytest.approx((1 + 1 + 0) / 3)  # label 2: tp=0 fn=1: F1 0
    assert m["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))


def test_regression():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    m = M.regression_metrics(x, y)
    assert m["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert m["mse"] == pytest.approx(np.mean((x - y) ** 2))
    # Spearman by hand: ranks differ by one swap, sum d^2 = 2: 1 - 6*2 / (4*15) = 0.8.
    assert M.regression_metrics([1, 2, 3, 4], [10, 30, 20, 40])["spearmanr"] == pytest.approx(0.8)
    # Ties share their average rank: ranks of [1, 2, 2, 3] are [1, 2.5, 2.5, 4].
    expected = np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1]
    assert M.regression_metrics([1, 2, 2, 3], [1, 2, 3, 4])["spearmanr"] == pytest.approx(expected)
    assert np.isnan(M.regression_metrics([1, 1, 1], [1, 2, 3])["pearson"])
