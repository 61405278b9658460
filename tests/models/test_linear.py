"""Linear, polynomial and logistic regression: scenario numbers (S2, S5), the
least-squares / maximum-likelihood optimum, warnings, dtypes, hooks."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gradwise.data import load_dataset
from gradwise.models import (
    DivergenceWarning,
    LinearRegression,
    LogisticRegression,
    PolynomialRegression,
)


def lstsq(X, y):
    A = np.column_stack([X, np.ones(len(X))])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    return theta[:-1], theta[-1]


def rel_err(got, want):
    return np.linalg.norm(np.asarray(got) - want) / np.linalg.norm(want)


def test_s2_raw_settings_reproduce_scenario_numbers():
    d = load_dataset("diabetes_bmi")
    m = LinearRegression(lr=1e-4, epochs=1000, diagnose=False).fit(d.X, d.y)
    assert m.coef_[0] == pytest.approx(5.90496, abs=5e-6)
    assert m.intercept_ == pytest.approx(-0.42310, abs=5e-6)
    assert np.mean((m.predict(d.X) - d.y) ** 2) == pytest.approx(4265.48, abs=0.005)
    assert m.n_iter_ == 1000 and m.loss_curve_.shape == (1000,)
    assert m.loss_curve_[0] == pytest.approx(np.mean(d.y**2))  # from m = c = 0


def test_s2_standardized_reaches_least_squares_optimum():
    d = load_dataset("diabetes_bmi")
    m = LinearRegression(lr=0.1, epochs=300, standardize=True, diagnose=False).fit(d.X, d.y)
    coef, icpt = lstsq(d.X, d.y)
    assert rel_err([m.coef_[0], m.intercept_], [coef[0], icpt]) <= 1e-6
    assert m.coef_[0] == pytest.approx(10.233128, abs=1e-5)  # scenario's OLS, original units
    assert m.intercept_ == pytest.approx(-117.773367, abs=1e-5)


def test_s5_cubic_standardized_reaches_ols():
    d = load_dataset("cubic")
    m = PolynomialRegression(3, lr=0.1, epochs=3000, standardize=True, diagnose=False)
    m.fit(d.X, d.y)
    np.testing.assert_array_equal(m.powers_[:, 0], [1, 2, 3])
    a_b_c_d = [m.coef_[2], m.coef_[1], m.coef_[0], m.intercept_]
    ols = [0.478966, -1.255555, -1.859872, 1.251128]
    x = d.X[:, 0]
    coef, icpt = lstsq(np.column_stack([x**3, x**2, x]), d.y)
    assert rel_err(a_b_c_d, np.r_[coef, icpt]) <= 1e-6
    np.testing.assert_allclose(a_b_c_d, ols, atol=1e-6)
    assert np.mean((m.predict(d.X) - d.y) ** 2) == pytest.approx(0.892952, abs=1e-6)


def test_divergence_warns_keeps_finite_parameters_and_never_raises():
    d = load_dataset("diabetes_bmi")
    m = LinearRegression(lr=0.01, epochs=2000, diagnose=False)  # 0.01 > 2/1432.3
    with pytest.warns(DivergenceWarning, match="non-finite at step"):
        with np.errstate(over="ignore", invalid="ignore"):
            m.fit(d.X, d.y)
    assert issubclass(DivergenceWarning, RuntimeWarning)
    r = m.result_
    assert r.stopped_reason == "nonfinite_loss" and m.n_iter_ < 2000
    assert np.isfinite(m.coef_).all() and np.isfinite(m.intercept_)
    assert np.isfinite(m.predict(d.X)).all()


def test_convergence_warning_when_budget_ends_early():
    d = load_dataset("diabetes_bmi")
    with pytest.warns(ConvergenceWarning, match="epochs=20"):
        LinearRegression(lr=0.1, epochs=20, standardize=True, diagnose=False).fit(d.X, d.y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegression(lr=0.1, epochs=200, standardize=True, diagnose=False).fit(d.X, d.y)


def test_early_stopping_with_n_iter_no_change():
    d = load_dataset("diabetes_bmi")
    m = LinearRegression(
        lr=0.1, epochs=5000, standardize=True, n_iter_no_change=5, diagnose=False
    ).fit(d.X, d.y)
    assert m.result_.stopped_reason == "converged" and m.n_iter_ < 200


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sse_loss_and_per_sample_sgd_is_lms():
    d = load_dataset("houses")
    X = d.X / d.X.sum(axis=0)
    y = d.y / 100
    m = LinearRegression(
        lr=0.05, epochs=3, batch_size=1, shuffle=False, loss="sse", diagnose=False
    ).fit(X, y)
    theta = np.zeros(3)  # [w1, w2, b]; per sample θ ← θ − 0.05·2(x·θ − y)x
    A = np.column_stack([X, np.ones(5)])
    for _ in range(3):
        for a, t in zip(A, y):
            theta -= 0.05 * 2 * (a @ theta - t) * a
    np.testing.assert_allclose(np.r_[m.coef_, m.intercept_], theta, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_trained_in_float32():
    d = load_dataset("diabetes_bmi")
    X, y = d.X.astype(np.float32), d.y.astype(np.float32)
    m = LinearRegression(lr=0.1, epochs=200, standardize=True, diagnose=False).fit(X, y)
    assert m.model_.weight.data.dtype == np.float32 and m.coef_.dtype == np.float32
    assert m.predict(X).dtype == np.float32
    assert m.coef_[0] == pytest.approx(10.233128, rel=1e-4)
    m64 = LinearRegression(lr=0.1, epochs=5, diagnose=False).fit(d.X.astype(int), d.y)
    assert m64.model_.weight.data.dtype == np.float64


def test_multi_output_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    Y = X @ rng.normal(size=(3, 2)) + [1.0, -2.0]
    m = LinearRegression(lr=0.2, epochs=500, diagnose=False).fit(X, Y)
    assert m.coef_.shape == (2, 3) and m.intercept_.shape == (2,)
    np.testing.assert_allclose(m.predict(X), Y, atol=1e-8)


def test_logistic_regression_reaches_maximum_likelihood():
    from sklearn.linear_model import LogisticRegression as SkLogistic

    d = load_dataset("iris")
    keep = d.y > 0  # versicolor vs virginica: not separable, finite optimum
    X, y = d.X[keep][:, :2], d.y[keep]
    m = LogisticRegression(lr=1.0, epochs=2000, standardize=True, diagnose=False).fit(X, y)
    sk = SkLogistic(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    assert m.coef_.shape == (1, 2) and m.intercept_.shape == (1,)
    assert rel_err(np.r_[m.coef_[0], m.intercept_], np.r_[sk.coef_[0], sk.intercept_]) < 1e-6
    np.testing.assert_allclose(m.predict_proba(X), sk.predict_proba(X), atol=1e-7)
    np.testing.assert_array_equal(m.classes_, [1, 2])
    assert set(m.predict(X)) <= {1, 2}


def test_logistic_regression_starts_at_zero_log_loss_ln2():
    d = load_dataset("breast_cancer")
    m = LogisticRegression(epochs=1, standardize=True, diagnose=False)
    with pytest.warns(ConvergenceWarning):
        m.fit(d.X, d.y)
    assert m.loss_curve_[0] == pytest.approx(np.log(2), rel=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_multiclass_logistic_regression_softmax():
    d = load_dataset("iris")
    labels = np.array(["setosa", "versicolor", "virginica"])[d.y]
    m = LogisticRegression(lr=0.5, epochs=500, standardize=True, diagnose=False).fit(d.X, labels)
    assert m.coef_.shape == (3, 4)
    P = m.predict_proba(d.X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert m.loss_curve_[0] == pytest.approx(np.log(3), rel=1e-12)
    assert m.score(d.X, labels) > 0.95
    np.testing.assert_array_equal(m.predict(d.X), m.classes_[np.argmax(P, axis=1)])
    assert m.decision_function(d.X).shape == (150, 3)


def test_parameter_errors_are_precise():
    X, y = np.ones((4, 1)) * [[1], [2], [3], [4]], np.arange(4.0)
    with pytest.raises(ValueError, match="'lr' parameter of LinearRegression must be"):
        LinearRegression(lr=-1).fit(X, y)
    with pytest.raises(ValueError, match="'optimizer' parameter"):
        LinearRegression(optimizer="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="'degree' parameter"):
        PolynomialRegression(0).fit(X, y)
    with pytest.raises(ValueError, match="only one class"):
        LogisticRegression(diagnose=False).fit(X, np.zeros(4))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_hooks_called_with_result_and_data(monkeypatch):
    import gradwise.models._base as base

    calls = []
    monkeypatch.setattr(base, "fit_hooks", lambda: [lambda *a: calls.append(a)])
    X, y = np.arange(8.0)[:, None], np.arange(8.0)
    m = LinearRegression(lr=0.01, epochs=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
        ((est, result, Xh, yh),) = calls
        assert est is m and result is m.result_ and Xh.shape == (8, 1) and yh.shape == (8,)
        m.set_params(diagnose=False).fit(X, y)
        assert len(calls) == 1

    def broken(*a):
        raise KeyError("boom")

    monkeypatch.setattr(base, "fit_hooks", lambda: [broken])
    with pytest.warns(RuntimeWarning, match="fit hook 'broken' failed"):
        LinearRegression(lr=0.01, epochs=20, n_iter_no_change=1).fit(X, y)


def test_fit_passes_callbacks_to_the_training_loop():
    steps = []
    cb = type("CB", (), {"on_step_end": lambda self, s: steps.append((s.step, s.lr))})()
    X, y = np.arange(6.0)[:, None], np.arange(6.0)
    m = LinearRegression(lr=0.01, epochs=3, batch_size=2, shuffle=False, diagnose=False)
    with pytest.warns(ConvergenceWarning):
        m.fit(X, y, callbacks=[cb])
    assert steps == [(k, 0.01) for k in range(1, 10)]
