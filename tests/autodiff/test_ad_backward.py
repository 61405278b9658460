"""Semantics of backward(): freeing, retain_graph, create_graph, accumulation,
long chains, error messages; grad mode; the Tensor basics."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

import gradwise as gw
from gradwise.autodiff.engine import unbroadcast
from gradwise.autodiff.tensor import Primitive


def test_second_backward_through_a_freed_graph_raises_and_names_retain_graph():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])  # untouched by the failed call


def test_retain_graph_allows_a_second_backward_which_accumulates():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, 2 * 3 * np.array([1.0, 4.0]))
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_gradients_accumulate_across_graphs_until_reset():
    w = gw.tensor([1.0, -1.0], requires_grad=True)
    (w * 3.0).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3.0 + 2.0, 3.0 - 2.0])
    w.zero_grad()
    assert w.grad is None


def test_grad_is_a_tensor_that_does_not_require_grad():
    x = gw.tensor([[1.0, 2.0]], requires_grad=True)
    gw.tanh(x).sum().backward()
    assert isinstance(x.grad, gw.Tensor)
    assert not x.grad.requires_grad and x.grad.is_leaf
    assert x.grad.shape == x.shape
    np.testing.assert_allclose(x.grad.data, 1 - np.tanh([[1.0, 2.0]]) ** 2)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_create_graph_makes_grad_differentiable_like_pytorch():
    x = gw.tensor(2.0, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.item() == 12.0  # 3 x^2
    x.grad = None
    g.backward()
    assert x.grad.item() == 12.0  # 6 x
    torch = pytest.importorskip("torch")
    tx = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    (torch.sin(tx) * tx).sum().backward(create_graph=True)
    tg = tx.grad
    tx.grad = None
    (tg * tg).sum().backward()
    gx = gw.tensor([0.3, -1.2], requires_grad=True)
    (gw.sin(gx) * gx).sum().backward(create_graph=True)
    gg = gx.grad
    gx.grad = None
    (gg * gg).sum().backward()
    np.testing.assert_allclose(gx.grad.data, tx.grad.detach().numpy(), rtol=1e-12)


def test_a_100_000_node_chain_runs_without_recursion_and_fast():
    x = gw.tensor(np.ones((3, 3)), requires_grad=True)
    y = x
    start = time.perf_counter()
    for _ in range(50_000):
        y = y * 1.0001
        y = y + 0.1
    y.sum().backward()
    elapsed = time.perf_counter() - start
    assert sys.getrecursionlimit() < 100_000
    np.testing.assert_allclose(x.grad.data, np.full((3, 3), 1.0001 ** 50_000), rtol=1e-9)
    assert elapsed < 15.0, f"100 000-node chain took {elapsed:.1f} s"


def test_diamond_graph_sums_gradients_over_paths():
    x = gw.tensor(3.0, requires_grad=True)
    a = x * 2.0
    b = x * x
    (a * b + a).backward()  # 2x^3 + 2x -> 6x^2 + 2
    assert x.grad.item() == 6 * 9 + 2


def _broken_primitive():
    """A deliberately wrong rule: its VJP returns a gradient of the wrong shape."""
    return Primitive("broken_op", lambda x: x * 2.0,
                     (lambda g, ans, x: np.ones(x.shape[0] - 1),))


def test_wrong_shape_gradient_names_op_argument_and_both_shapes():
    x = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = _broken_primitive()(x)
    with pytest.raises(ValueError, match=r"broken_op.*argument 0.*\(2,\).*\(3,\)"):
        y.sum().backward()


def test_unbroadcast_sums_broadcast_axes_and_rejects_foreign_shapes():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, (2, 3, 4)) is g
    with pytest.raises(ValueError, match=r"'mul' for argument 1: got \(2, 3, 4\), expected \(5,\)"):
        unbroadcast(g, (5,), "mul", 1)
    with pytest.raises(ValueError, match=r"expected \(2, 2, 3, 4\)"):
        unbroadcast(g, (2, 2, 3, 4), "add", 0)


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*grad="):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\).*expected \(2,\)"):
        y.backward(np.ones(3))
    y.backward(gw.tensor([1.0, -1.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, -2.0])


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        gw.tensor(1.0).backward()
    x = gw.tensor(1.0, requires_grad=True)
    with gw.no_grad():
        y = x * 2.0
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_grad_mode_context_managers_and_decorator():
    x = gw.tensor(1.0, requires_grad=True)
    assert gw.is_grad_enabled()
    with gw.no_grad():
        assert not gw.is_grad_enabled()
        assert not (x * 2).requires_grad
        with gw.enable_grad():
            assert (x * 2).requires_grad
        assert not gw.is_grad_enabled()
    assert gw.is_grad_enabled()

    @gw.no_grad()
    def step(t):
        return t * 3

    assert not step(x).requires_grad and gw.is_grad_enabled()
    with pytest.raises(KeyError), gw.no_grad():
        raise KeyError("restored after an exception")
    assert gw.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])  # d treated as a constant
    base = x.detach()
    base.data[0] = 7.0
    assert x.data[0] == 7.0


def test_only_leaves_get_grad_and_constants_get_none():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    c = gw.tensor([5.0, 6.0])
    h = x * c
    h.sum().backward()
    assert h.grad is None and c.grad is None
    assert not h.is_leaf and h.grad_fn == "<freed>"


def test_tensor_basics_and_repr():
    t = gw.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    assert (t.shape, t.ndim, t.size, len(t)) == ((2, 3), 2, 6, 2)
    assert t.T.shape == (3, 2) and t.T.grad_fn == "transpose"
    r = repr(t)
    assert r.startswith("tensor([[0., 1., 2.],") and "requires_grad=True" in r and "'W'" in r
    assert "grad_fn=mul" in repr(t * 2)
    assert "dtype=float32" in repr(gw.tensor(np.ones(2, dtype=np.float32)))
    assert gw.tensor(2.5).item() == 2.5
    with pytest.raises(TypeError):
        len(gw.tensor(1.0))


def test_transpose_method_accepts_none_like_ndarray():
    x = gw.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.transpose(None).shape == (3, 2)
