"""Sharpness, the Hessian spectrum and the stable learning rate."""

import math

import numpy as np
import pytest

import gradwise
from gradwise.diagnostics.curvature import (
    Objective,
    amplification,
    critical_lr,
    hessian,
    lambda_from_growth,
    sharpness,
    spectrum,
    stable_lr,
)


def _ls_problem(n_params, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(2 * n_params, n_params)) * np.linspace(0.2, 1.5, n_params)
    b = rng.normal(size=2 * n_params)
    H = 2 * A.T @ A / len(A)
    return (lambda w: ((A @ w - b) ** 2).mean()), np.zeros(n_params), H


def test_exact_small_problem_matches_closed_form():
    loss, w, H = _ls_problem(6)
    sp = spectrum(loss, w, which="both")
    ev = np.linalg.eigvalsh(H)
    assert sp.method == "exact" and sp.n_hvp == 6
    assert sp.lambda_max == pytest.approx(ev[-1], rel=1e-10)
    assert sp.lambda_min == pytest.approx(ev[0], rel=1e-8)
    assert sp.condition == pytest.approx(ev[-1] / ev[0], rel=1e-8)
    np.testing.assert_allclose(hessian(loss, w), H, rtol=1e-10, atol=1e-12)


def test_lanczos_least_squares_1e3_in_50_hvps():
    loss, w, H = _ls_problem(200, seed=200)
    obj = Objective(loss, w)
    lam = sharpness(obj)
    assert obj.n_hvp <= 50
    top = np.linalg.eigvalsh(H)[-1]
    assert abs(lam - top) / top <= 1e-3


@pytest.mark.parametrize("cluster", [False, True])
def test_lanczos_1000_parameters_in_50_hvps(cluster):
    # A = P [diag(s); 0] with a Householder reflection P, so the Hessian 2AᵀA/m is
    # diag(2s²/m) in closed form (a dense eigvalsh of 1000×1000 takes seconds on a
    # loaded CI machine). Spectrum as measured for networks (Sagun et al. 2017,
    # Papyan 2018): a bulk plus a few outliers, spread or clustered within 1e-4.
    n, m = 1000, 1100
    rng = np.random.default_rng(7)
    s2 = rng.uniform(0.05, 1.0, n)
    s2[:4] = [1.5, 2.0, 3.0, 4.0]
    if cluster:
        s2[:5] = 4.0 + 1e-4 * np.arange(5)
    u = rng.normal(size=m)
    u /= np.linalg.norm(u)
    B = np.zeros((m, n))
    B[np.arange(n), np.arange(n)] = np.sqrt(s2)
    A = B - 2 * np.outer(u, u[:n] * np.sqrt(s2))
    b = rng.normal(size=m)
    obj = Objective(lambda w: ((A @ w - b) ** 2).mean(), np.zeros(n))
    lam = sharpness(obj)
    assert obj.n_hvp <= 50
    top = 2 * s2.max() / m
    assert abs(lam - top) / top <= 1e-3


def test_lanczos_mlp_hessian_against_eigvalsh():
    # a tanh network with 241 parameters: indefinite Hessian, exact one from n HVPs
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 8))
    y = np.sin(X[:, :1]) + 0.1 * rng.normal(size=(64, 1))
    p = {"W1": rng.normal(size=(8, 24)) * 0.5, "b1": np.zeros(24), "W2": rng.normal(size=(24, 1)) * 0.3,
         "b2": np.zeros(1)}
    n = sum(v.size for v in p.values())

    def loss(q):
        h = gradwise.tanh(X @ q["W1"] + q["b1"])
        return ((h @ q["W2"] + q["b2"] - y) ** 2).mean()

    obj = Objective(loss, p)
    sp = spectrum(obj, method="lanczos")
    assert obj.n_hvp <= 50 and sp.n_hvp == obj.n_hvp
    ev = np.linalg.eigvalsh(hessian(loss, p))
    assert n == 241
    assert abs(sp.lambda_max - ev[-1]) / abs(ev[-1]) <= 1e-3


def test_power_iteration_agrees():
    loss, w, H = _ls_problem(80, seed=3)
    sp = spectrum(loss, w, method="power", which="both", max_hvp=2000)
    ev = np.linalg.eigvalsh(H)
    assert sp.lambda_max == pytest.approx(ev[-1], rel=1e-3)
    assert sp.lambda_min == pytest.approx(ev[0], rel=0.05)  # slow end of power iteration


def test_untraceable_loss_uses_finite_differences():
    A = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]])
    b = np.array([1.0, 0.0, 2.0])

    def loss(w):  # float() cannot be traced by the engine
        w = np.asarray(w, dtype=float)
        return float(np.mean((A @ w - b) ** 2))

    obj = Objective(loss, np.array([0.3, -0.2]))
    lam = sharpness(obj)
    assert obj.traceable is False
    assert lam == pytest.approx(np.linalg.eigvalsh(2 * A.T @ A / 3)[-1], rel=1e-5)


def test_stable_lr_gd_s5_numbers():
    b = stable_lr(lambda_max=226.24220921797854, lr=0.01)
    assert b.bound == pytest.approx(8.84e-3, rel=1e-3)
    assert b.amplification == pytest.approx(abs(1 - 0.01 * 226.2422), rel=1e-6)
    assert b.loss_growth == pytest.approx(1.5937, rel=1e-4)
    assert not b.stable and float(b) == b.bound


def test_stable_lr_from_loss_and_momentum_bound():
    loss, w, H = _ls_problem(5)
    lmax = np.linalg.eigvalsh(H)[-1]
    assert stable_lr(loss, w).bound == pytest.approx(2 / lmax, rel=1e-9)
    hb = stable_lr(lambda_max=lmax, optimizer="sgd", momentum=0.9)
    assert hb.bound == pytest.approx(2 * 1.9 / lmax) and hb.rule == "2(1+beta)/lambda_max"


def test_heavy_ball_amplification_matches_simulation():
    # lr*lam = 2.95 < 2(1+beta) = 3: stable, barely; real roots -0.885, -0.565
    lam, lr, beta = 10.0, 0.295, 0.5
    e = [1.0, 1.0]
    for _ in range(4000):
        e.append((1 + beta - lr * lam) * e[-1] - beta * e[-2])
    observed = abs(e[-1] / e[-1001]) ** (1 / 1000)
    assert amplification(lr, lam, beta) == pytest.approx(observed, rel=1e-3)
    assert amplification(lr, lam, beta) < 1 < amplification(0.305, lam, beta)
    assert critical_lr(lam, "sgd", beta) == pytest.approx(0.3)


def test_per_sample_sgd_bound_p1():
    x = np.array([[2104.0, 3.0, 1.0]])
    b = stable_lr(X=x, batch_size=1, lr=1e-4)
    assert b.bound == pytest.approx(4.518e-7, rel=1e-3)
    assert b.amplification == pytest.approx(441.68, rel=1e-4)


def test_adaptive_has_no_bound():
    b = stable_lr(lambda_max=100.0, lr=0.1, optimizer="adam")
    assert b.bound is None and b.stable is None and "adaptive" in b.rule
    assert critical_lr(100.0, "adam") is None


def test_lambda_from_growth_inverts_amplification():
    for beta in (0.0, 0.5):
        lam = lambda_from_growth(amplification(0.01, 300.0, beta) ** 2, 0.01, beta)
        assert lam == pytest.approx(300.0, rel=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lambda_max": 1.0, "optimizer": "lbfgs"}, "unknown optimizer"),
        ({"lambda_max": 1.0, "momentum": 1.0}, "momentum must be in"),
        ({}, "give lambda_max"),
    ],
)
def test_stable_lr_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stable_lr(**kwargs)


def test_spectrum_errors():
    with pytest.raises(ValueError, match="method must be"):
        spectrum(lambda w: (w**2).sum(), np.ones(2), method="qr")
    with pytest.raises(ValueError, match="params are required"):
        sharpness(lambda w: (w**2).sum())
    with pytest.raises(ValueError, match="must return a scalar"):
        sharpness(lambda w: w**2, np.ones(3))
    assert math.isfinite(sharpness(lambda w: (w**2).sum(), np.ones(3)))


def test_model_objective_hessian_matches_the_written_out_network():
    from gradwise import nn
    from gradwise.diagnostics.diagnosis import model_objective

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    net = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 1, rng=rng))
    f, p = model_objective(net, nn.MSELoss(), X, y)

    def by_hand(q):  # the same network with the engine's elementary operations
        h = gradwise.tanh(X @ q["0.weight"].T + q["0.bias"])
        return ((h @ q["2.weight"].T + q["2.bias"] - y) ** 2).mean()

    np.testing.assert_allclose(hessian(f, p), hessian(by_hand, p), rtol=1e-10, atol=1e-12)
    assert f(p).item() == pytest.approx(by_hand(p).item())
    # the model's own parameters are restored after each call
    np.testing.assert_array_equal(net[0].weight.data, p["0.weight"])
