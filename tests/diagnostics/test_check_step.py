"""check_step on update code written the way students write it (loops, in-place updates).

Scenarios S1, S6, P3, P5, P6 of SCENARIOS.md plus one program per update code of
FAULTS.md; the corrected programs come out clean.
"""

import json

import numpy as np
import pytest

import gradwise as gw
from gradwise.diagnostics.step import StepCheck, check_step


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------- S1: XOR network

S1_X = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=float)
S1_Y = np.array([0.0, 0.0, 1.0, 1.0])


def s1_params():
    np.random.seed(0)  # legacy global seed, as in S1
    W = np.random.rand(3, 3)
    w = np.random.rand(1, 3)
    return {"W": W, "w": w}


def s1_loss(p, X, y):
    W, w = p["W"], p["w"]
    total = 0.0
    for x, t in zip(X, y):
        out = sigmoid(w @ sigmoid(W @ x))
        total = total + ((out - t) ** 2).sum()
    return total


def s1_step(accumulate, lr=0.01):
    def step(p, X, y):
        W, w = p["W"], p["w"]
        dw = np.zeros_like(w)
        for x, t in zip(X, y):
            h = sigmoid(W @ x)
            o = sigmoid(w @ h)
            dw += 2 * (o - t) * o * (1 - o) * h[None, :]
        w -= lr * dw  # first the w update from all samples ...
        dW = np.zeros_like(W)
        for x, t in zip(X, y):  # ... then the W update, with the new w
            h = sigmoid(W @ x)
            o = sigmoid(w @ h)
            delta = 2 * (o - t) * o * (1 - o)
            g = np.outer(w[0] * delta * h * (1 - h), x)
            if accumulate:
                dW += g
            else:
                dW = g  # the S1 fault: assigned inside the loop
        W -= lr * dW
        return {"W": W, "w": w}

    return step


def test_s1_W_uses_only_the_last_sample_and_w_is_fine():
    r = check_step(s1_step(False), s1_loss, s1_params(), S1_X, S1_Y, lr=0.01)
    assert r.codes() == ["update.last_sample_only"]
    assert r.findings[0].location == "W"
    verdicts = {b["block"]: b["verdict"] for b in r.blocks}
    assert verdicts == {"W": "update.last_sample_only", "w": "ok"}
    assert r.findings[0].evidence["residual"] < 1e-9


def test_s1_fixed_is_clean_with_and_without_lr():
    for lr in (0.01, None):
        r = check_step(s1_step(True), s1_loss, s1_params(), S1_X, S1_Y, lr=lr)
        assert r.ok and r.findings == [], str(r)
    assert r.lr == pytest.approx(0.01, rel=1e-8) and r.lr_estimated


def test_s1_fault_found_without_lr_too():
    r = check_step(s1_step(False), s1_loss, s1_params(), S1_X, S1_Y)
    assert r.codes() == ["update.last_sample_only"] and r.lr == pytest.approx(0.01, rel=1e-6)


# ---------------------------------------------------------------- S6: LMS with SGD

S6_RAW = np.array([[1, 2104, 3], [1, 1600, 3], [1, 2400, 3], [1, 1416, 2], [1, 3000, 4]], float)
S6_X = S6_RAW / S6_RAW.sum(axis=0)
S6_Y = np.array([400.0, 330.0, 369.0, 232.0, 540.0])
S6_THETA = np.array([0.0, 0.5, 0.5])


def s6_loss(theta, X, y):
    return 0.5 * np.sum((X @ theta - y) ** 2)


def s6_step(short):
    def step(theta, X, y):
        n = len(X) - 1 if short else len(X)
        for i in range(n):
            theta -= 0.1 * (X[i] @ theta - y[i]) * X[i]
        return theta

    return step


def test_s6_programs_reproduce_the_scenario_costs():
    for short, expected in ((True, 9238.73), (False, 3810.14)):
        theta = S6_THETA.copy()
        step = s6_step(short)
        for _ in range(1000):
            theta = step(theta, S6_X, S6_Y)
        assert 2 * s6_loss(theta, S6_X, S6_Y) == pytest.approx(expected, abs=0.01)


def test_s6_sample_4_never_used():
    for lr in (0.1, None):
        r = check_step(s6_step(True), s6_loss, S6_THETA, S6_X, S6_Y, lr=lr)
        (f,) = r.findings
        assert f.code == "update.skipped_samples"
        assert f.evidence["samples"] == [4] and f.location == "X[4]"


def test_s6_correct_loop_is_clean():
    r = check_step(s6_step(False), s6_loss, S6_THETA, S6_X, S6_Y, lr=0.1)
    assert r.ok and r.findings == []
    assert r.blocks[0]["explained_by"] == "sequential per-sample SGD in sample order"


def test_s6_with_an_untraceable_loss_uses_finite_differences():
    def loss(theta, X, y):
        return float(0.5 * sum((float(x @ theta) - t) ** 2 for x, t in zip(X, y)))

    r = check_step(s6_step(True), loss, S6_THETA, S6_X, S6_Y, lr=0.1)
    assert r.gradient_method == "finite differences"
    assert r.codes() == ["update.skipped_samples"] and r.findings[0].evidence["samples"] == [4]


# ---------------------------------------------------------------- P6: aliasing

P6_X = np.array([[1, 2, 1, 3], [1, 7, 1, 9], [1, 1, 8, 1], [1, 3, 7, 4]], dtype=float)
P6_Y = np.array([2.0, 5.0, 5.0, 6.0])


def p6_loss(theta, X, y):
    return 0.5 * np.mean((X @ theta - y) ** 2)


def p6_step(alias):
    def step(theta, X, y):
        temp = theta if alias else theta.copy()
        m = len(y)
        for j in range(len(theta)):
            temp[j] = theta[j] - 0.01 * (1 / m) * np.sum((X @ theta - y) * X[:, j])
        return temp

    return step


def test_p6_numbers():
    np.testing.assert_allclose(p6_step(False)(np.zeros(4), P6_X, P6_Y),
                               [0.045, 0.155, 0.2225, 0.2])
    np.testing.assert_allclose(p6_step(True)(np.zeros(4), P6_X, P6_Y),
                               [0.045, 0.1535375, 0.20600144, 0.14189214], rtol=1e-7)


def test_p6_aliasing_is_sequential_and_fix_is_clean():
    r = check_step(p6_step(True), p6_loss, np.zeros(4), P6_X, P6_Y, lr=0.01)
    assert r.codes() == ["update.sequential"] and r.findings[0].location == "params"
    assert check_step(p6_step(False), p6_loss, np.zeros(4), P6_X, P6_Y, lr=0.01).ok


# ---------------------------------------------------------------- P5: .grad never reset

P5_RNG = np.random.default_rng(0)
P5_X = P5_RNG.standard_normal((1000, 2))
P5_Y = P5_X @ np.array([2.0, -3.4]) + 4.2 + P5_RNG.normal(0, 0.01, 1000)


def p5_loss(p, X, y):
    return 0.5 * np.mean((X @ p["w"] + p["b"] - y) ** 2)


def p5_step(zero_grad):
    w = gw.tensor(np.zeros(2), requires_grad=True)
    b = gw.tensor(0.0, requires_grad=True)

    def step(p, X, y):
        nonlocal w, b
        w.data[...] = p["w"]
        b.data[...] = p["b"]
        loss = p5_loss({"w": w, "b": b}, X, y)
        loss.backward()
        with gw.no_grad():
            w -= 0.03 * w.grad
            b -= 0.03 * b.grad
        if zero_grad:
            w.grad = None
            b.grad = None
        return {"w": w.data.copy(), "b": b.data.copy()}

    return step


def test_p5_gradient_never_reset_accumulates():
    p = {"w": np.zeros(2), "b": np.array(0.0)}
    r = check_step(p5_step(False), p5_loss, p, P5_X[:10], P5_Y[:10], lr=0.03)
    assert sorted(f.location for f in r.findings) == ["b", "w"]
    assert set(r.codes()) == {"update.accumulates"}
    assert r.stateful["w"]["carried_fraction"] == pytest.approx(1.0, abs=1e-9)


def test_p5_with_zeroing_is_clean():
    p = {"w": np.zeros(2), "b": np.array(0.0)}
    r = check_step(p5_step(True), p5_loss, p, P5_X[:10], P5_Y[:10], lr=0.03)
    assert r.ok and r.findings == [] and r.stateful is None


def test_momentum_is_stateful_but_not_a_fault():
    velocity = {}

    def step(p, X, y):
        e = X @ p["w"] + p["b"] - y
        g = {"w": X.T @ e / len(y), "b": e.mean()}
        for k in g:
            velocity[k] = 0.9 * velocity.get(k, 0.0) + g[k]
        return {k: p[k] - 0.03 * velocity[k] for k in p}

    r = check_step(step, p5_loss, {"w": np.ones(2), "b": np.array(0.5)}, P5_X[:10], P5_Y[:10],
                   lr=0.03)
    assert r.ok and r.findings == []
    assert r.stateful["w"]["carried_fraction"] == pytest.approx(0.9)
    assert any("momentum" in n for n in r.notes)


# ---------------------------------------------------------------- other correct programs

LOG_X = np.random.default_rng(1).standard_normal((16, 3))
LOG_Y = (LOG_X[:, 0] + 0.5 * LOG_X[:, 2] > 0).astype(float)


def logistic_loss(p, X, y):
    a = sigmoid(X @ p["w"] + p["b"])
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def test_minibatch_logistic_sgd_is_clean():
    def step(p, X, y):
        a = sigmoid(X @ p["w"] + p["b"])
        p["w"] -= 0.5 * X.T @ (a - y) / len(y)
        p["b"] -= 0.5 * np.mean(a - y)
        return p

    p = {"w": np.array([0.1, -0.2, 0.3]), "b": np.array(0.0)}
    for batch in (slice(0, 4), slice(4, 8)):
        assert check_step(step, logistic_loss, p, LOG_X[batch], LOG_Y[batch], lr=0.5).ok


def test_per_sample_logistic_sgd_epoch_is_clean():
    def step(p, X, y):
        for x, t in zip(X, y):
            a = sigmoid(x @ p["w"] + p["b"])
            p["w"] = p["w"] - 0.2 * (a - t) * x
            p["b"] = p["b"] - 0.2 * (a - t)
        return p

    r = check_step(step, logistic_loss, {"w": np.zeros(3), "b": np.array(0.0)}, LOG_X[:6],
                   LOG_Y[:6], lr=0.2)
    assert r.ok, str(r)


def test_softmax_full_batch_is_clean_without_lr():
    r0 = np.random.default_rng(2)
    X = r0.standard_normal((10, 3))
    y = r0.integers(0, 3, 10)

    def loss(p, X, y):
        z = X @ p
        z = z - z.max(axis=1, keepdims=True)
        return -np.sum(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1)))

    def step(W, X, y):
        z = X @ W
        P = np.exp(z - z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(len(y)), y] -= 1
        return W - 0.05 * X.T @ P

    r = check_step(step, loss, 0.1 * r0.standard_normal((3, 3)), X, y)
    assert r.ok and r.lr == pytest.approx(0.05, rel=1e-6)


# ---------------------------------------------------------------- one program per fault

LIN_X = np.random.default_rng(3).standard_normal((8, 2))
LIN_Y = LIN_X @ np.array([1.0, -1.0]) + 0.5


def lin_loss(p, X, y):
    return np.mean((X @ p["w"] + p["b"] - y) ** 2)


def lin_grads(p, X, y):
    e = X @ p["w"] + p["b"] - y
    return 2 * X.T @ e / len(y), 2 * e.mean()


LIN_P = {"w": np.array([0.3, 0.2]), "b": np.array(0.1)}


def test_ascent():
    def step(p, X, y):
        gw_, gb = lin_grads(p, X, y)
        return {"w": p["w"] + 0.1 * gw_, "b": p["b"] + 0.1 * gb}

    r = check_step(step, lin_loss, LIN_P, LIN_X, LIN_Y, lr=0.1)
    assert r.codes() == ["update.ascent", "update.ascent"]
    assert r.findings[0].evidence["lr_fit"] == pytest.approx(-0.1)


def test_frozen_bias():
    def step(p, X, y):
        gw_, _ = lin_grads(p, X, y)
        p["w"] -= 0.1 * gw_
        return p  # bias never updated

    r = check_step(step, lin_loss, LIN_P, LIN_X, LIN_Y, lr=0.1)
    assert r.codes() == ["update.frozen"] and r.findings[0].location == "b"


def test_scale_sum_instead_of_mean():
    def step(p, X, y):
        e = X @ p["w"] + p["b"] - y
        return {"w": p["w"] - 0.1 * 2 * X.T @ e, "b": p["b"] - 0.1 * 2 * e.sum()}

    r = check_step(step, lin_loss, LIN_P, LIN_X, LIN_Y, lr=0.1)
    assert r.codes() == ["update.scale", "update.scale"]
    f = r.findings[0]
    assert f.evidence["factor"] == pytest.approx(8.0) and f.evidence["effective_lr"] == pytest.approx(0.8)
    assert "8 (samples)" in f.message


def test_scale_between_blocks_without_lr():
    def step(p, X, y):
        gw_, gb = lin_grads(p, X, y)
        return {"w": p["w"] - 0.1 * gw_, "b": p["b"] - 0.1 * gb / len(y)}

    r = check_step(step, lin_loss, {"w": np.array([0.3, 0.2]), "b": np.array(0.1)}, LIN_X, LIN_Y)
    assert r.codes() == ["update.scale"] and r.findings[0].location == "b"
    assert r.findings[0].evidence["factor"] == pytest.approx(1 / 8)


def test_skipped_first_sample_in_full_batch_loop():
    def step(p, X, y):
        gw_, gb = np.zeros(2), 0.0
        for i in range(1, len(X)):  # starts at 1
            e = X[i] @ p["w"] + p["b"] - y[i]
            gw_ = gw_ + 2 * e * X[i] / len(X)
            gb = gb + 2 * e / len(X)
        return {"w": p["w"] - 0.1 * gw_, "b": p["b"] - 0.1 * gb}

    r = check_step(step, lin_loss, LIN_P, LIN_X, LIN_Y, lr=0.1)
    (f,) = r.findings
    assert f.code == "update.skipped_samples" and f.evidence["samples"] == [0]
    assert sorted(f.evidence["blocks"]) == ["b", "w"]


def test_shape_changed_p3_bias_becomes_matrix():
    A = np.random.default_rng(4).standard_normal((4, 3))
    T = np.random.default_rng(5).standard_normal((4, 4))

    def loss(p, X, y):
        return 0.5 * np.sum((X @ p["W"] + p["b"] - y) ** 2)

    def step(p, X, y):
        up = X @ p["W"] + p["b"] - y  # (4, 4) upstream gradient
        W = p["W"] - 0.1 * X.T @ up
        b = p["b"] - 0.1 * up  # not reduced over the batch: (4,) becomes (4, 4)
        return {"W": W, "b": b}

    r = check_step(step, loss, {"W": np.zeros((3, 4)), "b": np.zeros(4)}, A, T, lr=0.1)
    (f,) = r.findings
    assert f.code == "update.shape_changed" and f.location == "b"
    assert f.evidence == {"old_shape": [4], "new_shape": [4, 4]}


def test_mismatch_when_nothing_explains_the_update():
    def step(p, X, y):
        return {"w": p["w"] + np.array([0.01, 0.03]), "b": p["b"] - 0.02}

    r = check_step(step, lin_loss, LIN_P, LIN_X, LIN_Y, lr=0.1)
    assert "update.mismatch" in r.codes()
    f = r.findings[r.codes().index("update.mismatch")]
    assert f.evidence["candidates"][0]["residual"] > 1e-3


def test_mismatch_with_first_order_attribution_hint():
    def step(t, X, y):
        g = np.zeros(2)
        for i in range(len(X)):
            g += (2 if i == 1 else 1) * (X[i] @ t - y[i]) * X[i]  # sample 1 counted twice
        return t - 0.1 * g

    X, y = LIN_X[:2], LIN_Y[:2]
    r = check_step(step, lambda t, X, y: 0.5 * np.sum((X @ t - y) ** 2), np.zeros(2), X, y,
                   lr=0.1)
    (f,) = r.findings
    assert f.code == "update.mismatch"
    assert f.evidence["attribution_hint"]["weights"] == pytest.approx([1, 2])


def test_integer_update_is_truncated():
    def step(p, X, y):
        return np.round(p - 0.1 * 2 * X.T @ (X @ p - y) / len(y)).astype(int)

    r = check_step(step, lambda p, X, y: np.mean((X @ p - y) ** 2), np.array([3.0, -2.0]),
                   LIN_X, LIN_Y, lr=0.1)
    assert "input.integer_dtype" in r.codes()


# ---------------------------------------------------------------- contract


def test_inputs_are_never_mutated():
    p = s1_params()
    X, y = S1_X.copy(), S1_Y.copy()
    before = {k: v.copy() for k, v in p.items()}
    check_step(s1_step(False), s1_loss, p, X, y, lr=0.01)
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])
    np.testing.assert_array_equal(X, S1_X)


def test_result_json_and_str():
    r = check_step(s6_step(True), s6_loss, S6_THETA, S6_X, S6_Y, lr=0.1)
    assert isinstance(r, StepCheck)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["findings"][0]["evidence"]["samples"] == [4]
    assert "update.skipped_samples" in str(r)


def test_bad_input():
    with pytest.raises(ValueError, match="same number of rows"):
        check_step(s6_step(False), s6_loss, S6_THETA, S6_X, S6_Y[:3])
    with pytest.raises(ValueError, match="lr must be"):
        check_step(s6_step(False), s6_loss, S6_THETA, S6_X, S6_Y, lr=-1)
    with pytest.raises(ValueError, match="same structure"):
        check_step(lambda p, X, y: {"w": p["w"]}, lin_loss, LIN_P, LIN_X, LIN_Y)


# ---------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(deadline=None, derandomize=True, max_examples=30)
@given(n=st.integers(2, 9), skip=st.integers(0, 8), lr=st.floats(1e-3, 0.5),
       seed=st.integers(0, 1000), sequential=st.booleans())
def test_random_least_squares_steps(n, skip, lr, seed, sequential):
    skip = skip % n
    r0 = np.random.default_rng(seed)
    X, y, theta = r0.standard_normal((n, 3)), r0.standard_normal(n), r0.standard_normal(3)

    def loss(t, X, y):
        return 0.5 * np.sum((X @ t - y) ** 2)

    def make(drop):
        def step(t, X, y):
            if sequential:
                for i in range(len(X)):
                    if i != drop:
                        t = t - lr * (X[i] @ t - y[i]) * X[i]
                return t
            g = np.zeros(3)
            for i in range(len(X)):
                if i != drop:
                    g += (X[i] @ t - y[i]) * X[i]
            return t - lr * g

        return step

    assert check_step(make(None), loss, theta, X, y, lr=lr).ok
    r = check_step(make(skip), loss, theta, X, y, lr=lr)
    assert [f.code for f in r.findings] == ["update.skipped_samples"]
    assert r.findings[0].evidence["samples"] == [skip]
