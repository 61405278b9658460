"""Learning-rate schedules against torch.optim.lr_scheduler (same lr sequences)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradwise import optim
from gradwise.nn import Parameter

torch = pytest.importorskip("torch")


def _pair(lrs=(0.1,)):
    ours = optim.SGD([{"params": [Parameter(np.zeros(1))], "lr": lr} for lr in lrs])
    ref = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    return ours, ref


def _sequence(opt, sched, epochs, metrics=None):
    out = [sched.get_last_lr()]
    for e in range(epochs):
        opt.step()  # no gradients: parameters untouched, keeps torch's order check quiet
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[e])
        out.append(sched.get_last_lr())
    return np.array(out, dtype=float)


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 1, "gamma": 0.9}),
    ("ExponentialLR", {"gamma": 0.93}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[f"{n}-{k}" for n, k in SCHEDULES])
def test_schedule_matches_torch(name, kwargs):
    ours, ref = _pair((0.1, 0.03))
    a = _sequence(ours, getattr(optim, name)(ours, **kwargs), 40)
    b = _sequence(ref, getattr(torch.optim.lr_scheduler, name)(ref, **kwargs), 40)
    np.testing.assert_allclose(a, b, rtol=1e-15, atol=0)
    assert len(set(a[:, 0])) > 3  # the schedule changed the rate


def test_closed_forms():
    opt, _ = _pair((0.2,))
    s = optim.StepLR(opt, step_size=4, gamma=0.5)
    seq = _sequence(opt, s, 12)[:, 0]
    np.testing.assert_allclose(seq, [0.2 * 0.5 ** (e // 4) for e in range(13)], rtol=1e-15)
    opt, _ = _pair((0.2,))
    seq = _sequence(opt, optim.CosineAnnealingLR(opt, T_max=8, eta_min=0.02), 8)[:, 0]
    want = [0.02 + 0.18 * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(9)]
    np.testing.assert_allclose(seq, want, rtol=1e-14)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02)


PLATEAU = [
    {"patience": 2},
    {"patience": 1, "cooldown": 2, "factor": 0.5},
    {"mode": "max", "patience": 1, "threshold_mode": "abs", "threshold": 0.05},
    {"patience": 0, "min_lr": 0.004, "factor": 0.5},
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_on_plateau_matches_torch(kwargs):
    rng = np.random.default_rng(0)
    metrics = list(np.r_[np.linspace(1.0, 0.5, 6), 0.5 + 0.02 * rng.random(25)])
    ours, ref = _pair((0.1,))
    a = _sequence(ours, optim.ReduceLROnPlateau(ours, **kwargs), len(metrics), metrics)
    b = _sequence(ref, torch.optim.lr_scheduler.ReduceLROnPlateau(ref, **kwargs),
                  len(metrics), metrics)
    np.testing.assert_array_equal(a, b)
    assert a[-1, 0] < 0.1  # it did reduce


def test_scheduler_state_dict_round_trip():
    opt, _ = _pair((0.1,))
    s = optim.ExponentialLR(opt, gamma=0.5)
    s.step()
    s.step()
    state = s.state_dict()
    assert state["last_epoch"] == 2 and "optimizer" not in state
    s2 = optim.ExponentialLR(opt, gamma=0.9)
    s2.load_state_dict(state)
    assert s2.gamma == 0.5 and s2.last_epoch == 2


@pytest.mark.parametrize("make,message", [
    (lambda o: optim.StepLR(o, step_size=0), "step_size must be a positive integer, got 0"),
    (lambda o: optim.ExponentialLR(o, gamma=-1.0), "gamma must be a positive finite number"),
    (lambda o: optim.CosineAnnealingLR(o, T_max=2.5), "T_max must be a positive integer"),
    (lambda o: optim.ReduceLROnPlateau(o, factor=1.5), r"factor must be in \(0, 1\)"),
    (lambda o: optim.ReduceLROnPlateau(o, mode="down"), "mode must be 'min' or 'max'"),
    (lambda o: optim.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), "expected 1 min_lrs"),
    (lambda o: optim.StepLR("sgd", step_size=2), "str is not a gradwise Optimizer"),
])
def test_scheduler_validation(make, message):
    opt, _ = _pair((0.1,))
    with pytest.raises((ValueError, TypeError), match=message):
        make(opt)


def test_resume_requires_initial_lr():
    opt, _ = _pair((0.1,))
    with pytest.raises(KeyError, match="initial_lr"):
        optim.StepLR(opt, step_size=2, last_epoch=5)
