"""Adversarial use of the engine: odd shapes, dtypes, indices, NumPy keywords, grad modes,
pickling, explain. PyTorch is the oracle where behaviour is a convention."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import gradwise as gw


def grads(f, *xs):
    ts = [gw.tensor(np.asarray(x, dtype=float), requires_grad=True) for x in xs]
    f(*ts).backward()
    return [t.grad.numpy() for t in ts]


def torch_grads(f, *xs):
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(np.asarray(x, dtype=float), requires_grad=True) for x in xs]
    f(*ts).backward()
    return [t.grad.numpy() for t in ts]


X24 = np.arange(24.0).reshape(2, 3, 4) / 7


@pytest.mark.parametrize(
    "f, tf",
    [
        (lambda a: (a.sum(axis=-1) ** 2).sum(), None),
        (lambda a: (a.sum(axis=(0, -1)) ** 2).sum(), None),
        (lambda a: (a.mean(axis=(1,), keepdims=True) * a).sum(), None),
        (lambda a: (a[..., 0] ** 2).sum(), None),
        (lambda a: (a[None, :, -1] ** 3).sum(), None),
        (lambda a: (a[a > 1.0] ** 2).sum(), None),
        (lambda a: (a[0, [0, 0, 2]] ** 2).sum(), None),
        (lambda a: a.var(axis=(0, 2)).sum(), lambda a: a.var(dim=(0, 2), correction=0).sum()),
        (lambda a: a.max(axis=(0, 2), keepdims=True).sum(),
         lambda a: a.amax(dim=(0, 2), keepdim=True).sum()),
    ],
    ids=["neg-axis", "tuple-axes", "mean-keepdims", "ellipsis", "none-neg", "bool-mask",
         "repeated-index", "var-tuple", "max-tuple-keepdims"],
)
def test_reductions_and_indices_match_pytorch(f, tf):
    got = grads(f, X24)[0]
    want = torch_grads(tf or f, X24)[0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_zero_d_empty_and_size_one_broadcasting():
    assert grads(lambda t: t * t, 3.0)[0] == 6.0
    np.testing.assert_array_equal(grads(lambda t: t.sum(), np.zeros((0, 3)))[0], np.zeros((0, 3)))
    ga, gb = grads(lambda a, b: (a * b).sum(), np.ones((1, 3)), np.full((4, 1), 2.0))
    np.testing.assert_array_equal(ga, np.full((1, 3), 8.0))
    np.testing.assert_array_equal(gb, np.full((4, 1), 3.0))


def test_numpy_scalars_on_the_left_keep_the_graph():
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    for r in (np.float64(2) * a, np.float64(2) + a, np.float64(2) ** a, 2.0 - a):
        assert isinstance(r, gw.Tensor) and r.requires_grad
    (np.float64(3) * a).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0])


def test_float32_keeps_its_dtype_and_mixing_promotes_like_numpy():
    a = gw.tensor(np.ones(2, np.float32), requires_grad=True)
    b = gw.tensor(np.ones(2), requires_grad=True)
    assert (a * 2.5).dtype == np.float32
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_retain_graph_accumulates_and_a_second_backward_without_it_raises():
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    y = (a * a).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 8.0])
    z = (a * a).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        z.backward()


def test_grad_mode_nesting_decorators_and_exceptions_restore_state():
    with gw.no_grad():
        with gw.enable_grad():
            assert gw.is_grad_enabled()
        assert not gw.is_grad_enabled()
    assert gw.is_grad_enabled()

    @gw.no_grad()
    def boom():
        raise ValueError

    with pytest.raises(ValueError):
        boom()
    assert gw.is_grad_enabled()


def test_no_grad_works_as_a_decorator_without_parentheses():
    # /tmp/engine_bugs.md #6 (fixed by the lead in 9d92b55)
    @gw.no_grad
    def f():
        return gw.is_grad_enabled()

    assert f() is False and gw.is_grad_enabled()


def test_a_non_leaf_tensor_pickles_as_a_leaf_like_pytorch():
    # /tmp/engine_bugs.md #7 (fixed by the lead in 9d92b55)
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    b = pickle.loads(pickle.dumps(a * 2))
    np.testing.assert_array_equal(b.detach().numpy(), [2.0, 4.0])
    assert b.requires_grad and b.is_leaf


def test_hvp_of_piecewise_linear_functions_is_zero_like_pytorch():
    np.testing.assert_array_equal(gw.hvp(lambda x: gw.relu(x).sum(), np.array([1.0, -1.0]),
                                         np.ones(2)), [0.0, 0.0])
    np.testing.assert_array_equal(gw.hvp(lambda x: x.max() ** 2, np.array([1.0, 3.0]),
                                         np.ones(2)), [0.0, 2.0])


def test_hvp_rejects_a_direction_of_another_structure():
    with pytest.raises(ValueError, match=r"hvp: v must have the same structure as x"):
        gw.hvp(lambda p: (p["a"] ** 2).sum(), {"a": np.ones(2)}, np.ones(2))


def test_argnums_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match=r"grad: argnums=1, but the function was called with 1"):
        gw.grad(lambda a: a.sum(), argnums=1)(np.ones(2))
    g = gw.grad(lambda a, b: (a * b).sum(), argnums=-1)(np.ones(2), np.full(2, 3.0))
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_np_sum_and_mean_accept_dtype_and_where_like_numpy():
    v = np.array([1.0, 2.0, 3.0])
    m = np.array([True, False, True])
    for fn in (np.sum, np.mean):
        a = gw.tensor(v, requires_grad=True)
        r = fn(a * a, where=m)
        assert r.item() == pytest.approx(fn(v * v, where=m))
        r.backward()
        np.testing.assert_allclose(a.grad.numpy(), 2 * v * m / (1 if fn is np.sum else 2))
    b = gw.tensor(np.ones((2, 3)), requires_grad=True)
    mm = np.array([[1, 0, 1], [0, 0, 1]], bool)
    np.testing.assert_array_equal(np.mean(b, axis=1, where=mm).detach().numpy(), [1.0, 1.0])
    r = np.sum(gw.tensor(v, requires_grad=True), dtype=np.float32)
    assert r.dtype == np.float32 and r.requires_grad


@pytest.mark.parametrize("call", [lambda a: np.sum(a, out=np.zeros(())),
                                  lambda a: np.max(a, initial=5.0),
                                  lambda a: np.max(a, where=np.array([True, False]))])
def test_unsupported_reduction_keywords_are_named(call):
    with pytest.raises(TypeError, match=r"is not supported on Tensors; call it without"):
        call(gw.tensor([1.0, 2.0], requires_grad=True))


def test_explain_handles_size_one_vectors_and_infinite_values():
    x = gw.tensor([1.0], requires_grad=True, name="x")
    y = (x * 2).sum()
    text = str(gw.explain(y))
    assert "dy/dx = 2" in text.splitlines()[-1]
    x = gw.tensor(np.inf, requires_grad=True, name="x")
    y = x * 2
    assert "x = inf" in str(gw.explain(y))


def test_std_with_too_few_degrees_of_freedom_is_nan_like_numpy_and_pytorch():
    # the zero-variance "double where" turned NaN into 0
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(gw.tensor([1.0]).std(ddof=1).item())
    a = gw.tensor([1.0, 1.0], requires_grad=True)
    a.std().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])


def test_clip_accepts_array_and_tensor_bounds():
    a = gw.tensor([1.0, 5.0, -1.0], requires_grad=True)
    r = gw.clip(a, gw.tensor([0.0, 0.0, 0.0]), np.array([2.0, 6.0, 2.0]))
    r.sum().backward()
    np.testing.assert_array_equal(r.detach().numpy(), [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"clip: lo of shape \(2, 3\) does not broadcast"):
        gw.clip(a, np.zeros((2, 3)), None)


def test_a_scalar_tensor_formats_like_a_float():
    loss = (gw.tensor([1.0, 2.0], requires_grad=True) ** 2).sum()
    assert f"{loss:.4f}" == "5.0000"


def test_non_numeric_and_complex_grad_tensors_are_refused():
    with pytest.raises(TypeError):
        gw.tensor("abc")
    with pytest.raises(TypeError, match="floating-point"):
        gw.tensor([1j], requires_grad=True)


def test_grad_zero_in_place_like_pytorch():
    p = gw.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    p.grad.zero_()
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])


def test_grad_mode_is_thread_local_like_pytorch():
    import threading

    seen = {}
    with gw.no_grad():
        th = threading.Thread(target=lambda: seen.setdefault("on", gw.is_grad_enabled()))
        th.start()
        th.join()
    assert seen["on"] is True


@pytest.mark.parametrize("write", [
    lambda p: np.multiply(p, 2.0, out=p),
    lambda p: np.add.at(p, [0], 1.0),
    lambda p: np.copyto(p, np.array([5.0, 5.0])),
])
def test_numpy_in_place_writes_into_a_saved_tensor_make_backward_raise(write):
    # out=/ufunc.at/np.copyto wrote into .data without a version bump: x.grad came out
    # silently wrong ([4, 8] instead of an error)
    p = gw.tensor([1.0, 2.0], requires_grad=True)
    y = (p * p).sum()
    with gw.no_grad():
        write(p)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_numpy_out_returns_the_tensor_and_is_refused_on_a_grad_leaf_while_recording():
    q = gw.tensor([1.0, 2.0])
    assert np.exp(q, out=q) is q
    np.testing.assert_allclose(q.numpy(), np.exp([1.0, 2.0]))
    p = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"cannot differentiate np.multiply\(..., out=...\)"):
        np.multiply(np.ones(2), 2.0, out=p)
    with pytest.raises(TypeError, match="cannot differentiate np.copyto"):
        np.copyto(p, np.zeros(2))
