"""Conventions at non-differentiable points (ties, kinks, zero variance), compared
with PyTorch: finite differences cannot judge these, so the oracle does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradwise as gw

CASES = {  # name: (gradwise fn, torch fn, input)
    "max ties share equally": (lambda x: gw.max(x, axis=1), lambda T, x: x.amax(1),
                               [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),
    "max ties over all": (gw.max, lambda T, x: x.amax(), [[1.0, 3.0, 3.0], [2.0, 2.0, 3.0]]),
    "min ties keepdims": (lambda x: gw.min(x, axis=0, keepdims=True),
                          lambda T, x: x.amin(0, keepdim=True), [[1.0, 3.0, 3.0], [1.0, 2.0, 3.0]]),
    "maximum tie splits 1/2": (lambda x: gw.maximum(x, 2.0),
                               lambda T, x: T.maximum(x, T.tensor(2.0, dtype=x.dtype)),
                               [1.0, 2.0, 3.0]),
    "minimum tie splits 1/2": (lambda x: gw.minimum(x, x[::-1]),
                               lambda T, x: T.minimum(x, x.flip(0)), [1.0, 2.0, 3.0]),
    "abs at 0": (gw.abs, lambda T, x: x.abs(), [0.0, 1.0, -1.0]),
    "relu at 0": (gw.relu, lambda T, x: x.relu(), [0.0, 1.0, -1.0]),
    "leaky_relu at 0": (gw.leaky_relu, lambda T, x: T.nn.functional.leaky_relu(x),
                        [0.0, 1.0, -1.0]),
    "clip at the bounds": (lambda x: gw.clip(x, -1.0, 1.0), lambda T, x: x.clamp(-1.0, 1.0),
                           [-1.0, 1.0, 0.0, 2.0, -3.0]),
    "sign at 0": (gw.sign, lambda T, x: x.sign(), [0.0, 2.0]),
    "pow at 0 (integer exponent)": (lambda x: x ** 2, lambda T, x: x ** 2, [0.0, -1.0]),
    "pow exponent 0 at base 0": (lambda x: x ** 0, lambda T, x: x ** 0, [0.0, 2.0]),
    "pow tensor exponent 0 at base 0": (
        lambda x: x ** gw.tensor([0.0, 1.5], requires_grad=True),
        lambda T, x: x ** T.tensor([0.0, 1.5], dtype=x.dtype, requires_grad=True), [0.0, 2.0]),
    "pow base 0 exponent grad": (lambda x: gw.tensor([0.0, 2.0]) ** x,
                                 lambda T, x: T.tensor([0.0, 2.0], dtype=x.dtype) ** x, [2.0, 3.0]),
    "std of a constant row": (lambda x: gw.std(x, axis=1), lambda T, x: x.std(1, correction=0),
                              [[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]),
    "norm of a zero vector": (lambda x: np.linalg.norm(x, axis=0),
                              lambda T, x: T.linalg.norm(x, dim=0), [[0.0, 3.0], [0.0, 4.0]]),
    "prod with two zeros": (gw.prod, lambda T, x: x.prod(), [[1.0, 0.0, 3.0], [0.0, 2.0, 2.0]]),
    "softmax of -inf": (gw.softmax, lambda T, x: x.softmax(-1), [-np.inf, 1.0, 2.0]),
    "log_softmax of -inf": (lambda x: gw.log_softmax(x)[1:], lambda T, x: x.log_softmax(-1)[1:],
                            [-np.inf, 1.0, 2.0]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_convention_at_non_differentiable_points_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    gf, tf, x0 = CASES[name]
    x0 = np.asarray(x0, dtype=np.float64)
    x = gw.tensor(x0, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 or inf*0 on the way
        out = gf(x)
        w = np.arange(1.0, out.size + 1).reshape(out.shape)
        out.backward(w)
    tx = torch.tensor(x0, requires_grad=True)
    tout = tf(torch, tx)
    tout.backward(torch.from_numpy(w))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(x.grad.data))


def test_max_tie_gradient_values():
    x = gw.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    gw.max(x).backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 0.5, 0.5]])


SECOND = {
    "std, zero variance row": (lambda a: gw.std(a, axis=1),
                               lambda T, a: a.std(1, correction=0)),
    "max with ties": (lambda a: gw.max(a, axis=1), lambda T, a: a.amax(1)),
    "prod with zeros": (lambda a: gw.prod(a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])),
                        lambda T, a: (a * T.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]],
                                                   dtype=a.dtype)).prod()),
}


@pytest.mark.parametrize("name", list(SECOND))
def test_second_order_at_ties_and_zero_variance_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    gf, tf = SECOND[name]
    x0 = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    v = np.array([[0.3, -1.0, 2.0], [1.0, 0.5, -0.7]])
    h = gw.hvp(lambda a: (gf(a) ** 2).sum() + gf(a).sum(), x0, v)
    assert np.all(np.isfinite(h))
    tx = torch.tensor(x0, requires_grad=True)
    out = tf(torch, tx)
    (g,) = torch.autograd.grad((out ** 2).sum() + out.sum(), tx, create_graph=True)
    (ref,) = torch.autograd.grad((g * torch.from_numpy(v)).sum(), tx)
    np.testing.assert_allclose(h, ref.numpy(), rtol=1e-10, atol=1e-12)
