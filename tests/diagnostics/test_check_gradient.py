"""check_gradient on small NumPy programs written the way students write them.

Every fault code of the gradient section of FAULTS.md is found at the right
location, and correct programs (linear, logistic, softmax, MLPs with
sigmoid/tanh/ReLU, ReLU exactly at 0) come out clean.
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.diagnostics.check import GradientCheck, check_gradient

RNG = np.random.default_rng(42)
X = RNG.standard_normal((12, 3))
Y_REG = X @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * RNG.standard_normal(12)
Y_BIN = (X[:, 0] - X[:, 1] > 0).astype(float)
Y_CLS = np.argmax(X @ RNG.standard_normal((3, 4)), axis=1)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------- correct programs


def linreg_loss(w):
    return np.mean((X @ w - Y_REG) ** 2)


def linreg_grad(w):
    return 2 * X.T @ (X @ w - Y_REG) / len(Y_REG)


def logreg_loss(p):
    a = sigmoid(X @ p["w"] + p["b"])
    return -np.mean(Y_BIN * np.log(a) + (1 - Y_BIN) * np.log(1 - a))


def logreg_grad(p):
    a = sigmoid(X @ p["w"] + p["b"])
    return {"w": X.T @ (a - Y_BIN) / len(X), "b": np.mean(a - Y_BIN)}


def softmax_loss(p):
    z = X @ p["W"] + p["b"]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(X)), Y_CLS])


def softmax_grad(p):
    z = X @ p["W"] + p["b"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    prob[np.arange(len(X)), Y_CLS] -= 1
    prob /= len(X)
    return {"W": X.T @ prob, "b": prob.sum(axis=0)}


ACTS = {
    "sigmoid": (sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a**2),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(float)),
}


def mlp(act):
    f, df = ACTS[act]

    def loss(params):
        W1, b1, W2, b2 = params
        h = f(X @ W1 + b1)
        out = h @ W2 + b2
        return 0.5 * np.sum((out[:, 0] - Y_REG) ** 2)

    def grad(params):
        W1, b1, W2, b2 = params
        z = X @ W1 + b1
        h = f(z)
        out = h @ W2 + b2
        d_out = (out[:, 0] - Y_REG)[:, None]
        dW2 = h.T @ d_out
        db2 = d_out.sum(axis=0)
        dz = (d_out @ W2.T) * df(z, h)
        return (X.T @ dz, dz.sum(axis=0), dW2, db2)

    return loss, grad


def mlp_params(seed=0, hidden=4):
    r = np.random.default_rng(seed)
    return (r.standard_normal((3, hidden)), 0.1 * r.standard_normal(hidden),
            r.standard_normal((hidden, 1)), 0.1 * r.standard_normal(1))


def ridge_loop_loss(w):
    total = 0.0
    for i in range(len(X)):
        pred = 0.0
        for j in range(len(w)):
            pred += X[i, j] * w[j]
        total += (pred - Y_REG[i]) ** 2
    return float(total) + 0.1 * float(np.sum(w**2))  # float(): not traceable by autodiff


def ridge_loop_grad(w):
    g = np.zeros_like(w)
    for i in range(len(X)):
        g += 2 * (X[i] @ w - Y_REG[i]) * X[i]
    return g + 0.2 * w


CORRECT = {
    "linear": (linreg_loss, linreg_grad, np.array([0.1, -0.3, 0.2])),
    "logistic": (logreg_loss, logreg_grad, {"w": np.array([0.2, -0.1, 0.4]), "b": np.array(0.1)}),
    "softmax": (softmax_loss, softmax_grad,
                {"W": 0.3 * RNG.standard_normal((3, 4)), "b": np.zeros(4)}),
    "mlp-sigmoid": (*mlp("sigmoid"), mlp_params(1)),
    "mlp-tanh": (*mlp("tanh"), mlp_params(2)),
    "mlp-relu": (*mlp("relu"), mlp_params(3)),
    "ridge-loops-untraceable": (ridge_loop_loss, ridge_loop_grad, np.array([0.5, 0.5, -1.0])),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_programs_are_clean(name):
    loss, grad, params = CORRECT[name]
    r = check_gradient(loss, grad, params)
    assert r.ok and r.findings == [], str(r)
    assert all(b["verdict"] == "ok" for b in r.blocks)
    # real agreement, not a loose tolerance: Richardson differences match to ~1e-8
    assert all(b["max_rel_error"] < 1e-6 for b in r.blocks)


def test_untraceable_loss_has_no_autodiff_reference_but_traceable_one_agrees():
    assert check_gradient(ridge_loop_loss, ridge_loop_grad, np.ones(3)).autodiff_agrees is None
    assert check_gradient(linreg_loss, linreg_grad, np.ones(3)).autodiff_agrees is True


def test_relu_exactly_at_zero_is_at_most_kink_info():
    loss, grad = mlp("relu")
    W1, b1, W2, b2 = mlp_params(4)
    b1 = b1.copy()
    b1[1] = -(X[0] @ W1[:, 1])  # hidden unit 1 has pre-activation exactly 0 on sample 0
    z = X @ W1 + b1
    assert z[0, 1] == 0.0
    r = check_gradient(loss, grad, (W1, b1, W2, b2))
    assert r.ok
    assert set(r.codes()) <= {"gradient.kink"}
    assert r.codes() == ["gradient.kink", "gradient.kink"]  # W1 column 1 and b1[1]
    kink_locs = {e["location"] for f in r.findings for e in f.evidence["entries"]}
    assert "params[1][1]" in kink_locs
    assert all(f.severity == "info" for f in r.findings)


# ---------------------------------------------------------------- each fault found


def test_scale_factor_two_missing():
    r = check_gradient(linreg_loss, lambda w: X.T @ (X @ w - Y_REG) / len(Y_REG), np.ones(3))
    (f,) = r.findings
    assert f.code == "gradient.scale" and f.location == "params"
    assert f.evidence["factor"] == pytest.approx(0.5, rel=1e-8)
    assert f.fix == {"multiply_gradient_by": 2.0}


def test_scale_sum_instead_of_mean_named_with_dims():
    r = check_gradient(linreg_loss, lambda w: 2 * X.T @ (X @ w - Y_REG), np.ones(3),
                       dims={"batch size": 12})
    (f,) = r.findings
    assert f.code == "gradient.scale"
    assert f.evidence["factor"] == pytest.approx(12, rel=1e-8)
    assert "batch size" in f.evidence["factor_text"]


def test_sign():
    r = check_gradient(logreg_loss, lambda p: {k: -v for k, v in logreg_grad(p).items()},
                       {"w": np.array([0.2, -0.1, 0.4]), "b": np.array(0.1)})
    assert r.codes() == ["gradient.sign", "gradient.sign"]
    assert [f.location for f in r.findings] == ["w", "b"]


def test_sign_only_in_one_block_names_that_block():
    def grad(p):
        g = softmax_grad(p)
        g["b"] = -g["b"]
        return g

    r = check_gradient(softmax_loss, grad, CORRECT["softmax"][2])
    assert r.codes() == ["gradient.sign"] and r.findings[0].location == "b"
    assert [b["verdict"] for b in r.blocks] == ["ok", "gradient.sign"]


def test_transposed_square_block():
    Xs = RNG.standard_normal((5, 3))
    T = RNG.standard_normal((5, 3))

    def loss(W):
        return 0.5 * np.sum((Xs @ W - T) ** 2)

    def grad(W):
        return ((Xs @ W - T).T @ Xs)  # should be Xs.T @ (Xs @ W - T)

    r = check_gradient(loss, grad, RNG.standard_normal((3, 3)))
    assert r.codes() == ["gradient.transposed"]


def test_transposed_non_square_block_is_named_transposed_not_just_shape():
    T = RNG.standard_normal((12, 2))
    r = check_gradient(lambda W: 0.5 * np.sum((X @ W - T) ** 2),
                       lambda W: ((X @ W - T).T @ X), RNG.standard_normal((3, 2)))
    (f,) = r.findings
    assert f.code == "gradient.transposed"


def test_shape_bias_not_reduced_over_batch_p3():
    # P3: a (4,) bias added to a (4, 4) activation; L = sum of the output
    A = RNG.standard_normal((4, 4))

    def loss(p):
        return np.sum(A @ p["W"] + p["b"])

    def grad(p):
        upstream = np.ones((4, 4))
        return {"W": A.T @ upstream, "b": upstream}  # bias gradient not summed over the batch

    r = check_gradient(loss, grad, {"W": np.eye(4), "b": np.zeros(4)})
    (f,) = r.findings
    assert f.code == "gradient.shape" and f.location == "b"
    assert f.evidence["expected_shape"] == [4] and f.evidence["got_shape"] == [4, 4]
    assert "axis 0" in f.evidence["hint"]
    assert r.numeric["b"] == pytest.approx([4, 4, 4, 4])  # the right gradient, as in P3


def test_shape_column_vs_flat():
    r = check_gradient(linreg_loss, lambda w: linreg_grad(w)[:, None], np.ones(3))
    (f,) = r.findings
    assert f.code == "gradient.shape" and f.evidence["got_shape"] == [3, 1]
    assert "values are right" in f.evidence["hint"]


def test_entries_one_wrong_entry_named_in_user_terms():
    loss, grad = mlp("tanh")
    params = mlp_params(5)

    def bad(p):
        g = list(grad(p))
        g[0] = g[0].copy()
        g[0][1, 2] *= 1.5
        return tuple(g)

    r = check_gradient(loss, bad, params)
    (f,) = r.findings
    assert f.code == "gradient.entries"
    assert f.location == "params[0][1, 2]"
    e = f.evidence["entries"][0]
    true = grad(params)[0][1, 2]
    assert e["numeric"] == pytest.approx(true, rel=1e-8)
    assert e["analytic"] == pytest.approx(1.5 * true, rel=1e-12)


def test_entries_in_dict_block_named_W_1_2():
    def grad(p):
        g = softmax_grad(p)
        g["W"][1, 2] += 0.3
        return g

    r = check_gradient(softmax_loss, grad, CORRECT["softmax"][2])
    (f,) = r.findings
    assert f.code == "gradient.entries" and f.location == "W[1, 2]"


def test_zero_gradient_block():
    loss, grad = mlp("sigmoid")

    def bad(p):
        g = list(grad(p))
        g[1] = np.zeros_like(g[1])  # forgot the hidden bias gradient
        return tuple(g)

    r = check_gradient(loss, bad, mlp_params(6))
    (f,) = r.findings
    assert f.code == "gradient.zero" and f.location == "params[1]"
    assert f.evidence["all_zero"] is True


def test_zero_reverse_gradient_where_the_loss_does_not_depend():
    def loss(p):
        return linreg_loss(p["w"])  # "unused" plays no part in the loss

    def grad(p):
        return {"w": linreg_grad(p["w"]), "unused": 0.1 * np.ones(2)}

    r = check_gradient(loss, grad, {"w": np.ones(3), "unused": np.zeros(2)})
    (f,) = r.findings
    assert f.code == "gradient.zero" and f.location == "unused" and f.evidence["reverse"]
    assert r.numeric["unused"] == pytest.approx([0, 0], abs=1e-12)


def test_per_entry_errors_reported():
    r = check_gradient(linreg_loss, lambda w: linreg_grad(w) * np.array([1, 1, 3]), np.ones(3))
    true = linreg_grad(np.ones(3))
    np.testing.assert_allclose(r.abs_error, [0, 0, abs(2 * true[2])], atol=1e-8)
    assert r.rel_error[2] == pytest.approx(2 / 3, rel=1e-8)


def test_mismatch_p4_sigmoid_derivative_applied_to_the_error():
    # P4: output delta written e(1 - e) with e = h - y instead of e·h(1 - h); loss ½ SSE
    def loss(p):
        h = sigmoid(X @ p["w"] + p["b"])
        return 0.5 * np.sum((h - Y_BIN) ** 2)

    def grad(p):
        h = sigmoid(X @ p["w"] + p["b"])
        e = h - Y_BIN
        delta = e * (1 - e)
        return {"w": X.T @ delta, "b": delta.sum()}

    # the scalar numbers of P4
    for h, t, right, faulty in [(0.9, 0, 0.0810, 0.0900), (0.9, 1, -0.0090, -0.1100),
                                (0.5, 0, 0.125, 0.25)]:
        e = h - t
        assert e * h * (1 - h) == pytest.approx(right) and e * (1 - e) == pytest.approx(faulty)
    r = check_gradient(loss, grad, {"w": np.array([0.3, -0.2, 0.1]), "b": np.array(0.2)})
    assert not r.ok
    assert {f.location for f in r.faults} == {"w", "b"}
    assert r.faults[0].code in ("gradient.mismatch", "gradient.scale")
    assert r.faults[0].code == "gradient.mismatch"


def test_integer_params_reported_and_checked_in_float64():
    r = check_gradient(linreg_loss, linreg_grad, np.array([1, 0, -1]))
    assert r.codes() == ["input.integer_dtype"]
    assert r.findings[0].location == "params" and r.findings[0].severity == "warning"
    assert r.blocks[0]["verdict"] == "ok"


def test_float32_checked_in_float64_with_a_note():
    w = np.array([0.1, -0.3, 0.2], dtype=np.float32)
    r = check_gradient(linreg_loss, linreg_grad, w)
    assert r.ok and any("float32" in n for n in r.notes)


# ---------------------------------------------------------------- contract


def test_user_arrays_never_mutated_even_by_in_place_user_code():
    W = RNG.standard_normal((3, 2))
    T = RNG.standard_normal((12, 2))
    before = W.copy()

    def loss(W):
        W *= 1.0  # in place on what it was given
        return 0.5 * np.sum((X @ W - T) ** 2)

    def grad(W):
        r = X @ W - T
        W -= 1.0  # vandalise the input
        return X.T @ r

    res = check_gradient(loss, grad, W)
    assert res.ok
    np.testing.assert_array_equal(W, before)


def test_result_is_json_safe_and_readable():
    r = check_gradient(linreg_loss, lambda w: -linreg_grad(w), np.ones(3))
    assert isinstance(r, GradientCheck)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ok"] is False and d["findings"][0]["code"] == "gradient.sign"
    assert "FAULTS FOUND" in str(r) and "gradient.sign" in str(r)
    assert r.worst[0]["abs_error"] >= r.worst[-1]["abs_error"]
    assert r.n_loss_evals == 4 * 3 + 2  # + the point itself, twice (determinism check)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="same structure"):
        check_gradient(logreg_loss, lambda p: {"w": p["w"]}, {"w": np.ones(3), "b": np.array(0.)})
    with pytest.raises(ValueError, match="scalar"):
        check_gradient(lambda w: X @ w, linreg_grad, np.ones(3))
    with pytest.raises(ValueError, match="rtol"):
        check_gradient(linreg_loss, linreg_grad, np.ones(3), rtol=2)
    with pytest.raises(TypeError, match="dtype"):
        check_gradient(linreg_loss, linreg_grad, np.array(["a", "b", "c"]))


# ---------------------------------------------------------------- large models


def _big_problem(P, seed=0):
    r = np.random.default_rng(seed)
    a = r.uniform(0.5, 2.0, P)
    w = r.standard_normal(P)

    def loss(w):  # float(): cannot be traced, so finite differences must do it all
        return float(0.5 * np.sum(a * w * w) + np.sum(np.sin(w)))

    def grad(w):
        return a * w + np.cos(w)

    return loss, grad, w


def test_group_testing_locates_one_wrong_entry_in_log_evaluations():
    P = 200_000
    loss, grad, w = _big_problem(P)

    def bad(w):
        g = grad(w)
        g[76_543] += 0.25
        return g

    r = check_gradient(loss, bad, w)
    (f,) = r.findings
    assert f.code == "gradient.entries" and f.location == "params[76543]"
    assert r.method == "random directions + group testing"
    # 2 (the point, twice: determinism) + 2 directions·4 + 2·4 to retry the failing
    # directions with a smaller step (kinks) + log2(P)·4 + 4 for the entry itself
    # + 2·4 to re-test the directions
    assert r.n_loss_evals <= 2 + 8 + 8 + 4 * int(np.ceil(np.log2(P))) + 4 + 8
    assert check_gradient(loss, grad, w).ok


def test_group_testing_finds_several_wrong_entries_including_neighbours():
    P = 100_000
    loss, grad, w = _big_problem(P, seed=2)
    wrong = [10, 11, 70_000]

    def bad(w):
        g = grad(w)
        g[wrong] += [0.3, -0.3, 0.2]
        return g

    r = check_gradient(loss, bad, w)
    (f,) = r.findings
    assert f.code == "gradient.entries"
    assert sorted(e["index"][0] for e in f.evidence["entries"]) == wrong
    assert r.n_loss_evals < 3 * 4 * 17 + 60


def test_large_block_scale_found_from_directions():
    loss, grad, w = _big_problem(50_000, seed=1)
    r = check_gradient(loss, lambda w: 0.5 * grad(w), w)
    (f,) = r.findings
    assert f.code == "gradient.scale" and f.evidence["factor"] == pytest.approx(0.5, rel=1e-6)
    assert r.n_loss_evals < 20


def test_large_traceable_loss_uses_verified_autodiff_reference():
    r = np.random.default_rng(3)
    A = r.standard_normal((60, 50))
    T = r.standard_normal((60, 40))

    def loss(W):
        return 0.5 * np.sum((A @ W - T) ** 2)

    def grad(W):
        g = A.T @ (A @ W - T)
        g[7, 3] = 0.0
        return g

    res = check_gradient(loss, grad, r.standard_normal((50, 40)), max_entries=500)
    assert res.method.startswith("autodiff reference")
    (f,) = res.findings
    assert f.code == "gradient.zero" and f.evidence["entries"][0]["location"] == "params[7, 3]"


# ---------------------------------------------------------------- properties


@settings(deadline=None, derandomize=True, max_examples=25)
@given(k=st.sampled_from([-3.0, -1.0, -0.5, 0.25, 0.5, 2.0, 3.0, 10.0]),
       seed=st.integers(0, 10_000))
def test_any_constant_factor_is_recovered(k, seed):
    r = np.random.default_rng(seed)
    w = r.standard_normal(4)
    Xr = r.standard_normal((6, 4))
    res = check_gradient(lambda w: np.sum(np.log1p(np.exp(Xr @ w))),
                         lambda w: k * Xr.T @ (1 / (1 + np.exp(-(Xr @ w)))), w)
    (f,) = res.findings
    if k == -1:
        assert f.code == "gradient.sign"
    else:
        assert f.code == "gradient.scale" and f.evidence["factor"] == pytest.approx(k, rel=1e-6)


def test_numeric_reference_matches_torch_oracle():
    torch = pytest.importorskip("torch")
    p = CORRECT["softmax"][2]
    res = check_gradient(softmax_loss, softmax_grad, p)
    W = torch.tensor(p["W"], requires_grad=True)
    b = torch.tensor(p["b"], requires_grad=True)
    out = torch.nn.functional.cross_entropy(torch.tensor(X) @ W + b, torch.tensor(Y_CLS))
    out.backward()
    np.testing.assert_allclose(res.numeric["W"], W.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.numeric["b"], b.grad.numpy(), rtol=1e-8, atol=1e-10)
