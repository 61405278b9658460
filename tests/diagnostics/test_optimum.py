"""Reference optima and the predicted number of steps."""

import math

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression as SkLogistic

from gradwise.diagnostics.curvature import Objective
from gradwise.diagnostics.optimum import (
    condition_number,
    distance,
    least_squares,
    logistic,
    quadratic_optimum,
    steps_to_tolerance,
    tolerance,
)


@pytest.fixture(scope="module")
def bmi():
    d = load_diabetes(scaled=False)
    return d.data[:, 2], d.target


def test_least_squares_s2_numbers(bmi):
    x, y = bmi
    ref = least_squares(x, y)
    assert ref.coef[0] == pytest.approx(10.233128, abs=1e-6)
    assert ref.intercept == pytest.approx(-117.773367, abs=1e-6)
    assert ref.loss == pytest.approx(3890.4566, abs=1e-4)


def test_condition_number_s2(bmi):
    x, _ = bmi
    assert condition_number(x) == pytest.approx(26333, rel=1e-3)
    assert condition_number(x, standardize=True) == pytest.approx(1.0, abs=1e-9)


def test_quadratic_optimum_of_a_loss_function(bmi):
    x, y = bmi
    q = quadratic_optimum(lambda p: ((y - (p["m"] * x + p["c"])) ** 2).mean(), {"m": 0.0, "c": 0.0})
    assert float(q.params["m"]) == pytest.approx(10.233128, abs=1e-6)
    assert float(q.params["c"]) == pytest.approx(-117.773367, abs=1e-6)
    assert q.loss == pytest.approx(3890.4566, abs=1e-4)
    np.testing.assert_allclose(q.eigenvalues, [0.0544, 1432.3], rtol=2e-3)
    assert distance(np.zeros(2), q) == pytest.approx(math.hypot(10.233128, 117.773367), rel=1e-7)


def test_quadratic_optimum_untraceable_loss(bmi):
    x, y = bmi

    def loss(p):  # float() forces finite differences
        return float(np.mean((y - (float(p[0]) * x + float(p[1]))) ** 2))

    q = quadratic_optimum(loss, np.zeros(2))
    np.testing.assert_allclose(q.x, [10.233128, -117.773367], rtol=1e-6)


def test_non_quadratic_gives_none():
    assert quadratic_optimum(lambda w: (w**4).sum() + (w**2).sum(), np.ones(3)) is None
    # indefinite: a saddle has no minimiser
    assert quadratic_optimum(lambda w: w[0] ** 2 - w[1] ** 2, np.ones(2)) is None


def test_logistic_matches_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.3 + rng.normal(size=200) > 0).astype(float)
    ref = logistic(X, y)
    sk = SkLogistic(C=np.inf, tol=1e-12, max_iter=10000).fit(X, y)
    assert ref.converged
    np.testing.assert_allclose(ref.coef, sk.coef_[0], rtol=1e-4)
    assert ref.intercept == pytest.approx(sk.intercept_[0], rel=1e-4)


def test_steps_to_tolerance_matches_gd_simulation():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(30, 3)) * [1.0, 3.0, 0.3]
    b = rng.normal(size=30)
    H = 2 * A.T @ A / 30
    xs = np.linalg.solve(A.T @ A, A.T @ b)
    ev, U = np.linalg.eigh(H)
    lr = 1.0 / ev[-1]
    x = np.zeros(3)
    tol = 1e-6
    pred = steps_to_tolerance(ev, U, x - xs, lr, tol)
    t = 0
    while np.linalg.norm(x - xs) > tol:
        x = x - lr * 2 * A.T @ (A @ x - b) / 30
        t += 1
    assert pred == t
    assert steps_to_tolerance(ev, U, -xs, 2.01 / ev[-1], tol) == math.inf
    assert steps_to_tolerance(ev, U, np.zeros(3), lr, tol) == 0


def test_tolerance_and_objective_roundtrip():
    obj = Objective(lambda p: (p["a"] ** 2).sum() + p["b"] ** 2, {"a": np.ones((2, 2)), "b": 3.0})
    assert obj.n == 5
    back = obj.unflat(obj.x0)
    np.testing.assert_array_equal(back["a"], np.ones((2, 2)))
    q = quadratic_optimum(obj)
    np.testing.assert_allclose(q.x, 0, atol=1e-12)
    assert tolerance(q) == pytest.approx(1e-3)


def test_least_squares_errors():
    with pytest.raises(ValueError, match="samples"):
        least_squares(np.ones((3, 1)), np.ones(4))
    with pytest.raises(ValueError, match="only 0 and 1"):
        logistic(np.ones((3, 1)), np.array([0, 1, 2]))
