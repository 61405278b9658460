"""Adversarial inputs to gradwise.diagnose / sharpness / stable_lr / Monitor:
each test is a bug that was found by trying to break them (or a guard against one)."""

import math
import warnings

import numpy as np
import pytest

import gradwise
from gradwise import models


def _line_data(n=30):
    x1 = np.arange(n, dtype=float)
    x2 = (np.arange(n) * 7) % 5.0
    return np.c_[x1, x2], 2 * x1 - x2 + 0.1 * (np.arange(n) % 3)


def test_absurd_lr_is_diagnosed_not_an_overflow_error():
    # lr 1e200: |1 - lr*lambda_max| ~ 6e202, whose square overflowed a Python float
    # (OverflowError inside lr.too_high, so the fit had no diagnosis_ at all)
    X, y = _line_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = models.LinearRegression(lr=1e200).fit(X, y)
    codes = {f.code: f for f in est.diagnosis_.findings}
    assert "lr.too_high" in codes
    ev = codes["lr.too_high"].evidence
    assert ev["predicted_growth"] == math.inf
    # the bound is 2/lambda_max of the MSE Hessian (2/n) X1^T X1, computed here in closed form
    X1 = np.c_[X, np.ones(len(X))]
    lmax = np.linalg.eigvalsh(2 / len(X) * X1.T @ X1)[-1]
    assert ev["bound"] == pytest.approx(2 / lmax, rel=1e-6)
    assert codes["lr.too_high"].fix["lr"] < ev["bound"]


# ----------------------------------------------------------------------------- sharpness / stable_lr


def _quad(w):
    return (w**2).sum()  # Hessian 2 I: lambda_max = 2, stable lr = 2/2 = 1


@pytest.mark.parametrize(
    "loss, params, error, message",
    [
        # NaN parameters gave lambda_max = nan silently (quartic: Hessian depends on the point)
        (lambda w: (w**4).sum(), np.array([np.nan, 1.0]), ValueError, r"params contain NaN or inf \(in 'params'\)"),
        # a NaN loss gave lambda_max = nan silently
        (lambda w: _quad(w) * np.nan, np.array([0.0, 1.0]), ValueError, "loss\\(params\\) is nan at the given params"),
        # None was read as NaN: "loss returned nan at the checked point"
        (lambda w: None, np.array([0.0, 1.0]), TypeError, "must return a scalar number, got NoneType"),
        (lambda w: w**2, np.array([0.0, 1.0]), ValueError, r"must return a scalar, got shape \(2,\)"),
    ],
)
def test_sharpness_refuses_what_has_no_curvature(loss, params, error, message):
    with pytest.raises(error, match=message):
        gradwise.sharpness(loss, params)


def test_flat_and_concave_losses_have_no_bound_and_no_division_by_zero():
    flat = gradwise.stable_lr(lambda w: (w * 0.0).sum(), np.zeros(3), lr=0.5)
    assert flat.lambda_max == 0.0 and flat.bound is None and flat.stable is True
    concave = gradwise.stable_lr(lambda w: -(w**2).sum(), np.zeros(3), lr=0.5)
    assert concave.lambda_max == pytest.approx(-2.0) and concave.bound is None
    assert gradwise.stable_lr(_quad, np.zeros(3)).bound == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, message", [
    # lr=-1 was accepted: amplification |1 + 2| = 3 and stable=True
    ({"lr": -1.0}, "lr must be a positive finite number, got -1.0"),
    ({"lr": float("nan")}, "lr must be a positive finite number"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
])
def test_stable_lr_validates_lr_and_momentum(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gradwise.stable_lr(_quad, np.zeros(3), **kwargs)


@pytest.mark.parametrize("momentum", [-1.0, 1.0, float("nan")])
def test_diagnose_refuses_momentum_outside_0_1(momentum):
    # momentum -1 gave the bound 2(1+beta)/lambda_max = 0.0 silently
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        gradwise.diagnose(history=[24.33, 355.9, 3.73e4, 3.94e6, 4.17e8], every=10, lr=0.01, momentum=momentum)


# ----------------------------------------------------------------------------- Monitor.record

W = {"w": np.array([1.0, 2.0])}
G = {"w": np.array([0.1, 0.2])}


def test_monitor_missing_gradient_is_not_a_nonfinite_gradient():
    # grads={"w": None} was reported as numeric.nonfinite at block w ("what": "grad")
    mon = gradwise.Monitor()
    mon.record(step=0, loss=1.0, params=W, grads={"w": None})
    mon.record(step=1, loss=0.5, params=W, grads=G)
    assert mon.nonfinite is None
    assert np.isnan(mon.grad_norm["w"][0]) and mon.grad_norm["w"][1] == pytest.approx(np.hypot(0.1, 0.2))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        # a loss vector was recorded as its first entry
        ({"loss": np.ones(3)}, ValueError, r"loss must be a scalar, got shape \(3,\)"),
        ({"loss": "abc"}, TypeError, "loss must be a number or a scalar Tensor"),
        # gradients of another shape / of blocks params lacks were recorded silently
        ({"params": W, "grads": {"w": np.ones(5)}}, ValueError, r"the gradient of 'w' has shape \(5,\)"),
        ({"params": W, "grads": {**G, "zz": np.ones(2)}}, ValueError, r"grads has block\(s\) \['zz'\]"),
        ({"step": "a"}, TypeError, "step must be an integer"),
    ],
)
def test_monitor_record_rejects_bad_values(kwargs, error, message):
    with pytest.raises(error, match=message):
        gradwise.Monitor().record(**kwargs)


def test_monitor_steps_must_increase():
    # step 3 after step 5 was accepted; the history's spacing (every) was then wrong
    mon = gradwise.Monitor()
    mon.record(step=5, loss=1.0)
    with pytest.raises(ValueError, match="step 3 is not after the last recorded step 5"):
        mon.record(step=3, loss=2.0)
    assert mon.steps == [5]


# ----------------------------------------------------------------------------- diagnose(loss=..., params=...)

XD = np.c_[np.linspace(-1, 1, 20), np.linspace(0, 3, 20) ** 2]
YD = XD @ [1.0, 2.0]


def _mse(w):
    return ((XD @ w - YD) ** 2).mean()


@pytest.mark.parametrize(
    "loss, params, error, message",
    [
        # each of these was a clean diagnosis ("ok", no findings): the probe failure was only a note
        (_mse, np.array([np.nan, 0.0]), ValueError, "params contain NaN or inf"),
        (lambda w: _mse(w) * np.nan, np.zeros(2), ValueError, "loss\\(params\\) is nan at the given params"),
        (lambda w: (XD @ w - YD) ** 2, np.zeros(2), ValueError, r"must return a scalar, got shape \(20,\)"),
        (lambda w: None, np.zeros(2), TypeError, "must return a scalar number, got NoneType"),
    ],
)
def test_diagnose_refuses_a_loss_it_cannot_probe(loss, params, error, message):
    with pytest.raises(error, match=message):
        gradwise.diagnose(loss=loss, params=params, lr=0.1)


def test_diagnose_a_diverged_run_from_its_history_even_at_nan_params():
    # the run ended at NaN: the history and the start still diagnose it
    d = gradwise.diagnose(loss=_mse, params=np.array([np.nan, 0.0]), params0=np.zeros(2), lr=0.1,
                          history=[1.0, 10.0, 100.0, 1e4, np.inf])
    assert {"numeric.nonfinite", "lr.too_high"} <= set(d.codes())
    lmax = np.linalg.eigvalsh(2 / len(XD) * XD.T @ XD)[-1]  # Hessian of the mean squared error
    assert d.get("lambda_max") == pytest.approx(lmax, rel=1e-6)


def test_diagnose_with_a_monitor_alone():
    # diagnose(monitor=m, lr=...) said "nothing to diagnose" although the monitor holds the history
    mon = gradwise.Monitor()
    w = np.array([1.0])
    for step in range(40):  # GD on f(w) = w^2 (lambda = 2) at lr 1.5: error x(-2) per step
        mon.record(step=step, loss=float(w[0] ** 2), params={"w": w}, grads={"w": 2 * w})
        w = w - 1.5 * 2 * w
    d = gradwise.diagnose(monitor=mon, lr=1.5)
    f = {f.code: f for f in d.findings}["lr.too_high"]
    assert f.evidence["bound"] == pytest.approx(1.0, rel=1e-6)  # 2/lambda_max from the growth x4


@pytest.mark.parametrize("result", [[24.33, 355.9, 3.73e4], "loss.txt", {"lr": [0.01]}])
def test_diagnose_refuses_a_result_that_is_not_a_run(result):
    # a list of losses passed as `result` (history= forgotten) was an empty, healthy diagnosis
    with pytest.raises(TypeError, match="result must be a gradwise.train result"):
        gradwise.diagnose(result, lr=0.01)


def test_diagnose_a_result_with_per_epoch_losses_only():
    # {'loss_curve': ...} without 'step_loss' was ignored (no findings); S5's log every 10
    # steps read as 10 steps per epoch gives the bound 8.84e-3 (SCENARIOS.md)
    d = gradwise.diagnose({"loss_curve": [24.33, 355.9, 3.73e4, 3.94e6, 4.17e8], "lr": [0.01],
                           "n_steps": 50, "n_epochs": 5})
    assert d.codes() == ["lr.too_high"]
    assert d.findings[0].evidence["bound"] == pytest.approx(8.84e-3, rel=0.01)


def test_linear_model_with_a_users_loss_function_gets_the_optimum():
    # lambda out, y: mse(out.reshape(-1), y) on an nn.Linear was treated as a network:
    # 20 epochs at lr 0.01, loss 9.19 against an optimum of 0, and no finding at all
    from gradwise import nn, optim

    X = np.random.default_rng(0).normal(size=(20, 3))
    y = X @ [1.0, 2.0, 3.0]
    model = nn.Linear(3, 1, rng=np.random.default_rng(0))
    mse = nn.MSELoss()

    def loss(out, yb):
        return mse(out.reshape(-1), yb)

    res = gradwise.train(model, loss, optim.SGD(model.parameters(), lr=0.01), (X, y), epochs=20)
    d = gradwise.diagnose(res, model=model, loss_fn=loss, X=X, y=y)
    assert {"convergence.not_reached", "lr.too_low"} <= set(d.codes())
    f = {f.code: f for f in d.findings}["convergence.not_reached"]
    np.testing.assert_allclose(np.ravel(f.evidence["optimum"]["weight"]), [1.0, 2.0, 3.0], atol=1e-8)
    assert f.evidence["optimum_loss"] == pytest.approx(0.0, abs=1e-12)
