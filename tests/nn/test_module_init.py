"""Module machinery (registration, names, state_dict, hooks, repr) and initialisers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.nn import init


def _mlp(seed=0):
    return nn.Sequential(nn.Linear(3, 4, rng=seed), nn.ReLU(), nn.Linear(4, 2, rng=seed + 1))


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = _mlp()
        self.head = nn.Linear(2, 1, bias=False, rng=5)
        self.scale = nn.Parameter(np.array(2.0))
        self.note = "not a parameter"

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_registration_and_dotted_names():
    m = TwoTower()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                     "head.weight"]
    assert [n for n, _ in m.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "head"]
    assert [type(c).__name__ for c in m.children()] == ["Sequential", "Linear"]
    assert len(list(m.modules())) == 6
    assert sum(p.size for p in m.parameters()) == 1 + 12 + 4 + 8 + 2 + 2
    assert m.head.bias is None


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2, rng=0)
    net = nn.Sequential(lin, nn.Tanh(), lin)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]


def test_assigning_a_plain_array_to_a_parameter_slot_is_an_error():
    lin = nn.Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match=r"cannot assign ndarray as parameter 'weight'.*nn.Parameter"):
        lin.weight = np.zeros((2, 2))

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match=r"call super\(\).__init__\(\) first"):
        Forgot()


def test_forward_and_backward_through_a_custom_module():
    m = TwoTower()
    x = np.random.default_rng(0).normal(size=(5, 3))
    out = m(x)
    expected = np.maximum(x @ m.body[0].weight.data.T + m.body[0].bias.data, 0)
    expected = (expected @ m.body[2].weight.data.T + m.body[2].bias.data) @ m.head.weight.data.T
    np.testing.assert_allclose(out.data, 2.0 * expected, rtol=1e-14)
    out.sum().backward()
    np.testing.assert_allclose(m.scale.grad.data, expected.sum(), rtol=1e-14)
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.data == 0) for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_train_eval_flags():
    m = TwoTower()
    assert m.training and m.body[1].training
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_state_dict_round_trip_and_copies():
    a, b = _mlp(0), _mlp(10)
    x = np.random.default_rng(1).normal(size=(3, 3))
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(type(v) is np.ndarray for v in sd.values())
    weight_before = b[0].weight
    assert b.load_state_dict(sd) == ([], [])
    assert b[0].weight is weight_before  # loaded in place: optimizers keep working
    np.testing.assert_array_equal(a(x).data, b(x).data)
    sd["0.weight"][...] = 99.0  # the state dict is a copy
    assert not np.any(a[0].weight.data == 99.0)


def test_load_state_dict_errors():
    net = _mlp()
    sd = net.state_dict()
    bad = dict(sd)
    del bad["2.bias"]
    bad["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\]; unexpected keys \['extra'\]"):
        net.load_state_dict(bad)
    res = net.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["2.bias"] and res.unexpected_keys == ["extra"]
    wrong = dict(sd, **{"0.weight": np.zeros((3, 4))})
    before = net[0].bias.data.copy()
    with pytest.raises(ValueError, match=r"size mismatch for '0.weight'.*\(3, 4\).*\(4, 3\)"):
        net.load_state_dict(wrong)
    np.testing.assert_array_equal(net[0].bias.data, before)  # nothing half-loaded


def test_forward_hooks_fire_and_remove():
    net = _mlp()
    seen = []
    h1 = net[1].register_forward_hook(
        lambda mod, inputs, out: seen.append((mod.name, inputs[0].shape, out.shape)))
    x = np.ones((5, 3))
    net(x)
    assert seen == [("relu", (5, 4), (5, 4))]
    h1.remove()
    net(x)
    assert len(seen) == 1
    with net[2].register_forward_hook(lambda mod, inputs, out: out * 0.0):
        assert np.all(net(x).data == 0.0)  # a hook's return value replaces the output
    assert np.any(net(x).data != 0.0)
    with pytest.raises(TypeError, match="hook must be callable"):
        net.register_forward_hook("not callable")


def test_repr_like_torch():
    net = nn.Sequential(nn.Linear(784, 128, rng=0), nn.ReLU(), nn.LeakyReLU(0.2),
                        nn.Linear(128, 10, bias=False, rng=0))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=128, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): LeakyReLU(negative_slope=0.2)\n"
        "  (3): Linear(in_features=128, out_features=10, bias=False)\n"
        ")"
    )
    assert repr(nn.CrossEntropyLoss(reduction="sum")) == "CrossEntropyLoss(reduction='sum')"


def test_sequential_indexing_and_to_dtype():
    net = _mlp()
    assert isinstance(net[0], nn.Linear) and isinstance(net[-1], nn.Linear)
    sub = net[:2]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is net[0]
    with pytest.raises(IndexError, match="index 5 is out of range for Sequential of length 3"):
        net[5]
    net.to(np.float32)
    out = net(np.ones((2, 3), dtype=np.float32))
    assert out.dtype == np.float32
    assert all(p.dtype == np.float32 for p in net.parameters())


# ------------------------------------------------------------------------ init
BIG = (1000, 2000)  # fan_out=1000, fan_in=2000: 2e6 draws, variance known to ~0.2%


@pytest.mark.parametrize("fn,var", [
    (lambda rng: init.xavier_uniform(BIG, rng=rng), 2 / 3000),
    (lambda rng: init.xavier_normal(BIG, rng=rng), 2 / 3000),
    (lambda rng: init.xavier_uniform(BIG, gain=5 / 3, rng=rng), (5 / 3) ** 2 * 2 / 3000),
    (lambda rng: init.kaiming_uniform(BIG, rng=rng), 2 / 2000),
    (lambda rng: init.kaiming_normal(BIG, rng=rng), 2 / 2000),
    (lambda rng: init.kaiming_normal(BIG, mode="fan_out", rng=rng), 2 / 1000),
    (lambda rng: init.kaiming_uniform(BIG, a=0.5, rng=rng), 2 / (1 + 0.25) / 2000),
    (lambda rng: init.kaiming_normal(BIG, nonlinearity="tanh", rng=rng), (5 / 3) ** 2 / 2000),
])
def test_init_variance_matches_formula(fn, var):
    w = fn(np.random.default_rng(0))
    assert w.shape == BIG and w.dtype == np.float64
    assert abs(w.mean()) < 5 * math.sqrt(var / w.size)
    assert w.var() == pytest.approx(var, rel=0.01)


def test_uniform_bounds_are_the_formula():
    w = init.xavier_uniform((300, 500), rng=1)
    a = math.sqrt(6 / 800)
    assert w.max() <= a and w.min() >= -a and w.max() > 0.99 * a
    k = init.kaiming_uniform((300, 500), nonlinearity="relu", rng=1)
    b = math.sqrt(3) * math.sqrt(2) / math.sqrt(500)
    assert k.max() <= b and k.max() > 0.99 * b


def test_init_is_seeded_and_never_touches_global_rng():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = init.xavier_normal((4, 5), rng=7)
    b = init.xavier_normal((4, 5), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert np.array_equal(np.random.get_state()[1], state)
    lin1, lin2 = nn.Linear(5, 4, rng=3), nn.Linear(5, 4, rng=3)
    np.testing.assert_array_equal(lin1.weight.data, lin2.weight.data)
    f32 = nn.Linear(5, 4, rng=3, dtype=np.float32)
    assert f32.weight.dtype == np.float32
    np.testing.assert_allclose(f32.weight.data, lin1.weight.data, rtol=1e-7)


def test_in_place_initialisers():
    p = nn.Parameter(np.zeros((20, 30), dtype=np.float32))
    assert init.kaiming_normal_(p, rng=0) is p and p.dtype == np.float32 and p.data.std() > 0
    init.constant_(p, 0.5)
    assert np.all(p.data == 0.5)
    init.zeros_(p)
    assert np.all(p.data == 0)
    init.xavier_uniform_(p, rng=0)
    np.testing.assert_array_equal(p.data, init.xavier_uniform((20, 30), rng=0, dtype=np.float32))


def test_torch_default_init_bounds_and_gain_table():
    lin = nn.Linear(400, 50, init="torch", rng=0)
    bound = 1 / math.sqrt(400)
    assert lin.weight.data.max() <= bound and lin.bias.data.max() <= bound
    assert np.any(lin.bias.data != 0)
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("sigmoid") == 1.0


@pytest.mark.parametrize("call,message", [
    (lambda: init.xavier_uniform((5,)), "at least 2 dimensions, got shape"),
    (lambda: init.kaiming_normal((3, 4), mode="fan"), "mode must be 'fan_in' or 'fan_out'"),
    (lambda: init.calculate_gain("gelu"), "unsupported nonlinearity 'gelu'"),
    (lambda: init.uniform((2, 2), 1.0, 0.0), "low <= high"),
    (lambda: init.normal((2, 2), std=-1.0), "std >= 0"),
    (lambda: init.zeros((2, -1)), "negative sizes"),
])
def test_init_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_parameter_is_a_trainable_tensor():
    p = nn.Parameter([1, 2, 3])
    assert isinstance(p, gw.Tensor) and p.requires_grad and p.dtype == np.float64
    assert repr(p).startswith("Parameter containing:")
    assert (p * 2).__class__ is gw.Tensor


def test_pickle_and_deepcopy_keep_parameters_trainable():
    import copy
    import pickle

    net = _mlp()
    x = np.ones((2, 3))
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert isinstance(clone[0].weight, nn.Parameter) and clone[0].weight.requires_grad
        assert clone[0].weight.data is not net[0].weight.data
        np.testing.assert_array_equal(clone(x).data, net(x).data)
        clone(x).sum().backward()
        assert clone[0].weight.grad is not None and net[0].weight.grad is None
