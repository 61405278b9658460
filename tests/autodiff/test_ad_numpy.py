"""Plain NumPy code runs on Tensors and differentiates (NEP 13/18 protocols); what
cannot be differentiated raises instead of silently dropping the graph."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import gradwise as gw


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(5, 3)),
        "y": rng.integers(0, 2, size=(5, 1)).astype(float),
        "W1": rng.normal(size=(3, 4)),
        "b1": rng.normal(size=(4,)),
        "W2": rng.normal(size=(4, 1)),
        "b2": rng.normal(size=(1,)),
    }


def sigmoid_net_loss(W1, b1, W2, b2, X, y):
    """A two-layer sigmoid network exactly as written with NumPy, no gradwise names."""
    h = 1.0 / (1.0 + np.exp(-(np.matmul(X, W1) + b1)))
    p = 1.0 / (1.0 + np.exp(-(np.dot(h, W2) + b2)))
    return np.sum((p - y) ** 2) / X.shape[0]


def kitchen_sink(W1, b1, W2, b2, X, y):
    """Uses every NumPy function named in issue 2."""
    z = np.einsum("ni,ij->nj", X, W1) + b1
    h = np.where(z > 0, np.tanh(z), np.maximum(z, -0.5) * 0.1)
    h = np.concatenate([h, np.square(h[:, :1])], axis=1)
    h2 = np.reshape(np.transpose(np.stack([h[:, :4], h[:, 1:]], axis=0), (1, 0, 2)), (5, 8))
    p = np.clip(1.0 / (1.0 + np.exp(-(np.dot(h2[:, :4], W2) + b2))), 1e-6, 1 - 1e-6)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    return bce + 0.01 * np.sum(np.power(W1, 2)) + np.mean(np.square(W2))


def _torch_versions(torch):
    def net(W1, b1, W2, b2, X, y):
        h = 1.0 / (1.0 + torch.exp(-(X @ W1 + b1)))
        p = 1.0 / (1.0 + torch.exp(-(h @ W2 + b2)))
        return torch.sum((p - y) ** 2) / X.shape[0]

    def sink(W1, b1, W2, b2, X, y):
        z = torch.einsum("ni,ij->nj", X, W1) + b1
        h = torch.where(z > 0, torch.tanh(z), torch.maximum(z, torch.tensor(-0.5,
                        dtype=z.dtype)) * 0.1)
        h = torch.cat([h, torch.square(h[:, :1])], dim=1)
        h2 = torch.reshape(torch.stack([h[:, :4], h[:, 1:]], dim=0).permute(1, 0, 2), (5, 8))
        p = torch.clamp(1.0 / (1.0 + torch.exp(-(h2[:, :4] @ W2 + b2))), 1e-6, 1 - 1e-6)
        bce = -torch.mean(y * torch.log(p) + (1 - y) * torch.log(1 - p))
        return bce + 0.01 * torch.sum(W1 ** 2) + torch.mean(torch.square(W2))

    return {"sigmoid_net": (sigmoid_net_loss, net), "kitchen_sink": (kitchen_sink, sink)}


PARAMS = ("W1", "b1", "W2", "b2")


@pytest.mark.parametrize("which", ["sigmoid_net", "kitchen_sink"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plain_numpy_network_gradients_match_pytorch(which, dtype):
    torch = pytest.importorskip("torch")
    np_fn, t_fn = _torch_versions(torch)[which]
    d = {k: v.astype(dtype) for k, v in _data().items()}
    ts = {k: gw.tensor(v, requires_grad=k in PARAMS) for k, v in d.items()}
    loss = np_fn(**ts)
    assert isinstance(loss, gw.Tensor) and loss.dtype == dtype
    loss.backward()
    tt = {k: torch.tensor(v, requires_grad=k in PARAMS) for k, v in d.items()}
    tloss = t_fn(**tt)
    tloss.backward()
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=rtol)
    for k in PARAMS:
        assert ts[k].grad.dtype == dtype
        np.testing.assert_allclose(ts[k].grad.data, tt[k].grad.numpy(), rtol=rtol,
                                   atol=rtol * 0.1, err_msg=k)
    # the same code still runs on plain arrays and gives the same value
    np.testing.assert_allclose(np_fn(**d), loss.item(), rtol=rtol)


NP_CASES = {  # name: (numpy function of a Tensor/array, torch function)
    "np.mean(axis=0)": (lambda x: np.mean(x, axis=0), lambda T, x: x.mean(0)),
    "np.var(ddof=1)": (lambda x: np.var(x, ddof=1), lambda T, x: x.var(correction=1)),
    "np.std(axis=1)": (lambda x: np.std(x, axis=1), lambda T, x: x.std(1, correction=0)),
    "np.max(axis=1)": (lambda x: np.max(x, axis=1), lambda T, x: x.amax(1)),
    "np.amin": (lambda x: np.amin(x), lambda T, x: x.amin()),
    "np.prod(axis=0)": (lambda x: np.prod(x, axis=0), lambda T, x: x.prod(0)),
    "np.sum(keepdims)": (lambda x: np.sum(x, axis=1, keepdims=True), lambda T, x: x.sum(1, True)),
    "np.logaddexp": (lambda x: np.logaddexp(x, x[::-1]), lambda T, x: T.logaddexp(x, x.flip(0))),
    "np.linalg.norm": (lambda x: np.linalg.norm(x), lambda T, x: T.linalg.norm(x)),
    "np.linalg.norm(axis)": (lambda x: np.linalg.norm(x, axis=0), lambda T, x: x.norm(dim=0)),
    "np.outer": (lambda x: np.outer(x[0], x[1]), lambda T, x: T.outer(x[0], x[1])),
    "np.tensordot": (lambda x: np.tensordot(x, x, axes=([1], [1])),
                     lambda T, x: T.tensordot(x, x, dims=([1], [1]))),
    "np.moveaxis": (lambda x: np.moveaxis(x, 0, 1) * np.arange(3.0),
                    lambda T, x: T.movedim(x, 0, 1) * T.arange(3.0, dtype=x.dtype)),
    "np.swapaxes": (lambda x: np.swapaxes(x, 0, 1)[0], lambda T, x: x.swapaxes(0, 1)[0]),
    "np.expand_dims+squeeze": (lambda x: np.squeeze(np.expand_dims(x, 1) * 2.0, axis=1),
                               lambda T, x: (x.unsqueeze(1) * 2.0).squeeze(1)),
    "np.broadcast_to": (lambda x: np.broadcast_to(x[0], (2, 4)), lambda T, x: x[0].expand(2, 4)),
    "np.ravel": (lambda x: np.ravel(x)[::2], lambda T, x: x.reshape(-1)[::2]),
    "np.sin/cos/log1p/expm1/sqrt/abs/sign": (
        lambda x: np.sin(x) + np.cos(x) + np.log1p(np.abs(x)) + np.expm1(x)
        + np.sqrt(np.abs(x) + 1) + np.sign(x) * x,
        lambda T, x: T.sin(x) + T.cos(x) + T.log1p(T.abs(x)) + T.expm1(x)
        + T.sqrt(T.abs(x) + 1) + T.sign(x) * x),
    "np.subtract/divide/negative/minimum": (
        lambda x: np.minimum(np.divide(np.subtract(x, 3.0), 2.0), np.negative(x)),
        lambda T, x: T.minimum((x - 3.0) / 2.0, -x)),
    "np.sort(axis=1)": (lambda x: np.sort(x, axis=1) * np.arange(4.0),
                        lambda T, x: T.sort(x, dim=1).values * T.arange(4.0, dtype=x.dtype)),
    "np.sort(axis=None)": (lambda x: np.sort(x, axis=None)[:5],
                           lambda T, x: T.sort(x.reshape(-1)).values[:5]),
    "np.einsum(optimize=True)": (lambda x: np.einsum("ij,kj->ik", x, x, optimize=True),
                                 lambda T, x: T.einsum("ij,kj->ik", x, x)),
    "scipy.special.expit": (lambda x: expit(x), lambda T, x: T.sigmoid(x)),
    "np.float_power": (lambda x: np.float_power(np.abs(x) + 1.0, 1.5),
                       lambda T, x: (T.abs(x) + 1.0) ** 1.5),
}


@pytest.mark.parametrize("name", list(NP_CASES))
def test_numpy_function_on_tensor_differentiates_like_pytorch(name):
    torch = pytest.importorskip("torch")
    np_fn, t_fn = NP_CASES[name]
    x = np.random.default_rng(3).normal(size=(3, 4)) + np.arange(12).reshape(3, 4) * 0.01
    t = gw.tensor(x, requires_grad=True)
    out = np_fn(t)
    assert isinstance(out, gw.Tensor) and out.requires_grad
    tx = torch.tensor(x, requires_grad=True)
    tout = t_fn(torch, tx)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(4).normal(size=out.shape)
    out.backward(w)
    tout.backward(torch.from_numpy(w))
    np.testing.assert_allclose(t.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda t: np.cumsum(t), "cumsum"),
    (lambda t: np.sinh(t), "sinh"),
    (lambda t: np.diff(t), "diff"),
    (lambda t: np.linalg.inv(t), "inv"),
    (lambda t: np.unique(t), "unique"),
])
def test_unsupported_numpy_function_on_a_grad_tensor_raises_type_error_naming_it(call, name):
    t = gw.tensor(np.eye(3) + 0.1, requires_grad=True)
    with pytest.raises(TypeError, match=rf"\b{name}\b") as exc:
        call(t)
    assert "supported" in str(exc.value)
    # without a gradient to lose, the same call runs on the values
    plain = gw.tensor(np.eye(3) + 0.1)
    np.testing.assert_allclose(np.asarray(call(plain)), call(np.eye(3) + 0.1))


def test_ufunc_methods_and_out_arguments_refuse_to_drop_the_graph():
    t = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"np\.add\.reduce"):
        np.add.reduce(t)
    with pytest.raises(TypeError, match="np.exp"):
        np.exp(t, out=np.empty(3))
    np.testing.assert_allclose(np.asarray(np.add.reduce(gw.tensor([1.0, 2.0]))), 3.0)


@pytest.mark.parametrize("convert", [np.asarray, np.array, float, lambda t: t.numpy()],
                         ids=["np.asarray", "np.array", "float", ".numpy()"])
def test_conversions_on_a_grad_tensor_raise_and_point_to_detach(convert):
    t = gw.tensor(2.5, requires_grad=True)
    with pytest.raises((RuntimeError, TypeError), match=r"\.detach\(\)"):
        convert(t)
    assert float(np.asarray(convert(t.detach()))) == 2.5
    assert float(np.asarray(convert(gw.tensor(2.5)))) == 2.5
    assert t.item() == 2.5


def test_np_array_of_grad_tensors_raises_but_np_stack_keeps_the_graph():
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    b = gw.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises((RuntimeError, TypeError), match=r"detach|stack"):
        np.array([a, b])
    with pytest.raises((RuntimeError, TypeError), match="detach|stack"):
        gw.tensor([a, b])
    s = np.stack([a, b])
    assert isinstance(s, gw.Tensor) and s.shape == (2, 2)
    (s * np.array([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 2.0])
    np.testing.assert_array_equal(b.grad.data, [3.0, 4.0])
    # plain tensors convert fine
    np.testing.assert_array_equal(np.array([gw.tensor([1.0]), gw.tensor([2.0])]), [[1.0], [2.0]])


def test_iterating_a_tensor_yields_differentiable_rows():
    W = gw.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(W)
    assert len(rows) == 3 and all(r.shape == (2,) and r.requires_grad for r in rows)
    total = sum((k + 1) * r.sum() for k, r in enumerate(W))
    total.backward()
    np.testing.assert_array_equal(W.grad.data, [[1, 1], [2, 2], [3, 3]])
    with pytest.raises(TypeError):
        iter(gw.tensor(1.0)).__next__()


def test_value_only_numpy_functions_run_on_tensors_without_complaint():
    t = gw.tensor([[3.0, 1.0], [2.0, 5.0]], requires_grad=True)
    assert np.shape(t) == (2, 2)
    assert int(np.argmax(t)) == 3
    assert np.allclose(t.detach(), [[3, 1], [2, 5]])
    assert bool(np.all(np.asarray((t > 1.5).data) == [[True, False], [True, True]]))


def test_tensor_of_a_list_of_grad_tensors_points_to_stack():
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises((RuntimeError, TypeError), match=r"gradwise\.stack"):
        gw.tensor([a, a])


#: results that legitimately carry no gradient: piecewise-constant or value-independent
ZERO_DERIVATIVE = {"round", "around", "floor", "ceil", "rint", "trunc", "zeros_like",
                   "ones_like", "empty_like", "full_like"}
NUMPY_CALLS = {
    "sort": lambda t: np.sort(t), "unique": lambda t: np.unique(t), "round": np.round,
    "around": np.around, "floor": np.floor, "ceil": np.ceil, "rint": np.rint, "trunc": np.trunc,
    "copy": np.copy, "flip": np.flip, "roll": lambda t: np.roll(t, 1), "diag": np.diag,
    "trace": np.trace, "pad": lambda t: np.pad(t, 1), "tile": lambda t: np.tile(t, 2),
    "repeat": lambda t: np.repeat(t, 2), "take": lambda t: np.take(t, [0]),
    "hstack": lambda t: np.hstack([t, t]), "vstack": lambda t: np.vstack([t, t]),
    "atleast_2d": np.atleast_2d, "inner": lambda t: np.inner(t, t), "average": np.average,
    "median": np.median, "nan_to_num": np.nan_to_num, "kron": lambda t: np.kron(t, t),
    "cumsum": np.cumsum, "cumprod": np.cumprod, "fabs": np.fabs, "exp2": np.exp2,
    "log10": np.log10, "log2": np.log2, "reciprocal": np.reciprocal, "arctan": np.arctan,
    "hypot": lambda t: np.hypot(t, t), "copysign": lambda t: np.copysign(t, -1),
    "positive": np.positive, "mod": lambda t: np.mod(t, 2), "fmax": lambda t: np.fmax(t, 2),
    "ptp": np.ptp, "diff": np.diff, "split": lambda t: np.split(t, 3, axis=1)[0],
    "sum(initial=)": lambda t: np.sum(t, initial=1.0), "mean(where=)": lambda t: np.mean(
        t, where=np.ones((2, 3), bool)), "sum(dtype=)": lambda t: np.sum(t, dtype=np.float32),
    "dot(out=)": lambda t: np.dot(t, t.T, out=np.zeros((2, 2))),
    "exp(out=)": lambda t: np.exp(t, out=np.zeros((2, 3))),
    "add.reduce": lambda t: np.add.reduce(t), "multiply.outer": lambda t: np.multiply.outer(t, t),
    "float64()": np.float64, "asarray": np.asarray, "array": np.array,
    "zeros_like": np.zeros_like, "ones_like": np.ones_like, "full_like": lambda t: np.full_like(
        t, 2.0), "empty_like": np.empty_like, "argmax": np.argmax, "argsort": np.argsort,
    "isclose": lambda t: np.isclose(t, 1.0), "count_nonzero": np.count_nonzero,
}


@pytest.mark.parametrize("name", list(NUMPY_CALLS))
def test_no_numpy_function_silently_drops_the_graph(name):
    """Every NumPy call on a Tensor that requires grad either differentiates, raises,
    or returns something without a derivative (indices, booleans, piecewise constants)."""
    t = gw.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    try:
        out = NUMPY_CALLS[name](t)
    except (TypeError, RuntimeError) as e:
        assert "detach" in str(e) or "gradwise" in str(e), str(e)
        return
    if isinstance(out, gw.Tensor) and out.requires_grad:
        return
    values = out.data if isinstance(out, gw.Tensor) else np.asarray(out)
    assert values.dtype.kind in "biu" or name in ZERO_DERIVATIVE, (
        f"np.{name} returned float values without a graph: {type(out).__name__}")
