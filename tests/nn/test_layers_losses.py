"""Layers and losses against PyTorch (values and gradients), stability, validation."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.nn import functional as F

torch = pytest.importorskip("torch")


def _copy_to_torch(net, tnet):
    with torch.no_grad():
        for p, tp in zip(net.parameters(), tnet.parameters()):
            assert p.shape == tuple(tp.shape)
            tp.copy_(torch.from_numpy(p.data))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_sequential_forward_backward_matches_torch(dtype, tol):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 4)).astype(dtype)
    net = nn.Sequential(
        nn.Linear(4, 6, rng=1, dtype=dtype), nn.Tanh(),
        nn.Linear(6, 5, rng=2, dtype=dtype), nn.LeakyReLU(0.1),
        nn.Linear(5, 5, rng=3, dtype=dtype), nn.Softplus(beta=2.0),
        nn.Linear(5, 3, init="torch", rng=4, dtype=dtype), nn.Sigmoid(),
        nn.Linear(3, 2, bias=False, rng=5, dtype=dtype), nn.ReLU(), nn.Identity(),
    )
    tnet = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 5), torch.nn.LeakyReLU(0.1),
        torch.nn.Linear(5, 5), torch.nn.Softplus(beta=2.0), torch.nn.Linear(5, 3),
        torch.nn.Sigmoid(), torch.nn.Linear(3, 2, bias=False), torch.nn.ReLU(),
        torch.nn.Identity(),
    ).to(torch.float64 if dtype == np.float64 else torch.float32)
    _copy_to_torch(net, tnet)
    out = net(X)
    tout = tnet(torch.from_numpy(X))
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=tol, atol=tol)
    upstream = rng.normal(size=out.shape).astype(dtype)
    out.backward(upstream)
    tout.backward(torch.from_numpy(upstream))
    for (name, p), tp in zip(net.named_parameters(), tnet.parameters()):
        assert p.grad.dtype == dtype, name
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=tol, atol=tol, err_msg=name)


def test_linear_is_x_times_w_transpose_plus_b():
    lin = nn.Linear(3, 2, rng=0)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(lin(x).data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-15)
    x_t = gw.tensor(x, requires_grad=True)
    lin(x_t).sum().backward()
    np.testing.assert_allclose(x_t.grad.data, np.tile(lin.weight.data.sum(0), (2, 1)))
    np.testing.assert_allclose(lin.bias.grad.data, [2.0, 2.0])
    np.testing.assert_allclose(lin.weight.grad.data, np.tile(x.sum(0), (2, 1)))


# ----------------------------------------------------------------------- losses
def _loss_case(name, reduction, rng):
    n = 6
    if name == "mse":
        x, t = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        return (nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), x, t, t)
    if name == "bce":
        x, t = rng.uniform(0.05, 0.95, size=(n, 1)), rng.integers(0, 2, (n, 1)).astype(float)
        return (nn.BCELoss(reduction), torch.nn.BCELoss(reduction=reduction), x, t, t)
    if name == "bce_logits":
        x, t = 3 * rng.normal(size=(n, 2)), rng.uniform(size=(n, 2))
        return (nn.BCEWithLogitsLoss(reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction),
                x, t, t)
    if name == "ce_index":
        x, t = 2 * rng.normal(size=(n, 4)), rng.integers(0, 4, n)
        return (nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                x, t, t)
    if name == "ce_onehot":
        x, k = 2 * rng.normal(size=(n, 4)), rng.integers(0, 4, n)
        t = np.eye(4)[k]
        return (nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                x, t, t)
    if name == "ce_probs":
        x = 2 * rng.normal(size=(n, 4))
        t = rng.dirichlet(np.ones(4), size=n)
        return (nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                x, t, t)
    raise AssertionError(name)


LOSSES = ["mse", "bce", "bce_logits", "ce_index", "ce_onehot", "ce_probs"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_value_and_gradient_match_torch(name, reduction):
    ours, ref, x, t, tt = _loss_case(name, reduction, np.random.default_rng(hash(name) % 1000))
    xg = gw.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out = ours(xg, t)
    tout = ref(xt, torch.from_numpy(np.asarray(tt)))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    up = np.random.default_rng(1).normal(size=out.shape)
    out.backward(up if out.shape else None)
    tout.backward(torch.from_numpy(up) if out.shape else None)
    np.testing.assert_allclose(xg.grad.data, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_losses_keep_float32():
    x = gw.tensor(np.ones((3, 2), dtype=np.float32), requires_grad=True)
    for loss, t in [(F.mse_loss, np.zeros((3, 2))), (F.binary_cross_entropy_with_logits, np.ones((3, 2))),
                    (F.cross_entropy, np.array([0, 1, 1]))]:
        out = loss(x, t)
        assert out.dtype == np.float32
        out.backward()
        assert x.grad.dtype == np.float32
        x.grad = None


def test_logit_losses_are_stable_at_1e4():
    z = gw.tensor(np.array([[1e4], [-1e4], [1e4], [-1e4]]), requires_grad=True)
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    np.testing.assert_array_equal(loss.data, [[0.0], [0.0], [1e4], [1e4]])
    loss.sum().backward()
    np.testing.assert_array_equal(z.grad.data, [[0.0], [0.0], [1.0], [-1.0]])

    logits = gw.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]), requires_grad=True)
    ce = F.cross_entropy(logits, np.array([1, 0]), reduction="none")
    np.testing.assert_allclose(ce.data, [2e4, 2e4 + np.log(2)], rtol=1e-15)
    ce.sum().backward()
    np.testing.assert_allclose(logits.grad.data, [[1.0, -1.0, 0.0], [-1.0, 0.5, 0.5]], atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_clamps_log_at_minus_100(dtype):
    p = gw.tensor(np.array([0.0, 1.0, 0.0, 1.0], dtype=dtype), requires_grad=True)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_array_equal(loss.data, [100.0, 100.0, 0.0, 0.0])
    ref = torch.nn.functional.binary_cross_entropy(
        torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64), torch.from_numpy(y),
        reduction="none")
    np.testing.assert_allclose(loss.data, ref.numpy(), rtol=1e-12)
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.data))


@pytest.mark.parametrize("call,exc,message", [
    (lambda: F.mse_loss(gw.tensor(np.zeros((4, 1))), np.zeros(4)), ValueError,
     r"input shape \(4, 1\) and target shape \(4,\) differ .*target.reshape\(4, 1\)"),
    (lambda: F.binary_cross_entropy(gw.tensor(np.array([0.5, 2.0])), np.ones(2)), ValueError,
     r"probabilities in \[0, 1\], got values in \[0.5, 2\]; for logits use"),
    (lambda: F.cross_entropy(gw.tensor(np.zeros((3, 2))), np.array([0, 1, 2])), ValueError,
     r"class indices must lie in \[0, 1\] for 2 logits per sample"),
    (lambda: F.cross_entropy(gw.tensor(np.zeros((3, 2))), np.array([0.0, 1.0, 1.0])), TypeError,
     r"class-index targets must be integers.*astype\(int\)"),
    (lambda: F.cross_entropy(gw.tensor(np.zeros(3)), np.array([0])), ValueError,
     r"logits must have shape \(n_samples, n_classes\)"),
    (lambda: F.cross_entropy(gw.tensor(np.zeros((3, 2))), np.zeros((3, 3))), ValueError,
     r"probability target must have the logits' shape \(3, 2\)"),
    (lambda: nn.MSELoss(reduction="avg"), ValueError,
     r"reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
])
def test_loss_errors(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


# ----------------------------------------------------------------------- validation
@pytest.mark.parametrize("call,exc,message", [
    (lambda: nn.Linear(0, 3), ValueError, "in_features must be a positive integer, got 0"),
    (lambda: nn.Linear(2, 2.5), ValueError, "out_features must be a positive integer, got 2.5"),
    (lambda: nn.Linear(2, 3, init="glorot"), ValueError, "unknown init 'glorot'; choose one of"),
    (lambda: nn.Linear(2, 3, dtype=np.int64), TypeError, "dtype must be a floating type"),
    (lambda: nn.Linear(2, 3, rng=np.random.RandomState(0)), TypeError,
     "rng must be a numpy.random.Generator"),
    (lambda: nn.Linear(2, 3, rng=0)(np.zeros((4, 3))), ValueError,
     r"Linear\(in_features=2\) got input of shape \(4, 3\)"),
    (lambda: nn.LeakyReLU("0.1"), ValueError, "negative_slope must be a finite number"),
    (lambda: nn.Softplus(beta=0), ValueError, "beta must be a positive finite number"),
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.ReLU), TypeError,
     r"element 1 is type, not a gradwise.nn.Module \(instantiate it"),
])
def test_constructor_validation(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_activation_names():
    names = {cls().name for cls in (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.Softplus,
                                    nn.Identity)}
    assert names == {"sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"}
