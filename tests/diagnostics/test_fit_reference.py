"""``diagnosis_.reference``: the fit hook's reference optimum, kept JSON-safe on the
Diagnosis (``gradwise fit`` reads it instead of solving the problem again)."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression as SkLogistic

from gradwise.models import LinearRegression, LogisticRegression, PolynomialRegression

#: the fits are deliberately short: only the reference matters here
pytestmark = pytest.mark.filterwarnings("ignore:.*the epoch budget")


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = 1.5 * X[:, 0] - 2.0 * X[:, 1] + 0.3 + 0.1 * rng.normal(size=n)
    return X, y


def test_linear_reference_is_least_squares_and_json_safe():
    X, y = _data()
    est = LinearRegression(lr=0.1, epochs=5).fit(X, y)
    ref = est.diagnosis_.reference
    json.dumps(ref)  # JSON-safe as stored
    A = np.c_[X, np.ones(len(X))]
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[ref["coef"], ref["intercept"]], sol, rtol=1e-10)
    assert np.isclose(ref["loss"], np.mean((A @ sol - y) ** 2), rtol=1e-12)
    assert np.isclose(ref["baseline"], np.var(y), rtol=1e-12)


def test_polynomial_reference_uses_the_estimators_expansion():
    X, y = _data()
    est = PolynomialRegression(degree=2, lr=0.01, epochs=5).fit(X, y)
    ref = est.diagnosis_.reference
    A = np.c_[est._expand(X), np.ones(len(X))]
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    assert len(ref["coef"]) == 5  # x1, x2, x1^2, x1 x2, x2^2
    np.testing.assert_allclose(np.r_[ref["coef"], ref["intercept"]], sol, rtol=1e-8, atol=1e-10)


def test_logistic_reference_matches_unpenalised_sklearn_and_separable_is_flagged():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)  # overlapping classes
    ref = LogisticRegression(lr=0.1, epochs=5).fit(X, y).diagnosis_.reference
    sk = SkLogistic(C=np.inf, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(ref["coef"], sk.coef_.ravel(), rtol=1e-5)
    np.testing.assert_allclose(ref["intercept"], sk.intercept_, rtol=1e-5, atol=1e-8)
    Xs = np.r_[X[y == 0] - 3.0, X[y == 1] + 3.0]  # shifted apart: linearly separable
    ys = np.r_[np.zeros((y == 0).sum()), np.ones((y == 1).sum())].astype(int)
    d = LogisticRegression(lr=0.1, epochs=5).fit(Xs, ys).diagnosis_
    assert d.reference["separable"] is True and d.reference["loss"] == 0.0
    assert "model.capacity" not in d.codes()
