"""Regressions from a new user's report: a blown-up network, a swinging loss log."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

import gradwise as gw
from gradwise import models
from gradwise.diagnostics import rules
from gradwise.diagnostics.curvature import Objective, spectrum
from gradwise.diagnostics.diagnosis import model_objective


# ----------------------------------------------------------------------------- issue 1
@pytest.fixture(scope="module")
def digits_blowup():
    """`gradwise fit digits.csv --model mlp:32`: the digit label as a regression target,
    raw pixels 0..16, lr 0.1 — the loss jumps 108 -> 4.4e9 at the first step, every
    ReLU dies and early stopping ends the run after 11 epochs."""
    X, y = load_digits(return_X_y=True)
    X, y = X.astype(float), y.astype(float)
    with pytest.warns(Warning, match="stopped early after 11 epochs"):
        est = models.MLPRegressor(hidden_layer_sizes=(32,), random_state=0).fit(X, y)
    return est, X, y


def test_blown_up_network_is_lr_too_high_with_the_bound_from_the_start(digits_blowup):
    est, X, y = digits_blowup
    res, d = est.result_, est.diagnosis_
    h = np.asarray(res.step_loss)
    assert h[1] / h[0] > 1e7 and h[-1] < h[1]  # the transient explosion the user saw
    f = next(f for f in d.findings if f.code == "lr.too_high")
    ev = f.evidence
    assert ev["jump_at_step"] == 1
    assert ev["observed_growth"] == pytest.approx(h[1] / h[0], rel=1e-12)
    # lambda_max at the START (initial parameters), not at the dead end point
    fobj, p = model_objective(est.model_, est._loss(), X, y[:, None])
    at = lambda P: spectrum(Objective(fobj, {k: np.array(P[k], float) for k in p}),  # noqa: E731
                            which="max")["lambda_max"]
    lam_start, lam_end = at(res.initial_params), at(res.params)
    assert lam_end < 10 < 1000 < lam_start
    assert ev["lambda_max"] == pytest.approx(lam_start, rel=0.05)  # probe subsample: 1024 rows
    assert ev["bound"] == pytest.approx(2 / ev["lambda_max"], rel=1e-12)
    assert d.lambda_max == pytest.approx(ev["lambda_max"])
    assert d.lambda_max_end == pytest.approx(lam_end, rel=0.05)
    assert d.jump == pytest.approx(h[1] / h[0], rel=1e-12)
    assert f.fix["lr"] < ev["bound"] < 0.1
    assert f.verified["ok"] is True and f.verified["loss_end"] < h[0]
    # "the run ended at" is the loss on all 1797 rows, not on the 1024-row probe sample
    ended = float(f.verified["summary"].split("the run ended at ")[1].rstrip(")"))
    assert ended == pytest.approx(np.mean((est.predict(X) - y) ** 2), rel=2e-6)  # 6 digits
    # the dead units are a consequence: their fix is the same smaller step
    dead = next(f for f in d.findings if f.code == "activations.dead_relu")
    assert dead.fix == f.fix and "loss explosion" in dead.message


def test_growth_reports_the_largest_jump_and_a_blow_up():
    g = rules.growth([108.0, 4.4e9, 1.7e8, 1.1e8, 7e7, 4.9e6])
    assert g["jump"] == pytest.approx(4.4e9 / 108.0) and g["jump_at"] == 1
    assert g["blew_up"] and not g["diverging"]
    g2 = rules.growth([108.0, 4.4e9, 1.7e8, 1.1e8], every=10)
    assert g2["jump"] == pytest.approx((4.4e9 / 108.0) ** 0.1)


def test_a_spike_the_run_recovers_from_is_not_a_fault():
    # catapult phase: up 20x, then below the start
    h = [1.0, 20.0, 3.0, 0.9, 0.5, 0.3, 0.2, 0.15, 0.1, 0.08]
    assert not rules.growth(h)["blew_up"]
    assert gw.diagnose(history=h, lr=0.1).codes() == []


def test_blow_up_from_a_loss_log_alone_is_reported_without_a_bound():
    h = [108.0, 4.4e9, 1.7e8, 1.1e8, 7.1e7, 4.6e7, 2.9e7, 1.9e7, 1.2e7, 7.7e6, 4.9e6]
    d = gw.diagnose(history=h, lr=0.1)
    f = next(f for f in d.findings if f.code == "lr.too_high")
    assert f.evidence["bound"] is None
    assert f.evidence["observed_growth"] == pytest.approx(4.4e9 / 108.0)
    assert f.fix == {"lr": 0.01}


# ----------------------------------------------------------------------------- issue 5
def _least_squares_loop(reset: bool, lr: float = 0.1, steps: int = 100) -> list[float]:
    """Full-batch GD on a 3-feature least squares; ``reset=False`` is the classic bug
    of a gradient accumulator that is never zeroed."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=50)
    w, acc, log = np.zeros(3), np.zeros(3), []
    for _ in range(steps):
        r = X @ w - y
        log.append(float(np.mean(r**2)))
        g = 2 * X.T @ r / len(y)
        acc = g if reset else acc + g
        w = w - lr * acc
    return log


def test_swinging_loss_from_a_never_reset_accumulator_is_found_from_the_history():
    log = _least_squares_loop(reset=False)
    h = np.asarray(log)
    second = h[50:]
    d = gw.diagnose(history=log, lr=0.1)
    assert d.codes() == ["loss.oscillation"]
    f = d.findings[0]
    assert f.severity == "fault"
    assert f.evidence["loss_min"] == second.min() and f.evidence["loss_max"] == second.max()
    assert f.evidence["swing"] == pytest.approx(second.max() / second.min()) and f.evidence["swing"] > 10
    assert f.evidence["median_first_half"] == pytest.approx(np.median(h[:50]))
    assert "check_step" in f.message
    assert f.fix == {"lr": 0.01}


def test_the_same_loop_with_the_accumulator_reset_stays_clean():
    log = _least_squares_loop(reset=True)
    assert log[-1] < 0.02 < log[0]
    assert gw.diagnose(history=log, lr=0.1).codes() == []


def test_noisy_but_decreasing_and_stochastic_logs_are_not_oscillation():
    rng = np.random.default_rng(1)
    t = np.arange(200)
    noisy = 5 * np.exp(-t / 30) + 0.05 * rng.lognormal(0, 1, size=200)  # mini-batch-like
    assert "loss.oscillation" not in gw.diagnose(history=noisy, lr=0.1).codes()
    swinging = _least_squares_loop(reset=False)
    X = np.zeros((64, 1))
    d = gw.diagnose(history=swinging, lr=0.1, X=X, batch_size=8)  # known mini-batch run
    assert "loss.oscillation" not in d.codes()


def test_swing_threshold_is_the_documented_factor():
    # exactly SWING_FACTOR between min and max of the second half: found; just under: not
    base = [2.0] * 10
    lo = 1.0
    for hi, found in ((rules.SWING_FACTOR * lo, True), (0.99 * rules.SWING_FACTOR * lo, False)):
        h = base + [hi, lo] * 10 + [hi]  # climbs back above the first half's median
        codes = gw.diagnose(history=h, lr=0.1).codes()
        assert ("loss.oscillation" in codes) is found, (hi, codes)
    assert math.isclose(rules.SWING_FACTOR, 4.0)
