"""Each finding code: a small program that has the fault (found, right location)
and the corrected program (clean)."""

import math
import warnings

import numpy as np
import pytest

import gradwise
from gradwise import nn, optim
from gradwise.diagnostics.diagnosis import diagnose
from gradwise.diagnostics.monitor import Monitor
from gradwise.diagnostics.rules import Run, growth, rule_gradient_ratio


def codes(d):
    return d.codes()


def _quad(h_diag):
    H = np.diag(h_diag)
    return (lambda w: 0.5 * w @ (H @ w)), H


def _gd(H, lr, steps, w0, momentum=0.0):
    w, v, hist = np.array(w0, dtype=float), np.zeros(len(w0)), []
    for _ in range(steps):
        hist.append(0.5 * w @ H @ w)
        v = momentum * v + H @ w
        w = w - lr * v
    return w, hist


# ----------------------------------------------------------------------------- growth
def test_growth_asymptotic_rate_and_nonfinite():
    h = [1.0 * 2.0**k for k in range(20)]
    g = growth(h)
    assert g["per_step"] == pytest.approx(2.0) and g["diverging"]
    g = growth([1.0, 0.5, 0.25, np.nan])
    assert g["nonfinite_at"] == 3 and not g["diverging"]
    assert growth([1.0, 2.0]) is None


# ----------------------------------------------------------------------------- numeric.nonfinite
def test_nonfinite_from_train_names_step():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) * 100
    y = X @ [1.0, 2.0]
    model = nn.Linear(2, 1, init="zeros")
    mon = Monitor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gradwise.train(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1.0),
                             (X, y[:, None]), epochs=400, callbacks=[mon], progress=False)
    assert res.nonfinite_step is not None
    d = diagnose(res, monitor=mon, verify=False)
    f = [x for x in d.findings if x.code == "numeric.nonfinite"][0]
    assert f.evidence["step"] == res.nonfinite_step
    assert "lr.too_high" in codes(d)  # the growth before the NaN gives the bound
    ok = gradwise.train(model := nn.Linear(2, 1, init="zeros"), nn.MSELoss(),
                        optim.SGD(model.parameters(), lr=1e-5), (X, y[:, None]), epochs=5,
                        progress=False)
    assert "numeric.nonfinite" not in codes(diagnose(ok, verify=False))


def test_nonfinite_in_a_printed_log():
    d = diagnose(history=[3.0, 30.0, 300.0, 3e3, 3e4, float("inf"), float("nan")], lr=0.1)
    f = [x for x in d.findings if x.code == "numeric.nonfinite"][0]
    assert f.evidence["step"] == 5 and "stability limit" in f.message


# ----------------------------------------------------------------------------- lr.*
def test_oscillation_near_the_limit():
    loss, H = _quad([1.0, 2.0])
    w, hist = _gd(H, 0.975, 20, [1.0, 1.0])  # lr*lambda_max = 1.95: top mode x0.95 per step
    d = diagnose(loss=loss, params=w, lr=0.975, history=hist, budget=0.2)
    f = [x for x in d.findings if x.code == "lr.oscillation"][0]
    assert f.severity == "warning"
    assert f.evidence["amplification"] == pytest.approx(0.95)
    assert f.fix["lr"] == pytest.approx(2 / 3, rel=2e-3)  # best step 2/(λmax+λmin), 3 digits
    w, hist = _gd(H, 2 / 3, 20, [1.0, 1.0])
    assert "lr.oscillation" not in codes(diagnose(loss=loss, params=w, lr=2 / 3, history=hist))


def test_momentum_raises_the_bound():
    loss, H = _quad([1.0, 10.0])
    lr = 0.3  # 2/λmax = 0.2 < 0.3 < 2(1+0.9)/λmax = 0.38
    w, hist = _gd(H, lr, 60, [1.0, 1.0], momentum=0.9)
    d = diagnose(loss=loss, params=w, lr=lr, momentum=0.9, history=hist, budget=0.2)
    assert "lr.too_high" not in codes(d)
    w, hist = _gd(H, lr, 30, [1.0, 1.0])
    d = diagnose(loss=loss, params=w, lr=lr, history=hist, budget=0.2)
    assert [x for x in d.findings if x.code == "lr.too_high"][0].evidence["bound"] == pytest.approx(0.2)


def test_edge_of_stability_needs_observed_growth():
    # non-quadratic loss, sharpness above 2/lr at the final point: no lr.too_high while the
    # loss still falls; lr.too_high once the loss grows
    def loss(w):
        return (w**4).sum() / 4

    w = np.array([1.0, 0.5])  # lambda_max = 3 w^2 = 3 > 2/lr = 1 for lr = 2
    falling = list(np.linspace(5.0, 0.3, 30))
    assert "lr.too_high" not in codes(diagnose(loss=loss, params=w, lr=2.0, history=falling))
    rising = [0.3 * 1.5**k for k in range(30)]
    assert "lr.too_high" in codes(diagnose(loss=loss, params=w, lr=2.0, history=rising, verify=False))


def test_adam_judged_by_the_loss_only():
    rising = [1.0 * 1.3**k for k in range(30)]
    d = diagnose(history=rising, lr=0.1, optimizer="adam")
    f = [x for x in d.findings if x.code == "lr.too_high"][0]
    assert f.evidence["bound"] is None and f.fix == {"lr": pytest.approx(0.01)}
    loss, H = _quad([100.0, 1.0])  # lr 0.1 >> 2/λmax, but Adam has no such bound
    falling = list(np.geomspace(10, 0.1, 30))
    d = diagnose(loss=loss, params=np.ones(2), lr=0.1, optimizer="adam", history=falling)
    assert "lr.too_high" not in codes(d)


# ----------------------------------------------------------------------------- data.*
def test_data_findings_and_clean_data():
    loss = lambda w: (w**2).sum()
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = X @ [1.0, 2.0, 3.0]
    assert codes(diagnose(loss=loss, params=np.zeros(3), lr=0.1, X=X, y=y, verify=False)) == []

    Xn = X.copy()
    Xn[4, 1] = np.nan
    f = diagnose(loss=loss, params=np.zeros(3), lr=0.1, X=Xn, y=y, verify=False).findings[0]
    assert f.code == "data.nonfinite" and f.location == "X[4, 1]" and f.severity == "fault"

    Xi = np.arange(60).reshape(20, 3)
    f = diagnose(loss=loss, params=np.zeros(3), lr=0.1, X=Xi, y=y, verify=False).findings[0]
    assert f.code == "data.integer" and f.location == "X"

    Xc = np.hstack([np.ones((20, 1)), X, np.full((20, 1), 3.0)])  # bias column is fine
    f = [x for x in diagnose(loss=loss, params=np.zeros(3), lr=0.1, X=Xc, y=y,
                             verify=False).findings if x.code == "data.constant_feature"][0]
    assert f.location == "X[:, 4]" and f.evidence["columns"].tolist() == [4]

    d = diagnose(loss=loss, params=np.zeros(3), lr=0.1, X=X, y=y[:, None], verify=False)
    assert codes(d) == ["data.shape"] and d.findings[0].severity == "warning"
    d = diagnose(loss=loss, params=np.zeros(3), lr=0.1, X=X, y=y[:10], verify=False)
    assert codes(d) == ["data.shape"] and d.findings[0].severity == "fault"


# ----------------------------------------------------------------------------- gradients.*
def test_vanishing_gradients_in_a_deep_sigmoid_net():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    y = (X[:, :1] > 0).astype(float)

    def deep(act, scale):
        layers = []
        for i in range(10):
            lin = nn.Linear(4 if i == 0 else 8, 8, rng=rng)
            lin.weight.data *= scale
            layers += [lin, act()]
        return nn.Sequential(*layers, nn.Linear(8, 1, rng=rng))

    def run(model):
        mon = Monitor()
        lf = nn.BCEWithLogitsLoss()
        res = gradwise.train(model, lf, optim.SGD(model.parameters(), lr=0.1), (X, y),
                             epochs=5, callbacks=[mon], progress=False)
        return diagnose(res, model=model, loss_fn=lf, X=X, y=y, monitor=mon, verify=False)

    d = run(deep(nn.Sigmoid, 0.5))
    f = [x for x in d.findings if x.code == "gradients.vanishing"][0]
    assert f.location == "0.weight" and f.evidence["ratio"] < 1e-4
    assert "gradients.vanishing" not in codes(run(deep(nn.Tanh, 1.0)))


def test_exploding_gradient_ratio_rule():
    # first block's RMS gradient 1e5 x the last one's
    run = Run(network=True, block_grad_norms={"0.weight": [1e5] * 10, "2.weight": [1.0] * 10},
              final_params={"0.weight": np.ones((4, 4)), "2.weight": np.ones((1, 4))})
    f = rule_gradient_ratio(run)[0]
    assert f.code == "gradients.exploding" and f.location == "0.weight"
    assert f.evidence["ratio"] == pytest.approx(1e5 / 4 / (1 / 2))
    run.block_grad_norms = {"0.weight": [1.0] * 10, "2.weight": [1.0] * 10}
    assert rule_gradient_ratio(run) == []


# ----------------------------------------------------------------------------- loss.*, model.*
def test_plateau_at_chance_with_dead_network():
    X, labels = np.random.default_rng(0).normal(size=(90, 2)), np.repeat([0, 1, 2], 30)
    rng = np.random.default_rng(1)

    def run(bias):
        model = nn.Sequential(nn.Linear(2, 8, rng=rng), nn.ReLU(), nn.Linear(8, 3, rng=rng))
        model[0].bias.data[...] = bias
        model[2].weight.data[...] = 0.0
        lf = nn.CrossEntropyLoss()
        res = gradwise.train(model, lf, optim.SGD(model.parameters(), lr=0.5), (X, labels),
                             epochs=50, progress=False)
        return diagnose(res, model=model, loss_fn=lf, X=X, y=labels, n_classes=3, verify=False)

    d = run(-100.0)
    f = [x for x in d.findings if x.code == "loss.plateau_chance"][0]
    assert f.evidence["chance"] == pytest.approx(math.log(3))
    assert "activations.dead_relu" in codes(d)
    Xs = X + np.repeat([[0, 0], [4, 0], [0, 4]], 30, axis=0)  # separable clusters
    X[:] = Xs
    assert "loss.plateau_chance" not in codes(run(0.0))


def test_linear_model_on_xor_is_model_capacity():
    from gradwise.models import LogisticRegression

    rng = np.random.default_rng(0)
    X = np.repeat([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], 25, axis=0)
    X = X + 0.05 * rng.normal(size=X.shape)
    y = np.repeat([0, 0, 1, 1], 25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = LogisticRegression(lr=0.5, epochs=200, standardize=True).fit(X, y).diagnosis_
    f = [x for x in d.findings if x.code == "model.capacity"][0]
    assert f.evidence["best_loss"] == pytest.approx(math.log(2), rel=0.02)
    Xl = rng.normal(size=(100, 2))
    yl = (Xl[:, 0] + 0.3 * rng.normal(size=100) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = LogisticRegression(lr=0.5, epochs=200, standardize=True).fit(Xl, yl).diagnosis_
    assert "model.capacity" not in codes(d)


# ----------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({}, ValueError, "nothing to diagnose"),
        ({"history": [1.0, 2.0], "lr": -1.0}, ValueError, "lr must be a positive"),
        ({"history": [1.0, 2.0], "lr": 0.1, "every": 0}, ValueError, "every must be"),
        ({"loss": lambda w: w, "lr": 0.1}, ValueError, "needs its parameters"),
        ({"loss": 3.0, "params": np.ones(2), "lr": 0.1}, TypeError, "loss must be a function"),
        ({"history": [[1.0, 2.0]], "lr": 0.1}, ValueError, "1-D"),
        ({"history": [1.0, 2.0], "lr": 0.1, "optimizer": "lbfgs"}, ValueError, "unknown optimizer"),
    ],
)
def test_bad_input_one_clear_error(kwargs, err, match):
    with pytest.raises(err, match=match):
        diagnose(**kwargs)


# ----------------------------------------------------------------------------- other ways in
def _s5_data():
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 100)
    y = 0.5 * x**3 - 1.2 * x**2 - 2 * x + 1 + rng.normal(0, 1, 100)
    return np.stack([x**3, x**2, x, np.ones_like(x)], axis=1), y


def test_untraceable_loss_by_finite_differences():
    X, y = _s5_data()

    def loss(th):  # float() and a Python loop: the engine cannot trace this
        return float(sum(float(r) ** 2 for r in X @ np.asarray(th, dtype=float) - y)) / len(y)

    th, hist = np.array([0.02, 0.001, 0.002, -0.04]), []
    for _ in range(30):
        r = X @ th - y
        hist.append(np.mean(r**2))
        th = th - 0.01 * 2 * X.T @ r / 100
    d = diagnose(loss=loss, params=th, lr=0.01, history=hist, verify=False)
    f = [x for x in d.findings if x.code == "lr.too_high"][0]
    assert f.evidence["lambda_source"] == "hessian"
    assert f.evidence["bound"] == pytest.approx(8.84e-3, rel=0.01)


def test_monitor_of_a_user_loop_as_history():
    X, y = _s5_data()
    mon = Monitor()
    th = np.array([0.02, 0.001, 0.002, -0.04])
    for t in range(60):
        r = X @ th - y
        g = 2 * X.T @ r / 100
        mon.record(step=t, loss=np.mean(r**2), params={"theta": th - 0.01 * g},
                   grads={"theta": g}, params_before={"theta": th})
        th = th - 0.01 * g
    d = diagnose(history=mon, lr=0.01)
    assert d.findings[0].code == "lr.too_high"
    assert d.findings[0].evidence["bound"] == pytest.approx(8.84e-3, rel=0.02)


def test_diverged_mlp_estimator_bound_at_the_start():
    from sklearn.datasets import load_diabetes

    from gradwise.models import MLPRegressor

    d = load_diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPRegressor(hidden_layer_sizes=(16,), optimizer="sgd", lr=0.5, epochs=50,
                           standardize=True, random_state=0).fit(d.data, d.target)
    f = [x for x in est.diagnosis_.findings if x.code == "lr.too_high"][0]
    # the sharpness is measured where fit started (rebuilt from random_state), not at
    # the blown-up end point: a finite bound well below the step, a fix under it
    assert 1e-4 < f.evidence["bound"] < 0.05
    assert f.fix["lr"] < f.evidence["bound"]
    assert f.verified["ok"], f.verified


def test_verification_respects_the_budget():
    loss, H = _quad([1.0, 100.0])
    w, hist = _gd(H, 0.0199, 30, [1.0, 1.0])  # stable, far from converged along λ = 1
    d = diagnose(loss=loss, params=w, lr=0.0199, history=hist, budget=0.0)
    v = [x for x in d.findings if x.verified][0].verified
    # a zero budget stops the re-run after its first step; the rest is the exact count
    assert v["steps"] == 1 and "budget" in v["summary"] and v["ok"]
    assert d.verify_seconds < 0.5
