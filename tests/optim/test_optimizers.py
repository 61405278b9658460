"""Optimizers against torch.optim: same float64 trajectory over 100 steps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradwise as gw
from gradwise import optim
from gradwise.nn import Parameter

torch = pytest.importorskip("torch")

STEPS = 100
TOL = 1e-10


def _targets():
    rng = np.random.default_rng(42)
    return rng.normal(size=(3, 4)), rng.normal(size=4)


_NOISE = np.random.default_rng(3).normal(scale=0.3, size=(200, 16))


def _grads(w: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Step-k stochastic gradients of a smooth non-quadratic objective: the exact
    gradient (bounded growth under ascent) plus noise from a fixed sequence, as in
    mini-batch SGD, so Adam/RMSprop second moments stay away from zero."""
    tw, tb = _targets()
    gw_ = np.tanh(2.0 * (w - tw)) + 0.1 * (w - tw) + _NOISE[k, :12].reshape(3, 4)
    gb = np.tanh(2.0 * (b - tb)) + 0.1 * (b - tb) + _NOISE[k, 12:]
    return gw_, gb


def _start():
    rng = np.random.default_rng(7)
    return rng.normal(size=(3, 4)), rng.normal(size=4)


def _run_gradwise(cls, kwargs, steps=STEPS, groups=None):
    w0, b0 = _start()
    W, b = Parameter(w0.copy()), Parameter(b0.copy())
    frozen = Parameter(np.ones(2))  # never gets a gradient: must be left alone
    params = groups([W, b, frozen]) if groups else [W, b, frozen]
    opt = cls(params, **kwargs)
    traj = []
    for k in range(steps):
        g1, g2 = _grads(W.data, b.data, k)
        W.grad, b.grad = gw.Tensor(g1), gw.Tensor(g2)
        opt.step()
        traj.append(np.concatenate([W.data.ravel(), b.data]))
    assert np.array_equal(frozen.data, np.ones(2)) and frozen not in opt.state
    return np.array(traj), opt


def _run_torch(cls, kwargs, steps=STEPS, groups=None):
    w0, b0 = _start()
    W = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    frozen = torch.ones(2, dtype=torch.float64, requires_grad=True)
    params = groups([W, b, frozen]) if groups else [W, b, frozen]
    opt = cls(params, **kwargs)
    traj = []
    for k in range(steps):
        g1, g2 = _grads(W.detach().numpy(), b.detach().numpy(), k)
        W.grad, b.grad = torch.from_numpy(g1), torch.from_numpy(g2)
        opt.step()
        traj.append(np.concatenate([W.detach().numpy().ravel(), b.detach().numpy()]))
    return np.array(traj)


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


def _sgd_cases():
    out = []
    for kw in _grid(momentum=[0.0, 0.9], dampening=[0.0, 0.5], nesterov=[False, True],
                    weight_decay=[0.0, 0.01], maximize=[False, True]):
        if kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0):
            continue
        out.append(("SGD", {"lr": 0.1, **kw}))
    return out


CASES = (
    _sgd_cases()
    + [("Adam", {"lr": 0.05, **kw}) for kw in _grid(
        betas=[(0.9, 0.999), (0.5, 0.9)], weight_decay=[0.0, 0.1], amsgrad=[False, True],
        maximize=[False, True])]
    + [("AdamW", {"lr": 0.05, **kw}) for kw in _grid(
        betas=[(0.9, 0.999), (0.3, 0.8)], weight_decay=[0.0, 0.1], amsgrad=[False, True],
        maximize=[False, True])]
    + [("RMSprop", {"lr": 0.01, **kw}) for kw in _grid(
        alpha=[0.99, 0.6], momentum=[0.0, 0.9], centered=[False, True],
        weight_decay=[0.0, 0.1], maximize=[False, True])]
    + [("Adagrad", {"lr": 0.1, **kw}) for kw in _grid(
        lr_decay=[0.0, 0.01], initial_accumulator_value=[0.0, 0.1], weight_decay=[0.0, 0.1],
        maximize=[False, True])]
)


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_trajectory_matches_torch(name, kwargs):
    ours, _ = _run_gradwise(getattr(optim, name), kwargs)
    ref = _run_torch(getattr(torch.optim, name), kwargs)
    assert np.max(np.abs(ours - ref)) <= TOL
    # the run actually moved the parameters (not a vacuous comparison)
    assert np.max(np.abs(ours[-1] - ours[0])) > 1e-3


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_param_groups_match_torch(name):
    kw = {"lr": 0.01, "momentum": 0.5} if name != "Adam" else {"lr": 0.01}

    def groups(ps):
        return [{"params": [ps[0]], "lr": 0.05}, {"params": ps[1:], "weight_decay": 0.2}]

    ours, opt = _run_gradwise(getattr(optim, name), kw, steps=30, groups=groups)
    ref = _run_torch(getattr(torch.optim, name), kw, steps=30, groups=groups)
    assert np.max(np.abs(ours - ref)) <= TOL
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.01]


def test_sgd_through_autodiff_matches_torch_module_training():
    """A small network trained end to end (our autodiff + SGD with momentum) follows
    torch's trajectory."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    net = gw.nn.Sequential(gw.nn.Linear(3, 5, rng=1), gw.nn.Tanh(), gw.nn.Linear(5, 1, rng=2))
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    with torch.no_grad():
        for (_, p), tp in zip(net.named_parameters(), tnet.parameters()):
            tp.copy_(torch.from_numpy(p.data))
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    loss_fn, tloss_fn = gw.nn.MSELoss(), torch.nn.MSELoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(50):
        opt.zero_grad()
        loss = loss_fn(net(X), y)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = tloss_fn(tnet(Xt), yt)
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) <= 1e-12
    for p, tp in zip(net.parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("Adam", {"lr": 0.05, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
])
def test_state_dict_resume_is_exact(name, kwargs):
    """Stopping after 40 steps, saving, loading into a fresh optimizer and continuing
    gives bit-for-bit the uninterrupted trajectory."""
    full, _ = _run_gradwise(getattr(optim, name), kwargs, steps=60)
    first, opt = _run_gradwise(getattr(optim, name), kwargs, steps=40)
    sd = opt.state_dict()
    W, b = opt.param_groups[0]["params"][:2]
    # mutate the saved dict's source: the state dict must hold copies
    for s in opt.state.values():
        for v in s.values():
            if isinstance(v, np.ndarray):
                v += 1.0
    opt2 = getattr(optim, name)([W, b, Parameter(np.ones(2))], **kwargs)
    opt2.load_state_dict(sd)
    for k in range(20):
        g1, g2 = _grads(W.data, b.data, 40 + k)
        W.grad, b.grad = gw.Tensor(g1), gw.Tensor(g2)
        opt2.step()
        assert np.array_equal(np.concatenate([W.data.ravel(), b.data]), full[40 + k])


def test_load_state_dict_rejects_mismatch():
    p = Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = gw.Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter group 0 has 1 parameters, the optimizer's has 2"):
        optim.SGD([Parameter(np.zeros(3)), Parameter(np.zeros(2))], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"shape \(3,\), the parameter has shape \(4,\)"):
        optim.SGD([Parameter(np.zeros(4))], lr=0.1, momentum=0.9).load_state_dict(sd)


@pytest.mark.parametrize("cls,kwargs,message", [
    (optim.SGD, {"lr": -0.1}, "Invalid learning rate: -0.1"),
    (optim.SGD, {"lr": 0.1, "momentum": -1}, "Invalid momentum value: -1"),
    (optim.SGD, {"lr": 0.1, "weight_decay": -0.5}, "Invalid weight_decay value: -0.5"),
    (optim.SGD, {"lr": 0.1, "nesterov": True},
     "Nesterov momentum requires a momentum and zero dampening"),
    (optim.SGD, {"lr": float("nan")}, "Invalid learning rate: nan"),
    (optim.Adam, {"lr": -1.0}, "Invalid learning rate: -1.0"),
    (optim.Adam, {"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
    (optim.Adam, {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
    (optim.Adam, {"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    (optim.AdamW, {"weight_decay": -0.01}, "Invalid weight_decay value: -0.01"),
    (optim.RMSprop, {"alpha": -0.5}, "Invalid alpha value: -0.5"),
    (optim.RMSprop, {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    (optim.Adagrad, {"lr_decay": -1}, "Invalid lr_decay value: -1"),
    (optim.Adagrad, {"initial_accumulator_value": -1},
     "Invalid initial_accumulator_value value: -1"),
])
def test_hyperparameter_validation(cls, kwargs, message):
    with pytest.raises(ValueError) as e:
        cls([Parameter(np.zeros(2))], **kwargs)
    assert str(e.value) == message


def test_param_group_hyperparameters_are_validated_too():
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD([{"params": [Parameter(np.zeros(2))], "lr": -1}], lr=0.1)


def test_bad_params_are_rejected_with_a_fix():
    net = gw.nn.Linear(2, 1, rng=0)
    with pytest.raises(TypeError, match="pass model.parameters()"):
        optim.SGD(net, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(Parameter(np.zeros(2)), lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] is ndarray"):
        optim.SGD([Parameter(np.zeros(2)), np.zeros(2)], lr=0.1)
    x = gw.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2], lr=0.1)
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_zero_grad_and_closure():
    p = Parameter(np.array([3.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with gw.no_grad():  # the closure must still record the graph
        loss = opt.step(closure)
    assert loss.item() == 9.0 and p.data[0] == 3.0 - 0.25 * 6.0
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and p.grad.data[0] == 0.0
    opt.zero_grad()
    assert p.grad is None
    p.grad = gw.Tensor(np.ones(1))
    p.grad.data = np.broadcast_to(np.ones(1), (1,))  # a read-only view
    assert not p.grad.data.flags.writeable
    opt.zero_grad(set_to_none=False)
    assert p.grad.data[0] == 0.0


def test_float32_parameters_stay_float32():
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad):
        p = Parameter(np.ones(3, dtype=np.float32))
        opt = cls([p], lr=0.1, **({"momentum": 0.9} if cls is optim.SGD else {}))
        for _ in range(3):
            p.grad = gw.Tensor(np.full(3, 0.5, dtype=np.float32))
            opt.step()
        assert p.data.dtype == np.float32
        for buf in opt.state[p].values():
            if isinstance(buf, np.ndarray):
                assert buf.dtype == np.float32
