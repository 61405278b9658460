"""Regressions found in review: gradient buffers shared between leaves, float32
models silently promoted by float64 data."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn, optim


def test_each_leaf_gradient_owns_its_memory():
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    b = gw.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # add passes the same upstream array to both leaves
    a.grad.data *= 10
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])
    up = np.ones(2)
    c = gw.tensor([1.0, 2.0], requires_grad=True)
    (c + 0).backward(up)
    c.grad.zero_()
    np.testing.assert_array_equal(up, [1.0, 1.0])  # the caller's array is untouched
    d = gw.tensor(np.ones((2, 3)), requires_grad=True)
    d.reshape(6).sum().backward()  # the reshape VJP returns a view
    assert d.grad.data.flags.owndata


def test_float32_model_trains_in_float32_on_float64_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))  # float64
    y = X @ np.array([1.0, -1.0, 2.0])
    lin = nn.Linear(3, 1, dtype=np.float32, rng=0)
    seen = []

    class Probe:
        def on_step_end(self, state):
            seen.append((state.output.dtype, state.grads["weight"].dtype))

    gw.train(lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=0.01), (X, y[:, None]), 2,
             callbacks=[Probe()], progress=False)
    assert seen and all(o == np.float32 and g == np.float32 for o, g in seen)
    assert lin.weight.data.dtype == np.float32


def test_stable_lr_reads_momentum_from_an_optimizer_object():
    p = nn.Parameter(np.ones(2))
    r = gw.stable_lr(lambda_max=10, optimizer=optim.SGD([p], lr=0.1, momentum=0.9))
    assert r.bound == 2 * (1 + 0.9) / 10  # heavy ball: 2(1+β)/λmax (Polyak 1964)


def test_incremental_plateau_equals_the_full_criterion():
    from gradwise.training import _Plateau

    def gain(lc, tol=1e-4, n=10):  # the criterion written out on the whole curve
        if len(lc) <= n:
            return None
        best_before, best_recent = min(lc[:-n]), min(lc[-n:])
        return (best_before - best_recent) / (tol * max(abs(best_before), 1.0))

    rng = np.random.default_rng(0)
    for _ in range(20):
        curve = list(np.exp(np.cumsum(rng.normal(0, 0.3, 60))))
        p = _Plateau(1e-4, 10)
        for k in range(1, len(curve) + 1):
            got, want = p.add(curve[k - 1]), gain(curve[:k])
            assert (got is None and want is None) or got == pytest.approx(want, rel=1e-12)


def _relu_net_problem(seed, factor=1.0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:64].astype(float), y[:64].astype(float)
    m = nn.Sequential(nn.Linear(64, 32, init="he_uniform", rng=seed), nn.ReLU(),
                      nn.Linear(32, 1, rng=seed))

    def setp(p):
        for n, q in m.named_parameters():
            q.data[...] = p[n]

    def loss(p):
        setp(p)
        with gw.no_grad():
            return float(np.mean((m(X).data[:, 0] - y) ** 2))

    def grad(p):
        setp(p)
        m.zero_grad()
        ((m(X)[:, 0] - y) ** 2).mean().backward()
        return {n: factor * q.grad.data for n, q in m.named_parameters()}

    return loss, grad, {n: q.data.copy() for n, q in m.named_parameters()}


def test_relu_kinks_crossed_along_random_directions_are_not_a_scale_fault():
    # 2 410 parameters: the random-direction method; at this seed a direction crosses
    # ReLU kinks within the finite-difference step (was gradient.scale, factor 1.00338)
    r = gw.check_gradient(*_relu_net_problem(3), autodiff=False)
    assert r.ok and set(r.codes()) <= {"gradient.kink"}
    wrong = gw.check_gradient(*_relu_net_problem(3, factor=2.0), autodiff=False)
    assert "gradient.scale" in wrong.codes() and not wrong.ok


def test_adam_on_unscaled_features_gets_a_diagnosis():
    # the conditioning rule multiplied Adam's missing stability bound (None) by a factor
    from sklearn.datasets import load_diabetes

    from gradwise.models import ConvergenceWarning, LinearRegression

    d = load_diabetes(scaled=False)
    with pytest.warns(ConvergenceWarning):  # 50 Adam epochs on raw units do not converge
        m = LinearRegression(optimizer="adam", lr=1.0, epochs=50).fit(d.data[:, [2]], d.target)
    (f,) = [f for f in m.diagnosis_.findings if f.code == "data.ill_conditioned"]
    assert f.fix == {"standardize": True}  # no lr: Adam has no 2/λmax bound


def _p5(zero_grad):
    # SCENARIOS.md P5: a step written with gradwise tensors whose .grad is never reset
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2))
    y = X @ np.array([2, -3.4]) + 4.2

    def loss(params, X, y):
        return ((X @ params["w"] + params["b"] - y) ** 2).mean() / 2

    def step(params, X, y):
        if zero_grad:
            for p in params.values():
                p.grad = None
        loss(params, X, y).backward()
        with gw.no_grad():
            params["w"] -= 0.03 * params["w"].grad
            params["b"] -= 0.03 * params["b"].grad
        return params

    params = {"w": gw.tensor(rng.normal(0, 0.01, 2), requires_grad=True),
              "b": gw.tensor(np.zeros(1), requires_grad=True)}
    w0 = params["w"].data.copy()
    r = gw.check_step(step, loss, params, X, y, lr=0.03)
    assert params["w"].grad is None and np.array_equal(params["w"].data, w0)  # untouched
    return r


def test_check_step_on_a_tensor_step_finds_the_never_reset_gradient():
    r = _p5(zero_grad=False)
    assert sorted(f.location for f in r.findings if f.code == "update.accumulates") == ["b", "w"]
    assert _p5(zero_grad=True).ok and not _p5(zero_grad=True).findings


def test_pandas_constants_in_a_traced_loss():
    # P2's cost written with pandas: the Series must not reach a VJP (was a ValueError
    # from pandas' sum(keepdims=...), swallowed into a clean diagnosis)
    import pandas as pd

    x = np.array([98, 94, 93, 88, 84, 82, 79.0])
    y = np.array([97, 94, 94, 78, 85, 85, 76.0])
    df = pd.DataFrame({"score": x, "grade": y})

    def cost(th):
        return ((th[0] + th[1] * df["score"] - df["grade"]) ** 2).sum() / 14

    th = gw.tensor([1.0, 1.0], requires_grad=True)
    cost(th).backward()
    r = 1.0 + x - y
    np.testing.assert_allclose(th.grad.data, [r.sum() / 7, (r * x).sum() / 7])
    d = gw.diagnose(loss=cost, params=np.array([1.0, 1.0]), lr=1e-3)
    (f,) = [f for f in d.findings if f.code == "lr.too_high"]
    assert abs(f.evidence["bound"] - 2.552e-4) / 2.552e-4 < 1e-3  # P2: α < 2.552e-4


def test_per_sample_sgd_uses_the_per_sample_stability_limit():
    # per-sample SGD on least squares is stable for lr < 2/(c·maxᵢ‖xᵢ‖²) (c = 2 for
    # the MSE without ½): for the five houses 1/(3000² + 4² + 1) = 1.1111e-7, below
    # the full-batch limit 2/λmax = 2.105e-7 (which called 1.89e-7 "below the limit")
    import warnings

    from gradwise.data import load_dataset
    from gradwise.models import LinearRegression

    d = load_dataset("houses")
    bound = 1.0 / (3000.0**2 + 4.0**2 + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegression(lr=1.89e-7, batch_size=1, epochs=200, random_state=0).fit(d.X, d.y)
    (f,) = [f for f in m.diagnosis_.findings if f.code == "lr.too_high"]
    assert abs(f.evidence["bound"] - bound) / bound < 1e-9 and "above" in f.message
    assert f.fix["lr"] < bound
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = LinearRegression(lr=5e-8, batch_size=1, epochs=200, random_state=0).fit(d.X, d.y)
    assert "lr.too_high" not in ok.diagnosis_.codes()


def test_a_single_number_is_a_scale_fault_only_for_a_simple_factor():
    # P4: sigmoid derivative taken at the error, e(1-e) instead of h(1-h)
    x = np.array([0.5, -0.2, 0.8])

    def sig(z):
        return 1 / (1 + np.exp(-z))

    def loss(p):
        return 0.5 * (sig(x @ p["w"] + p["b"]) - 0.0) ** 2

    def grad(p):
        e = sig(x @ p["w"] + p["b"]) - 0.0
        d = e * (1 - e)  # the fault
        return {"w": d * x, "b": np.array(d)}

    r = gw.check_gradient(loss, grad, {"w": np.array([0.3, -0.1, 0.2]), "b": np.array(0.4)})
    found = {f.location: f for f in r.findings}
    assert found["b"].code == "gradient.mismatch"  # one number: no fake "1421/64" factor
    assert found["w"].code == "gradient.scale" and "activation derivative" in found["w"].message
    two = gw.check_gradient(lambda w: float((w**2).sum()), lambda w: 4 * w, np.array(1.5))
    assert two.codes() == ["gradient.scale"] and abs(two.findings[0].evidence["factor"] - 2) < 1e-9


def test_stable_lr_is_not_ok_for_an_unstable_step():
    r = gw.stable_lr(lambda_max=10, lr=0.3)
    assert not r.ok and r.codes() == ["lr.too_high"] and r.findings[0].fix["lr"] < 0.2
    assert gw.stable_lr(lambda_max=10, lr=0.1).ok


def test_conditioning_with_the_users_own_bias_column():
    # P2 as written: X = [1, x]; the bias column is not a "constant feature" here
    x = np.array([98, 94, 93, 88, 84, 82, 79.0])
    y = np.array([97, 94, 94, 78, 85, 85, 76.0])
    X = np.column_stack([np.ones(7), x])

    def cost(th):
        return np.mean((X @ th - y) ** 2) / 2

    d = gw.diagnose(loss=cost, params=np.array([1.0, 1.0]), lr=1e-4, X=X, y=y)
    (f,) = [f for f in d.findings if f.code == "data.ill_conditioned"]
    assert f.evidence["condition"] > 1e6 and f.fix["standardize"] is True


def test_standardized_fit_says_in_which_units_it_quotes_the_optimum():
    import warnings

    from gradwise.models import LinearRegression

    x = np.array([[98], [94], [93], [88], [84], [82], [79.0]])
    y = np.array([97, 94, 94, 78, 85, 85, 76.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearRegression(standardize=True, lr=0.9, epochs=5).fit(x, y)
    (f,) = [f for f in m.diagnosis_.findings if f.code == "convergence.not_reached"]
    assert "standardised" in f.message and f.evidence["units"].endswith("standardised features")


def test_a_very_short_loss_log_is_called_too_short():
    d = gw.diagnose(history=[11.42, 28.08, 6.34], lr=0.03, every=100)
    assert d.ok and any("too few" in n for n in d.notes) and "too few" in str(d)


def test_p3_wrong_shape_quotes_the_right_gradient():
    # SCENARIOS.md P3: for L = sum(A + b) the right bias gradient is [4, 4, 4, 4]
    A = np.arange(16.0).reshape(4, 4)
    r = gw.check_gradient(lambda b: float(np.sum(A + b)), lambda b: np.ones((4, 4)), np.zeros(4))
    (f,) = r.findings
    assert f.code == "gradient.shape"
    np.testing.assert_allclose(f.evidence["expected"], [4.0, 4.0, 4.0, 4.0], rtol=1e-8)
    assert "[4., 4., 4., 4.]" in f.message


def test_gradwise_check_reports_a_step_above_the_stability_limit(tmp_path):
    # SCENARIOS.md P1: right update code, step 1e-4 far above 2/‖x‖² = 4.518e-7
    from gradwise.diagnostics.checkfile import exit_code, run_check_file

    f = tmp_path / "p1.py"
    f.write_text(
        "import numpy as np\n"
        "X = np.array([[1.0, 2104.0, 3.0]]); y = np.array([400.0])\n"
        "params = np.array([0.5, 0.5, 0.5]); lr = 1e-4\n"
        "def loss(t, X, y): return 0.5 * float(np.sum((X @ t - y) ** 2))\n"
        "def step(t, X, y):\n"
        "    for i in range(len(y)): t = t - lr * (X[i] @ t - y[i]) * X[i]\n"
        "    return t\n")
    r = run_check_file(f)
    (h,) = [x for x in r.findings if x.code == "lr.too_high"]
    assert abs(h.evidence["bound"] - 4.518e-7) / 4.518e-7 < 1e-3
    assert abs(h.evidence["amplification"] - 441.68) < 0.01 and exit_code(r) == 1
    f.write_text(f.read_text().replace("lr = 1e-4", "lr = 4e-7"))
    assert exit_code(run_check_file(f)) == 0


def test_p6_with_a_plain_list_of_numbers_is_update_sequential():
    X = np.array([[1, 2, 1, 3], [1, 7, 1, 9], [1, 1, 8, 1], [1, 3, 7, 4]], float)
    y = np.array([2, 5, 5, 6.0])

    def loss(th, X, y):
        return float(np.sum((X @ np.asarray(th) - y) ** 2) / (2 * len(y)))

    def make(copy):
        def step(theta, X, y):
            temp = list(theta) if copy else theta  # P6: the "temporary" is theta itself
            for j in range(len(theta)):
                g = sum((sum(X[i][k] * theta[k] for k in range(4)) - y[i]) * X[i][j]
                        for i in range(4)) / 4
                temp[j] = theta[j] - 0.01 * g
            return temp
        return step

    r = gw.check_step(make(False), loss, [0.0, 0.0, 0.0, 0.0], X, y, lr=0.01)
    assert r.codes() == ["update.sequential"]
    assert gw.check_step(make(True), loss, [0.0, 0.0, 0.0, 0.0], X, y, lr=0.01).codes() == []
    np.testing.assert_allclose(make(True)([0.0] * 4, X, y), [0.045, 0.155, 0.2225, 0.2])


def test_check_gradient_treats_a_list_of_numbers_as_one_vector():
    def loss(t):
        return (t[0] - 1) ** 2 + 3 * (t[1] + 2) ** 2

    def grad(t):
        return [2 * (t[0] - 1), 3 * (t[1] + 2)]  # the second entry lost its factor 2

    (f,) = gw.check_gradient(loss, grad, [0.5, 0.5]).findings
    assert f.code == "gradient.entries" and f.location == "params[1]"
    assert gw.check_gradient(loss, lambda t: [2 * (t[0] - 1), 6 * (t[1] + 2)], [0.5, 0.5]).ok
