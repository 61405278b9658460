"""diagnose() on the scenarios of SCENARIOS.md, with their numbers."""

import json
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

import gradwise
from gradwise import nn, optim
from gradwise.diagnostics.diagnosis import Diagnosis, diagnose
from gradwise.diagnostics.monitor import Monitor


def by_code(d, code):
    found = [f for f in d.findings if f.code == code]
    assert found, f"{code} not in {d.codes()}"
    return found[0]


# ----------------------------------------------------------------------------- S5
@pytest.fixture(scope="module")
def s5():
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 100)
    y = 0.5 * x**3 - 1.2 * x**2 - 2 * x + 1 + rng.normal(0, 1, 100)
    X = np.stack([x**3, x**2, x, np.ones_like(x)], axis=1)
    th0 = np.array([0.02, 0.001, 0.002, -0.04])
    th, cost = th0.copy(), []
    for t in range(101):  # the user's loop: 100 steps at lr 0.01, cost before each step
        r = X @ th - y
        cost.append(np.mean(r**2))
        if t < 100:
            th = th - 0.01 * (2 / 100) * X.T @ r

    def loss(p):
        a, b, c, d = p
        return ((a * x**3 + b * x**2 + c * x + d - y) ** 2).mean()

    return {"loss": loss, "th0": th0, "th": th, "cost": np.array(cost), "x": x, "y": y}


def test_s5_lr_too_high_bound_and_growth(s5):
    d = diagnose(loss=s5["loss"], params=s5["th"], lr=0.01, history=s5["cost"],
                 params0=s5["th0"], budget=2.0)
    assert isinstance(d, Diagnosis) and not d.ok
    f = by_code(d, "lr.too_high")
    assert f.severity == "fault"
    assert f.evidence["bound"] == pytest.approx(8.84e-3, rel=0.01)
    assert f.evidence["lambda_max"] == pytest.approx(226.24, rel=1e-4)
    assert f.evidence["predicted_growth"] == pytest.approx(1.594, abs=5e-4)
    c = s5["cost"]
    observed = (c[100] / c[10]) ** (1 / 90)  # asymptotic growth, steps 10-100
    assert f.evidence["predicted_growth"] == pytest.approx(observed, rel=0.05)
    assert f.fix["lr"] < f.evidence["bound"]
    # the verified fix converges: the re-run reaches the OLS optimum (MSE 0.892952)
    v = f.verified
    assert v["ok"] and v["reached"]
    assert v["loss_end"] == pytest.approx(0.892952, rel=1e-4)
    assert "= optimum" in v["summary"]
    np.testing.assert_allclose(d.optimum["loss"], 0.892952, rtol=1e-6)


def test_s5_from_printed_log_alone(s5):
    log = s5["cost"][::10]  # every 10 steps: 24.33, 355.9, 3.73e4, 3.94e6, ...
    np.testing.assert_allclose(log[:4], [24.33, 355.9, 3.73e4, 3.94e6], rtol=2e-3)
    d = diagnose(history=log, every=10, lr=0.01)
    f = by_code(d, "lr.too_high")
    assert f.evidence["lambda_source"] == "loss growth"
    assert f.evidence["bound"] == pytest.approx(8.84e-3, rel=0.10)
    assert f.fix["lr"] < 8.84e-3
    # the four printed numbers alone are enough as well
    d4 = diagnose(history=[24.33, 355.9, 3.73e4, 3.94e6], every=10, lr=0.01)
    assert by_code(d4, "lr.too_high").evidence["bound"] == pytest.approx(8.84e-3, rel=0.10)


def test_s5_below_the_limit_is_clean_of_lr_too_high(s5):
    th, cost = s5["th0"].copy(), []
    x, y = s5["x"], s5["y"]
    X = np.stack([x**3, x**2, x, np.ones_like(x)], axis=1)
    for _ in range(100):
        r = X @ th - y
        cost.append(np.mean(r**2))
        th = th - 1e-4 * (2 / 100) * X.T @ r
    d = diagnose(loss=s5["loss"], params=th, lr=1e-4, history=cost, params0=s5["th0"], budget=0.5)
    assert "lr.too_high" not in d.codes() and "numeric.nonfinite" not in d.codes()
    assert "lr.too_low" in d.codes()  # 1e-4 is 80x below the limit: slow, as S5 says


# ----------------------------------------------------------------------------- S2
@pytest.fixture(scope="module")
def s2():
    data = load_diabetes(scaled=False)
    x, y = data.data[:, 2], data.target
    n = len(x)
    m = c = 0.0
    for _ in range(1000):
        pred = m * x + c
        dm = -(2 / n) * np.sum(x * (y - pred))
        dc = -(2 / n) * np.sum(y - pred)
        m, c = m - 1e-4 * dm, c - 1e-4 * dc
    return x, y, m, c


def test_s2_not_converged_ill_conditioned_verified_fix(s2):
    x, y, m, c = s2
    assert (m, c) == pytest.approx((5.90496, -0.42310), abs=1e-5)

    def loss(p):
        return ((y - (p["m"] * x + p["c"])) ** 2).mean()

    d = diagnose(loss=loss, params={"m": m, "c": c}, params0={"m": 0.0, "c": 0.0}, lr=1e-4,
                 X=x, y=y, budget=1.0)
    f = by_code(d, "convergence.not_reached")
    opt = f.evidence["optimum"]
    assert float(opt["m"]) == pytest.approx(10.233128, abs=1e-6)
    assert float(opt["c"]) == pytest.approx(-117.773367, abs=1e-6)
    assert f.evidence["optimum_loss"] == pytest.approx(3890.4566, abs=1e-4)
    assert f.evidence["loss"] == pytest.approx(4265.48, abs=0.01)
    ill = by_code(d, "data.ill_conditioned")
    assert ill.evidence["condition"] == pytest.approx(26333, rel=1e-3)
    assert ill.evidence["condition_standardized"] == pytest.approx(1.0, abs=1e-6)
    assert ill.fix["standardize"] is True
    v = ill.verified
    assert v["ok"] and v["loss_end"] == pytest.approx(3890.4566, abs=1e-3)
    np.testing.assert_allclose(v["params"], [10.233128, -117.773367], rtol=1e-5)
    low = by_code(d, "lr.too_low")
    assert low.fix["lr"] < 2 / 1432.3 and low.fix["epochs"] > 1000


def test_s2_through_the_estimator_fit_hook(s2):
    x, y, _, _ = s2
    from gradwise.models import LinearRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LinearRegression(lr=1e-4, epochs=1000).fit(x[:, None], y)
    d = est.diagnosis_
    assert {"convergence.not_reached", "data.ill_conditioned"} <= set(d.codes())
    ill = by_code(d, "data.ill_conditioned")
    assert ill.verified is not None and ill.verified["ok"], ill.verified
    np.testing.assert_allclose(ill.verified["params"], [10.233128, -117.773367], rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = LinearRegression(lr=0.1, epochs=200, standardize=True).fit(x[:, None], y)
    assert clean.diagnosis_.ok and clean.diagnosis_.codes() == []


# ----------------------------------------------------------------------------- S1
X_XOR = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=float)
Y_XOR = np.array([0, 0, 1, 1], dtype=float)


def xor_loss(p):
    h = gradwise.sigmoid(X_XOR @ p["W"].T)
    o = gradwise.sigmoid(h @ p["w"].T)[:, 0]
    return ((o - Y_XOR) ** 2).sum()


def _xor_run(lr, epochs):
    """The fixed S1 program: full-batch backprop of the summed squared error."""
    np.random.seed(0)  # legacy global seed, as in the scenario
    W, w = np.random.rand(3, 3), np.random.rand(1, 3)
    p0 = {"W": W.copy(), "w": w.copy()}
    sig = lambda z: 1 / (1 + np.exp(-z))
    hist = []
    for _ in range(epochs):
        h = sig(X_XOR @ W.T)
        o = sig(h @ w.T)[:, 0]
        hist.append(np.sum((o - Y_XOR) ** 2))
        d = 2 * (o - Y_XOR) * o * (1 - o)
        gw = (d @ h)[None, :]
        gW = (d[:, None] * w * h * (1 - h)).T @ X_XOR
        w, W = w - lr * gw, W - lr * gW
    return p0, {"W": W, "w": w}, np.array(hist)


def test_s1_plateau_lr_too_low_verified_xor():
    p0, p, hist = _xor_run(0.01, 10_000)
    assert hist[-1] == pytest.approx(0.997, abs=1e-3)
    d = diagnose(loss=xor_loss, params=p, params0=p0, lr=0.01, history=hist, budget=3.0)
    f = by_code(d, "lr.too_low")
    assert f.evidence["lambda_min"] < 0  # a saddle, not a minimum
    bound = f.evidence["bound"]
    assert 0.01 < f.fix["lr"] <= bound / 2
    v = f.verified
    assert v["ok"], v
    assert v["loss_end"] < 0.01  # SSE < 0.01: every output within 0.1 of its label: XOR learned
    # and the step gradwise calls safe does learn XOR in the user's own program
    _, _, hist_fixed = _xor_run(f.fix["lr"], 2000)
    assert hist_fixed[-1] < 0.01


def test_s1_learning_run_is_clean():
    p0, p, hist = _xor_run(1.0, 3000)
    d = diagnose(loss=xor_loss, params=p, params0=p0, lr=1.0, history=hist, budget=0.5)
    assert d.ok and d.codes() == []


# ----------------------------------------------------------------------------- P1, P2
def test_p1_single_sample_lms_diverges():
    x, target = np.array([2104.0, 3.0, 1.0]), 400.0
    th, hist = np.array([0.5, 0.5, 0.5]), []
    residuals = []
    for _ in range(4):
        r = target - x @ th  # the residual as the scenario prints it
        residuals.append(r)
        hist.append(0.5 * r * r)
        th = th + 1e-4 * r * x
    np.testing.assert_allclose(residuals[:3], [-654, 2.89e5, -1.28e8], rtol=5e-3)
    d = diagnose(loss=lambda t: 0.5 * (x @ t - target) ** 2, params=np.full(3, 0.5), lr=1e-4,
                 history=hist, budget=0.3)
    f = by_code(d, "lr.too_high")
    assert f.evidence["bound"] == pytest.approx(4.518e-7, rel=1e-3)
    assert np.sqrt(f.evidence["predicted_growth"]) == pytest.approx(441.68, rel=1e-4)
    assert f.verified["ok"]


def test_p2_batch_gd_alpha_too_big_and_standardised_fix():
    xs = np.array([98, 94, 93, 88, 84, 82, 79.0])
    ys = np.array([97, 94, 94, 78, 85, 85, 76.0])
    A = np.stack([np.ones(7), xs], axis=1)
    th, hist, slopes = np.array([1.0, 1.0]), [], []
    for _ in range(5):
        hist.append(np.sum((A @ th - ys) ** 2) / 14)
        th = th - 0.001 * A.T @ (A @ th - ys) / 7
        slopes.append(th[1])
    np.testing.assert_allclose(slopes, [0.7986, 2.176, -7.24, 57.14, -383.1], rtol=2e-3)
    d = diagnose(loss=lambda t: ((A @ t - ys) ** 2).sum() / 14, params=th, params0=np.ones(2),
                 lr=0.001, history=hist, X=xs, y=ys, budget=0.5)
    f = by_code(d, "lr.too_high")
    assert f.evidence["bound"] == pytest.approx(2.552e-4, rel=1e-3)
    assert f.evidence["lambda_max"] == pytest.approx(7837.3, rel=1e-4)
    ill = by_code(d, "data.ill_conditioned")
    assert ill.verified["ok"]
    np.testing.assert_allclose(ill.verified["params"], [-2.0593963, 1.00876339], rtol=1e-5)


# ----------------------------------------------------------------------------- S6
def _s6(skip_last):
    Xr = np.array([[2104, 3], [1600, 3], [2400, 3], [1416, 2], [3000, 4]], dtype=float)
    y = np.array([400, 330, 369, 232, 540.0])
    Xb = np.hstack([np.ones((5, 1)), Xr])
    Xn = Xb / Xb.sum(axis=0)
    # one epoch of per-sample SGD is an affine map th -> M th + c: compose it once
    # and iterate 100 000 epochs exactly as the loop would
    M, c = np.eye(3), np.zeros(3)
    for i in range(4 if skip_last else 5):
        P = np.eye(3) - 0.1 * np.outer(Xn[i], Xn[i])
        M, c = P @ M, P @ c + 0.1 * y[i] * Xn[i]
    th = np.array([0.0, 0.5, 0.5])
    cost = lambda t: np.sum((Xn @ t - y) ** 2)
    hist = []
    for ep in range(100_000):
        th = M @ th + c
        if ep % 1000 == 999:
            hist.append(cost(th))
    return Xn, y, th, np.array(hist), cost


@pytest.mark.parametrize("skip_last, loss_end", [(False, 1444.19), (True, 1723.07)])
def test_s6_noise_floor_vs_fault(skip_last, loss_end):
    Xn, y, th, hist, cost = _s6(skip_last)
    assert hist[-1] == pytest.approx(loss_end, abs=0.01)
    d = diagnose(loss=cost, params=th, lr=0.1, history=hist, every=5000, X=Xn, y=y,
                 batch_size=1, budget=0.3)
    if skip_last:
        assert not d.ok
        f = by_code(d, "convergence.not_reached")
        assert f.evidence["optimum_loss"] == pytest.approx(1444.1444327, abs=1e-6)
        assert "sgd.noise_floor" not in d.codes()
    else:
        assert d.ok and d.codes() == ["sgd.noise_floor"]
        f = d.findings[0]
        assert f.severity == "info"
        assert f.evidence["optimum_loss"] == pytest.approx(1444.1444327, abs=1e-6)


# ----------------------------------------------------------------------------- S4 and networks
@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer()
    X = data.data
    return X, (X - X.mean(0)) / X.std(0), data.target.astype(float)[:, None]


def _net(scale, seed=0, act=nn.Sigmoid, bias=0.0, out_act=None):
    rng = np.random.default_rng(seed)
    l1, l2 = nn.Linear(30, 16, rng=rng), nn.Linear(16, 1, rng=rng)
    for lay in (l1, l2):
        std = scale * np.sqrt(2 / (lay.in_features + lay.out_features))
        lay.weight.data[...] = rng.normal(0, std, lay.weight.data.shape)
    l1.bias.data[...] = bias
    mods = [l1, act(), l2] + ([out_act()] if out_act else [])
    return nn.Sequential(*mods)


def _train_and_diagnose(model, X, y, loss_fn=None, lr=0.1, epochs=100, optimizer=None):
    loss_fn = loss_fn or nn.BCEWithLogitsLoss()
    mon = Monitor()
    opt = optimizer or optim.SGD(model.parameters(), lr=lr)
    res = gradwise.train(model, loss_fn, opt, (X, y), epochs=epochs, callbacks=[mon],
                         progress=False)
    return diagnose(res, model=model, loss_fn=loss_fn, X=X, y=y, monitor=mon, optimizer=opt)


def test_s4_raw_features_saturate_not_init(cancer):
    X, _, y = cancer
    d = _train_and_diagnose(_net(1.3), X, y)
    assert {"activations.saturated", "data.ill_conditioned"} <= set(d.codes())
    assert "init.scale" not in d.codes()
    sat = by_code(d, "activations.saturated")
    assert sat.location == "layer 1" and sat.evidence["fraction"] > 0.9
    assert sat.fix == {"standardize": True}
    # verified: the same network from the same start on standardised inputs
    assert sat.verified["ok"] and sat.verified["method"] == "re-train"
    assert sat.verified["loss_end"] < 0.5 * sat.verified["loss_before"]


def test_s4_standardised_is_clean(cancer):
    _, Xs, y = cancer
    d = _train_and_diagnose(_net(1.3), Xs, y)
    assert d.ok and d.codes() == []


def test_init_scale_10x_glorot(cancer):
    _, Xs, y = cancer
    d = _train_and_diagnose(_net(10.0), Xs, y)
    f = by_code(d, "init.scale")
    assert f.location == "0.weight"
    assert f.evidence["ratio"] == pytest.approx(10.0, rel=0.15)
    assert f.fix == {"init": "glorot_normal"}
    assert f.verified["ok"] and f.verified["loss_end"] < f.verified["loss_before"]


def test_dead_relu_from_negative_bias(cancer):
    _, Xs, y = cancer
    d = _train_and_diagnose(_net(1.0, act=nn.ReLU, bias=-5.0), Xs, y)
    f = by_code(d, "activations.dead_relu")
    assert f.location == "layer 1" and f.evidence["fraction"] > 0.5
    assert f.fix == {"init": "he_normal"} and f.verified["ok"], f.verified
    assert "0% dead" in f.verified["summary"]
    clean = _train_and_diagnose(_net(1.0, act=nn.ReLU), Xs, y)
    assert "activations.dead_relu" not in clean.codes()


def test_softmax_probabilities_into_cross_entropy_is_loss_pairing(cancer):
    _, Xs, y = cancer

    class Softmax(nn.Module):
        def forward(self, z):
            return z.softmax(axis=-1)

    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(30, 16, rng=rng), nn.Tanh(), nn.Linear(16, 2, rng=rng), Softmax())
    labels = y[:, 0].astype(np.int64)
    d = _train_and_diagnose(model, Xs, labels, loss_fn=nn.CrossEntropyLoss(), epochs=30)
    f = by_code(d, "loss.pairing")
    assert f.evidence["loss_floor"] == pytest.approx(np.log(1 + 1 / np.e))
    logits = nn.Sequential(nn.Linear(30, 16, rng=rng), nn.Tanh(), nn.Linear(16, 2, rng=rng))
    ok = _train_and_diagnose(logits, Xs, labels, loss_fn=nn.CrossEntropyLoss(), epochs=30)
    assert "loss.pairing" not in ok.codes()


def test_diagnosis_is_picklable_and_json_safe(s5):
    d = diagnose(loss=s5["loss"], params=s5["th"], lr=0.01, history=s5["cost"], budget=0.2)
    back = pickle.loads(pickle.dumps(d))
    assert back.codes() == d.codes() and back.findings[0].evidence == d.findings[0].evidence
    json.dumps(d.to_dict())
    assert "lr.too_high" in str(d)


def test_s5_through_polynomial_regression_fit(s5):
    from gradwise.models import PolynomialRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = PolynomialRegression(degree=3, lr=0.01, epochs=100).fit(s5["x"][:, None], s5["y"])
    f = by_code(est.diagnosis_, "lr.too_high")
    assert f.evidence["bound"] == pytest.approx(8.84e-3, rel=0.01)
    assert f.evidence["predicted_growth"] == pytest.approx(f.evidence["observed_growth"], rel=0.05)
    v = f.verified
    assert v["method"] == "re-fit" and v["ok"], v
    assert v["loss_end"] < 25.33  # the re-fit at the fixed lr falls from its first epoch


def test_s1_through_gradwise_train_with_monitor():
    # the same network and start as S1, trained by gradwise.train at lr 0.01
    np.random.seed(0)
    W, w = np.random.rand(3, 3), np.random.rand(1, 3)
    net = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 1, bias=False),
                        nn.Sigmoid())
    net[0].weight.data[...] = W
    net[2].weight.data[...] = w
    mon, lf = Monitor(), nn.MSELoss(reduction="sum")
    y = Y_XOR[:, None]
    res = gradwise.train(net, lf, optim.SGD(net.parameters(), lr=0.01), (X_XOR, y), epochs=10_000,
                         callbacks=[mon], progress=False)
    assert res.loss_curve[-1] == pytest.approx(0.997, abs=1e-3)
    d = diagnose(res, model=net, loss_fn=lf, X=X_XOR, y=y, monitor=mon, budget=3.0)
    # np.random.rand weights have RMS 0.58 = 1.0x Glorot for 3->3: not init.scale
    assert d.codes() == ["lr.too_low"]
    f = d.findings[0]
    assert f.fix["lr"] == pytest.approx(1.0)
    assert f.verified["ok"] and f.verified["loss_end"] < 0.01
