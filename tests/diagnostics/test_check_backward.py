"""check_backward on a layered network written from scratch (S4).

Each layer's backward is checked on its own against finite differences of
⟨upstream, forward(x)⟩; the S4 faults are found in the right block and the
harmless one-sided clipping in the loss derivative is not reported.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from gradwise.diagnostics.check import check_backward, gradients_from_update


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def d_sigmoid(z):
    s = sigmoid(z)
    return s * (1 - s)


def relu(z):
    return np.maximum(z, 0)


def d_relu(z):
    return (z > 0).astype(float)


ACT = {"sigmoid": (sigmoid, d_sigmoid), "relu": (relu, d_relu)}


class Dense:
    """An S4-style layer: forward caches, backward(upstream, lr) updates and returns dx."""

    def __init__(self, W, b, activation, fault=None):
        self.W, self.b = W, b
        self.act, self.d_act = ACT[activation]
        self.fault = fault

    def forward(self, x):
        self.x = x
        self.z = x @ self.W + self.b
        return self.act(self.z)

    def backward(self, upstream, lr):
        m = self.x.shape[0]
        if self.fault == "activation_on_upstream":
            delta = upstream * self.d_act(upstream)
        else:
            delta = upstream * self.d_act(self.z)
        divisor = self.x.shape[1] if self.fault == "divide_by_features" else m
        dW = self.x.T @ delta / divisor
        db = (upstream if self.fault == "bias_from_upstream" else delta).sum(axis=0) / divisor
        dx = delta @ self.W.T
        self.W -= lr * dW
        self.b -= lr * db
        return dx


def layer_functions(activation, fault=None, lr=0.05):
    def forward(x, p):
        return Dense(p["W"], p["b"], activation).forward(x)

    def update(upstream, x, p):
        layer = Dense(p["W"], p["b"], activation, fault)
        layer.forward(x)
        dx = layer.backward(upstream, lr)
        return {"W": layer.W, "b": layer.b}, dx

    return forward, gradients_from_update(update, lr)


def s4_batch(m=16):
    data = load_breast_cancer()
    X = data.data[:m]
    X = (X - data.data.mean(0)) / data.data.std(0)
    return X


def s4_layers(seed=0):
    r = np.random.default_rng(seed)
    return ({"W": r.standard_normal((30, 16)) * np.sqrt(1 / 30), "b": np.zeros(16)},
            {"W": r.standard_normal((16, 1)) * np.sqrt(1 / 16), "b": np.zeros(1)})


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_correct_layers_are_clean(activation):
    x = s4_batch()
    p1, p2 = s4_layers()
    fwd, bwd = layer_functions(activation)
    r1 = check_backward(fwd, bwd, x, p1, param_scale="mean", layer="layer 1")
    assert r1.ok and not r1.faults, str(r1)
    h = fwd(x, p1)
    r2 = check_backward(*layer_functions("sigmoid"), h, p2, param_scale="mean", layer="layer 2")
    assert r2.ok and r2.findings == []
    assert {b["block"] for b in r2.blocks} == {"layer 2: W", "layer 2: b", "layer 2: x"}


def test_activation_derivative_applied_to_upstream_found_in_layer_2():
    x = s4_batch()
    p1, p2 = s4_layers()
    h = layer_functions("sigmoid")[0](x, p1)
    r = check_backward(*layer_functions("sigmoid", "activation_on_upstream"), h, p2,
                       param_scale="mean", layer="layer 2")
    assert not r.ok
    assert {f.location for f in r.faults} == {"layer 2: W", "layer 2: b", "layer 2: x"}


def test_bias_gradient_from_upstream_names_only_the_bias():
    x = s4_batch()
    p1, _ = s4_layers()
    r = check_backward(*layer_functions("sigmoid", "bias_from_upstream"), x, p1,
                       param_scale="mean", layer="layer 1")
    assert [f.location for f in r.faults] == ["layer 1: b"]
    verdicts = {b["block"]: b["verdict"] for b in r.blocks}
    assert verdicts["layer 1: W"] == "ok" and verdicts["layer 1: x"] == "ok"


def test_divided_by_input_features_instead_of_batch_size_gives_the_factor():
    x = s4_batch(m=16)
    p1, _ = s4_layers()
    r = check_backward(*layer_functions("relu", "divide_by_features"), x, p1,
                       param_scale="mean", layer="layer 1")
    assert [f.code for f in r.faults] == ["gradient.scale", "gradient.scale"]
    for f in r.faults:
        assert f.evidence["factor"] == pytest.approx(16 / 30, rel=1e-6)
        assert f.evidence["factor_text"] == "16/30 (batch size / input features)"
    assert {f.location for f in r.faults} == {"layer 1: W", "layer 1: b"}


def test_bce_derivative_clipping_only_one_argument_is_not_reported():
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    eps = 1e-7

    def forward(p_hat, params):
        p = np.clip(p_hat, eps, 1 - eps)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    def backward(upstream, p_hat, params):
        p = np.clip(p_hat, eps, 1 - eps)
        d = (-y / p + (1 - y) / (1 - p_hat)) / len(y)  # clips only one argument
        return {"x": upstream * d}

    r = check_backward(forward, backward, np.array([0.2, 0.7, 0.9, 0.4, 0.55]), {})
    assert r.ok and r.findings == []


def test_plain_backward_dict_and_tuple_params():
    r0 = np.random.default_rng(7)
    x = r0.standard_normal((5, 3))

    def forward(x, p):
        W, b = p
        return np.tanh(x @ W + b)

    def backward(u, x, p):
        W, b = p
        delta = u * (1 - np.tanh(x @ W + b) ** 2)
        return {0: x.T @ delta, 1: delta.sum(0), "x": (delta @ W.T).T}  # dx transposed

    r = check_backward(forward, backward, x, (r0.standard_normal((3, 2)), np.zeros(2)))
    assert [(f.code, f.location) for f in r.faults] == [("gradient.transposed", "x")]


def test_inputs_not_mutated_and_errors():
    x = s4_batch(4)
    p1, _ = s4_layers()
    before = {k: v.copy() for k, v in p1.items()}
    check_backward(*layer_functions("sigmoid"), x, p1, param_scale="mean")
    for k in p1:
        np.testing.assert_array_equal(p1[k], before[k])
    fwd, bwd = layer_functions("sigmoid")
    with pytest.raises(ValueError, match="param_scale"):
        check_backward(fwd, bwd, x, p1, param_scale="avg")
    with pytest.raises(ValueError, match="none of which"):
        check_backward(fwd, lambda u, x, p: {"dW": 0}, x, p1)
    with pytest.raises(ValueError, match="lr must be nonzero"):
        gradients_from_update(lambda u, x, p: (p, None), 0)
