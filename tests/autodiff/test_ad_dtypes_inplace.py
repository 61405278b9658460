"""dtype rules (float64 default, float32 kept, int/bool -> float64 when differentiated)
and in-place operations (differentiated correctly or refused, never a wrong gradient)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradwise as gw

F32, F64 = np.float32, np.float64


# ----------------------------------------------------------------------- dtypes
def test_python_floats_and_lists_default_to_float64():
    assert gw.tensor(1.5).dtype == F64
    assert gw.tensor([[1.0, 2.0]], requires_grad=True).dtype == F64
    assert gw.Tensor(np.float64(2.0)).dtype == F64


@pytest.mark.parametrize("data, expected", [
    ([1, 2, 3], [1.0, 2.0, 3.0]),
    (np.array([7, -2], dtype=np.int32), [7.0, -2.0]),
    ([True, False], [1.0, 0.0]),
    (np.array(3, dtype=np.uint8), 3.0),
])
def test_int_and_bool_data_that_requires_grad_becomes_float64_without_truncation(data, expected):
    t = gw.tensor(data, requires_grad=True)
    assert t.dtype == F64
    np.testing.assert_array_equal(t.data, expected)
    # a fractional update stays fractional (it would be truncated in an int array)
    with gw.no_grad():
        t -= 0.25
    np.testing.assert_array_equal(t.data, np.asarray(expected) - 0.25)
    (t * 0.5).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.full(np.shape(expected), 0.5))


def test_int_data_without_grad_is_kept_and_explicit_int_with_grad_is_refused():
    assert gw.tensor([1, 2]).dtype.kind == "i"
    with pytest.raises(TypeError, match="floating-point"):
        gw.tensor([1, 2], dtype=np.int64, requires_grad=True)
    p = gw.tensor([1, 2])
    with pytest.raises(TypeError, match="dtype"):
        p += 0.5
    np.testing.assert_array_equal(p.data, [1, 2])


OPS32 = {
    "mul scalar": lambda x: x * 2.5 + 1,
    "div": lambda x: x / 3,
    "pow": lambda x: x ** 2,
    "rpow": lambda x: 2.0 ** x,
    "exp": gw.exp,
    "mean": gw.mean,
    "var": gw.var,
    "std": gw.std,
    "softmax": gw.softmax,
    "log_softmax": gw.log_softmax,
    "logsumexp": gw.logsumexp,
    "where": lambda x: gw.where(np.array([True, False, True]), x, 0.0),
    "clip": lambda x: gw.clip(x, 0.0, 1.5),
    "maximum": lambda x: gw.maximum(x, 0.0),
    "sigmoid": gw.sigmoid,
    "relu": gw.relu,
    "leaky_relu": gw.leaky_relu,
    "softplus": gw.softplus,
    "abs": gw.abs,
    "prod": gw.prod,
    "max": gw.max,
    "matmul": lambda x: x @ x,
    "einsum": lambda x: gw.einsum("i,i->", x, x),
    "getitem": lambda x: x[np.array([0, 0, 2])],
    "stack": lambda x: gw.stack([x, x]),
    "concatenate": lambda x: gw.concatenate([x, x]),
}


@pytest.mark.parametrize("name", list(OPS32))
def test_float32_is_kept_through_forward_and_backward(name):
    x = gw.tensor(np.array([0.5, -1.0, 2.0], dtype=F32), requires_grad=True)
    out = OPS32[name](x)
    assert out.dtype == F32, f"{name} gave {out.dtype}"
    out.sum().backward()
    assert x.grad.dtype == F32


def test_float32_leaf_mixed_with_float64_array_gets_a_float32_gradient():
    x = gw.tensor(np.ones(3, dtype=F32), requires_grad=True)
    y = x * np.arange(3.0)  # NumPy promotion: float64 result
    assert y.dtype == F64
    y.sum().backward()
    assert x.grad.dtype == F32
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 2.0])


def test_astype_is_differentiable_and_gradient_returns_to_the_source_dtype():
    x = gw.tensor([0.1, 0.2], requires_grad=True)
    y = x.astype(F32)
    assert y.dtype == F32
    (y * y).sum().backward()
    assert x.grad.dtype == F64
    np.testing.assert_allclose(x.grad.data, [0.2, 0.4], rtol=1e-6)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_stable_functions_do_not_overflow_for_huge_inputs(dtype):
    big = np.array([1e4, -1e4, 0.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow RuntimeWarning fails the test
        for fn, value, grad in [
            (gw.sigmoid, [1.0, 0.0, 0.5], [0.0, 0.0, 0.25]),
            (gw.softplus, [1e4, 0.0, np.log(2.0)], [1.0, 0.0, 0.5]),
        ]:
            x = gw.tensor(big, requires_grad=True)
            y = fn(x)
            y.sum().backward()
            assert y.dtype == dtype and x.grad.dtype == dtype
            np.testing.assert_allclose(y.data, value, rtol=1e-6)
            np.testing.assert_allclose(x.grad.data, grad, rtol=1e-6)
        x = gw.tensor(np.array([1e4, 1e4 - np.log(3.0)], dtype=dtype), requires_grad=True)
        lse = gw.logsumexp(x)
        lse.backward()
        d = x.data.astype(F64) - 1e4  # float32 rounds 1e4 - log 3 (spacing ~1e-3)
        np.testing.assert_allclose(lse.item(), 1e4 + np.log(np.exp(d).sum()), rtol=1e-6)
        # exp(x - lse): lse ~ 1e4 carries float32's absolute spacing ~1e-3 into the exponent
        np.testing.assert_allclose(x.grad.data, np.exp(d) / np.exp(d).sum(),
                                   rtol=1e-12 if dtype == F64 else 2e-3)
        np.testing.assert_allclose(gw.softmax(gw.tensor(big)).data, [1.0, 0.0, 0.0])
        np.testing.assert_allclose(gw.log_softmax(gw.tensor(big)).data[0], 0.0, atol=1e-6)


# --------------------------------------------------------------------- in place
def test_manual_sgd_update_under_no_grad_is_the_pytorch_idiom():
    p = gw.tensor([1.0, -2.0], requires_grad=True)
    for _ in range(3):
        p.grad = None
        loss = (p * p).sum()
        loss.backward()
        with gw.no_grad():
            p -= 0.25 * p.grad
    # p <- p - 0.25 * 2p = p / 2 each step
    np.testing.assert_allclose(p.data, [1.0 / 8, -2.0 / 8])
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    with gw.no_grad():
        p *= 2.0
        p += gw.tensor([1.0, 1.0])
        p /= 2.0
    np.testing.assert_allclose(p.data, [0.625, 0.25])


def test_in_place_on_a_leaf_that_requires_grad_with_grad_on_raises():
    p = gw.tensor([1.0, 2.0], requires_grad=True)
    for update in (lambda: p.__isub__(0.1), lambda: p.__imul__(2.0),
                   lambda: p.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="no_grad"):
            update()
    np.testing.assert_array_equal(p.data, [1.0, 2.0])
    assert p.requires_grad and p.is_leaf


def test_writing_into_data_is_untracked_and_always_allowed():
    p = gw.tensor([1.0, 2.0], requires_grad=True)
    p.data[...] = [3.0, 4.0]
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.data, [6.0, 8.0])


def test_tensor_saved_for_backward_then_modified_in_place_makes_backward_raise():
    x = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x * 1.0
    b = a * a  # saves a
    a += 1.0
    with pytest.raises(RuntimeError, match="modified in place"):
        b.sum().backward()


def test_leaf_updated_under_no_grad_between_forward_and_backward_makes_backward_raise():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with gw.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()
    assert w.grad is None


def test_setitem_on_a_saved_tensor_makes_backward_raise():
    x = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x * 2.0
    b = gw.sin(a)
    a[0] = 5.0
    with pytest.raises(RuntimeError, match="modified in place"):
        b.sum().backward()


def test_in_place_on_a_non_leaf_has_the_out_of_place_gradient():
    x0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    v0 = np.array([0.2, -0.4, 1.1])

    def run(inplace):
        x = gw.tensor(x0, requires_grad=True)
        v = gw.tensor(v0, requires_grad=True)
        if inplace:
            y = x * 1.0
            y += v
            y *= x
            y -= v * 2.0
            y /= v + 3.0
        else:
            y = ((x * 1.0 + v) * x - v * 2.0) / (v + 3.0)
        (y * y).sum().backward()
        return y.data, x.grad.data, v.grad.data

    for got, ref in zip(run(True), run(False)):
        np.testing.assert_allclose(got, ref, rtol=1e-14)


def test_setitem_with_a_value_that_requires_grad_differentiates_both_sides():
    x = gw.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    v = gw.tensor([10.0, 20.0], requires_grad=True)
    y = x * 1.0
    y[:, 1] = v * 3.0
    np.testing.assert_array_equal(y.data, [[0, 30, 2], [3, 60, 5]])
    (y * np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1, 0, 3], [4, 0, 6]])  # overwritten: 0
    np.testing.assert_array_equal(v.grad.data, [6.0, 15.0])  # 3 * [2, 5]


def test_setitem_into_a_constant_tensor_makes_it_part_of_the_graph():
    buf = gw.zeros(3)
    v = gw.tensor(2.0, requires_grad=True)
    buf[np.array([0, 2])] = v * v
    assert buf.requires_grad
    (buf * gw.tensor([1.0, 5.0, 7.0])).sum().backward()
    assert v.grad.item() == pytest.approx((1.0 + 7.0) * 2 * 2.0)


def test_setitem_with_repeated_positions_is_refused_when_recorded():
    y = gw.tensor(np.zeros(3), requires_grad=True) * 1.0
    v = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="repeats a position"):
        y[np.array([0, 0])] = v
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 0.0])


def test_p3_in_place_update_that_would_change_the_shape_raises():
    """SCENARIOS.md P3: a (4,) bias and a (4, 4) upstream gradient."""
    upstream = np.ones((4, 4))
    b = gw.tensor(np.zeros(4), requires_grad=True)
    with gw.no_grad(), pytest.raises(ValueError, match=r"\(4,\).*\(4, 4\)"):
        b -= 0.1 * gw.tensor(upstream)
    assert b.shape == (4,)
    c = b * 1.0
    with pytest.raises(ValueError, match=r"change the shape.*\(4,\).*\(4, 4\)"):
        c += gw.tensor(upstream, requires_grad=True)
    assert c.shape == (4,)
    # the right gradient of L = sum(C), C = A + b, is [4, 4, 4, 4], shape (4,)
    (gw.tensor(upstream) + b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [4.0, 4.0, 4.0, 4.0])


# ---- aliasing: in-place writes through another Tensor sharing the memory
def _detach_alias(x):
    d = x.detach()
    d += 1.0


def _view_alias(x):
    with gw.no_grad():
        v = x[0:2]
        v *= 3.0


def _reshape_alias(x):
    with gw.no_grad():
        v = x.reshape(2)
        v += 1.0


@pytest.mark.parametrize("alias", [_detach_alias, _view_alias, _reshape_alias],
                         ids=["detach", "basic-index view", "reshape view"])
def test_in_place_write_through_an_alias_of_a_saved_tensor_makes_backward_raise(alias):
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    alias(x)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_in_place_change_of_an_output_its_vjp_reuses_makes_backward_raise():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    y = gw.exp(x)
    with gw.no_grad():
        y += 1.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()
