"""The training loop: scenario reproductions (S1, S5, S6, S4), histories, callbacks,
non-finite stops, scheduling, dtypes, and PyTorch as an oracle for the loop."""

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn, optim
from gradwise.data import Batches, load_dataset
from gradwise.training import TrainResult, loss_converged, loss_stalled, train


# --------------------------------------------------------------------- scenarios
def s1_network(lr):
    """S1: 3 inputs (x1, x2, bias), 3 sigmoid hidden units, 1 sigmoid output, no
    biases; legacy global seed 0, W = rand(3, 3), w = rand(1, 3). Their convention
    is W x, which is Linear's (out, in) weight layout."""
    np.random.seed(0)
    W = np.random.rand(3, 3)
    w = np.random.rand(1, 3)
    net = nn.Sequential(
        nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 1, bias=False), nn.Sigmoid()
    )
    net[0].weight.data[...] = W
    net[2].weight.data[...] = w
    return net, optim.SGD(net.parameters(), lr=lr)


def s1_outputs(net, X):
    with gw.no_grad():
        return net(X).data.ravel()


def test_s1_xor_lr_1_reaches_scenario_loss():
    d = load_dataset("xor")
    net, opt = s1_network(1.0)
    sse = nn.MSELoss(reduction="sum")  # sum of squared errors over the 4 samples
    r = train(net, sse, opt, (d.X, d.y[:, None].astype(float)), 10_000, progress=False)
    out = s1_outputs(net, d.X)
    final = float(np.sum((out - d.y) ** 2))
    assert final == pytest.approx(2.4e-4, rel=0.05)
    np.testing.assert_allclose(out, [0.008, 0.008, 0.996, 0.990], atol=6e-4)
    assert np.all((out > 0.5) == (d.y == 1))
    assert r.n_epochs == r.n_steps == 10_000 and r.stopped_reason == "max_epochs"
    assert r.loss_curve[-1] == pytest.approx(final, rel=1e-3)  # one step before the end


def test_s1_xor_lr_001_does_not_learn_in_10000_epochs():
    d = load_dataset("xor")
    net, opt = s1_network(0.01)
    r = train(
        net,
        nn.MSELoss(reduction="sum"),
        opt,
        (d.X, d.y[:, None].astype(float)),
        10_000,
        progress=False,
    )
    out = s1_outputs(net, d.X)
    assert float(np.sum((out - d.y) ** 2)) == pytest.approx(0.997, abs=5e-4)
    assert np.all(np.abs(out - 0.5) < 0.011)
    assert r.loss_curve[0] > r.loss_curve[-1]


def test_s5_cubic_cost_every_10_steps_at_lr_001():
    """S5's raw run: start (a, b, c, d) = (0.02, 0.001, 0.002, -0.04), lr 0.01; the
    cost multiplies (24.33, 355.9, 3.73e4, 3.94e6 every 10 steps)."""
    d = load_dataset("cubic")
    x = d.X[:, 0]
    X = np.column_stack([x**3, x**2, x])
    lin = nn.Linear(3, 1)
    lin.weight.data[...] = [[0.02, 0.001, 0.002]]
    lin.bias.data[...] = [-0.04]
    r = train(
        lin,
        nn.MSELoss(),
        optim.SGD(lin.parameters(), lr=0.01),
        (X, d.y[:, None]),
        100,
        progress=False,
    )
    np.testing.assert_allclose(
        r.loss_curve[[0, 10, 20, 30]], [24.33, 355.9, 3.73e4, 3.94e6], rtol=2e-3
    )
    growth = r.loss_curve[-1] / r.loss_curve[-2]
    assert growth == pytest.approx(1.59, abs=0.01)  # (1 − 0.01·226.24)² on the loss


def s6_run(epochs):
    d = load_dataset("houses")
    A = np.column_stack([np.ones(5), d.X])
    s = A.sum(axis=0)  # every column (the bias column too) divided by its column sum
    lin = nn.Linear(3, 1, bias=False)
    lin.weight.data[...] = [[0.0, 0.5, 0.5]]
    mse_sum = nn.MSELoss(reduction="sum")
    half_sse = lambda out, y: 0.5 * mse_sum(out, y)  # θ ← θ − 0.1 (x·θ − y) x
    r = train(
        lin,
        half_sse,
        optim.SGD(lin.parameters(), lr=0.1),
        (A / s, d.y[:, None]),
        epochs,
        batch_size=1,
        shuffle=False,
        progress=False,
    )
    cost = float(np.sum(((A / s) @ lin.weight.data[0] - d.y) ** 2))
    return r, cost


def test_s6_per_sample_sgd_10000_epochs():
    r, cost = s6_run(10_000)
    assert cost == pytest.approx(1530.79, abs=0.005)
    assert r.n_steps == 50_000


def test_s4_breast_cancer_30_16_1_bce_with_logits():
    from sklearn.model_selection import train_test_split

    d = load_dataset("breast_cancer")
    Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, test_size=0.25, random_state=0, stratify=d.y)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Linear(30, 16, rng=rng), nn.Sigmoid(), nn.Linear(16, 1, rng=rng))
    train(
        net,
        nn.BCEWithLogitsLoss(),
        optim.SGD(net.parameters(), lr=0.1),
        (Xtr, ytr[:, None] * 1.0),
        100,
        batch_size=32,
        seed=0,
        progress=False,
    )
    with gw.no_grad():
        acc = np.mean((net(Xte).data[:, 0] > 0) == (yte == 1))
    assert acc >= 0.95


# --------------------------------------------------------------------- histories
def linreg(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=n)
    return X, y[:, None]


def test_histories_match_closed_forms_for_full_batch_gd():
    X, y = linreg()
    lin = nn.Linear(3, 1, init="zeros")
    lr = 0.05
    r = train(lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=lr), (X, y), 5, progress=False)
    # first step from zero: loss = mean(y²), gradient = −(2/n)[Xᵀy; Σy]
    n = len(y)
    g0 = -(2 / n) * np.concatenate([X.T @ y[:, 0], [y.sum()]])
    assert r.step_loss[0] == pytest.approx(np.mean(y**2), rel=1e-12)
    assert r.grad_norm[0] == pytest.approx(np.linalg.norm(g0), rel=1e-12)
    assert r.block_grad_norms["weight"][0] == pytest.approx(np.linalg.norm(g0[:3]), rel=1e-12)
    assert r.block_grad_norms["bias"][0] == pytest.approx(abs(g0[3]), rel=1e-12)
    np.testing.assert_allclose(r.update_norm, lr * r.grad_norm, rtol=1e-12)  # plain SGD
    np.testing.assert_array_equal(r.loss_curve, r.step_loss)  # full batch: one step per epoch
    assert r.epoch_time.shape == (5,) and r.total_time >= r.epoch_time.sum()
    np.testing.assert_array_equal(r.params["weight"], lin.weight.data)
    assert r.params["weight"] is not lin.weight.data
    assert isinstance(r, TrainResult) and r.ok and r.findings == []
    d = r.to_dict()
    assert d["n_steps"] == 5 and len(d["block_grad_norms"]["bias"]) == 5


def test_minibatch_epoch_loss_is_size_weighted_mean_of_batch_losses():
    X, y = linreg(n=10)
    lin = nn.Linear(3, 1, init="zeros")
    r = train(
        lin,
        nn.MSELoss(),
        optim.SGD(lin.parameters(), lr=0.01),
        (X, y),
        3,
        batch_size=4,
        seed=1,
        progress=False,
    )
    assert r.n_steps == 9 and len(r.step_loss) == 9
    sizes = np.array([4, 4, 2])
    for e in range(3):
        expected = np.dot(r.step_loss[3 * e : 3 * e + 3], sizes) / 10
        assert r.loss_curve[e] == pytest.approx(expected, rel=1e-12)


def test_same_seed_same_run_and_dataset_and_batches_inputs():
    X, y = linreg()

    def run(data, **kw):
        lin = nn.Linear(3, 1, init="zeros")
        return train(
            lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=0.01), data, 4, progress=False, **kw
        )

    a = run((X, y), batch_size=5, seed=3)
    b = run(Batches(X, y, 5, seed=3))
    np.testing.assert_array_equal(a.step_loss, b.step_loss)
    c = run((X, y), batch_size=5, seed=4)
    assert not np.array_equal(a.step_loss, c.step_loss)
    ds = load_dataset("houses")
    lin = nn.Linear(2, 1, init="zeros")
    r = train(
        lin,
        lambda o, t: nn.MSELoss()(o[:, 0], t),
        optim.SGD(lin.parameters(), lr=1e-9),
        ds,
        2,
        progress=False,
    )
    assert r.n_steps == 2


def test_bad_arguments():
    X, y = linreg()
    lin = nn.Linear(3, 1)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train(lin, nn.MSELoss(), opt, (X, y), 0)
    with pytest.raises(ValueError, match="batch_size applies when data is"):
        train(lin, nn.MSELoss(), opt, Batches(X, y), 1, batch_size=2)
    with pytest.raises(ValueError, match="pair"):
        train(lin, nn.MSELoss(), opt, (X, y, y), 1)
    with pytest.raises(TypeError, match="data must be"):
        train(lin, nn.MSELoss(), opt, 3.0, 1)
    lin.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(lin, nn.MSELoss(), opt, (X, y), 1)


# --------------------------------------------------------------------- non-finite
def test_nonfinite_loss_stops_and_restores_last_finite_parameters():
    X, y = linreg()
    X = X * 1e3  # lr far above 2/λmax: the loss explodes to inf
    lin = nn.Linear(3, 1, init="zeros")
    with np.errstate(over="ignore", invalid="ignore"):
        r = train(
            lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=1.0), (X, y), 500, progress=False
        )
    k = r.nonfinite_step
    assert r.stopped_reason == "nonfinite_loss" and k is not None and k < 500
    assert not np.isfinite(r.step_loss[k]) and np.all(np.isfinite(r.step_loss[:k]))
    assert r.n_steps == k and len(r.step_loss) == k + 1
    # the kept parameters are those at which the last finite loss was computed
    with gw.no_grad():
        again = float(np.mean((lin(X).data - y) ** 2))
    assert again == pytest.approx(r.step_loss[k - 1], rel=1e-12)
    assert np.all(np.isfinite(lin.weight.data))
    (f,) = r.findings
    assert f.code == "numeric.nonfinite" and f.severity == "fault" and not r.ok
    assert f.evidence["step"] == k and f.evidence["what"] == "loss"


class _Sqrt(nn.Module):
    """y = sqrt(w)·x with w = 0: finite loss, infinite gradient for w."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.zeros(1))
        self.v = nn.Parameter(np.ones(1))

    def forward(self, x):
        return gw.sqrt(self.w) * x + self.v * x


def test_nonfinite_gradient_names_the_block_and_takes_no_step():
    m = _Sqrt()
    x = np.ones((4, 1))
    with np.errstate(divide="ignore"):
        r = train(m, nn.MSELoss(), optim.SGD(m.parameters(), lr=0.1), (x, x * 2), 3, progress=False)
    assert r.stopped_reason == "nonfinite_gradient" and r.nonfinite_step == 0
    assert r.n_steps == 0 and np.isfinite(r.step_loss[0])
    np.testing.assert_array_equal(m.v.data, [1.0])  # no update happened
    assert r.findings[0].location == "w"
    assert math.isinf(r.block_grad_norms["w"][0])


class _Huge(nn.Module):
    """Loss 1e20·Σw: finite in float32, gradient 1e20 per entry (its float32 square
    overflows)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.zeros(4, dtype=np.float32))

    def forward(self, x):
        return (self.w * np.float32(1e20)).sum()


@pytest.mark.filterwarnings("ignore:overflow encountered in dot:RuntimeWarning")
def test_large_finite_float32_gradient_is_not_mistaken_for_nonfinite():
    m = _Huge()
    r = train(
        m,
        lambda out, y: out,
        optim.SGD(m.parameters(), lr=1e-30),
        (np.ones((1, 1)), None),
        2,
        progress=False,
    )
    assert r.stopped_reason == "max_epochs" and r.nonfinite_step is None
    np.testing.assert_allclose(r.grad_norm, 2e20, rtol=1e-6)  # sqrt(4)·1e20


# --------------------------------------------------------------------- callbacks
class Recorder:
    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_train_begin(self, s):
        self.events.append(("begin", s.step))

    def on_step_end(self, s):
        self.events.append(("step", s.epoch, s.step))
        delta = {k: s.params[k] - s.params_before[k] for k in s.params}
        u = math.sqrt(sum(float(np.sum(v**2)) for v in delta.values()))
        assert u == pytest.approx(s.update_norm, rel=1e-12)
        for k, g in s.grads.items():  # plain SGD: Δθ = −lr·g
            np.testing.assert_allclose(delta[k], -s.lr * g, rtol=1e-12, atol=1e-15)
        assert s.grad_norm == pytest.approx(math.hypot(*s.block_grad_norms.values()))
        xb, yb = s.batch
        assert len(xb) == len(yb) == s.output.shape[0] and math.isfinite(s.loss)
        if s.step == self.stop_at:
            s.stop = True

    def on_epoch_end(self, s):
        self.events.append(("epoch", s.epoch, s.epoch_loss))

    def on_train_end(self, s):
        self.events.append(("end", s.step))


def test_callbacks_see_consistent_state_in_order():
    X, y = linreg(n=6)
    lin = nn.Linear(3, 1, init="zeros")
    rec, only_end = Recorder(), type("E", (), {"on_train_end": lambda self, s: None})()
    r = train(
        lin,
        nn.MSELoss(),
        optim.SGD(lin.parameters(), lr=0.05),
        (X, y),
        2,
        batch_size=3,
        seed=0,
        callbacks=[rec, only_end],
        progress=False,
    )
    kinds = [e[0] for e in rec.events]
    assert kinds == ["begin", "step", "step", "epoch", "step", "step", "epoch", "end"]
    assert [e[2] for e in rec.events if e[0] == "step"] == [1, 2, 3, 4]
    assert [e[2] for e in rec.events if e[0] == "epoch"] == list(r.loss_curve)


def test_callback_can_stop_training():
    X, y = linreg()
    lin = nn.Linear(3, 1, init="zeros")
    r = train(
        lin,
        nn.MSELoss(),
        optim.SGD(lin.parameters(), lr=0.05),
        (X, y),
        50,
        callbacks=[Recorder(stop_at=7)],
        progress=False,
    )
    assert r.stopped_reason == "callback" and r.n_steps == 7 and r.n_epochs == 7


# --------------------------------------------------------------------- convergence
def test_loss_converged_criterion():
    assert loss_converged([5.0] * 11)
    assert not loss_converged([5.0] * 10)  # too short to tell
    assert not loss_converged(np.linspace(10, 1, 50))  # still improving by > 1e-4
    assert loss_converged(np.r_[np.linspace(10, 1, 50), np.full(10, 1.0 - 5e-5)])
    assert not loss_converged([np.nan] * 20)
    # below loss 1 the test is absolute: 1e-6 → 5e-7 is no real progress
    assert loss_converged(np.r_[1e-6, np.full(10, 5e-7)])
    # a run that blew up and is coming down again has stalled (early stop) but not converged
    blew_up = np.r_[108.0, np.geomspace(4.4e9, 4.9e6, 10)]
    assert loss_stalled(blew_up) and not loss_converged(blew_up)
    assert loss_stalled([5.0] * 11) and not loss_stalled(np.linspace(10, 1, 50))


def test_stop_when_converged():
    X, y = linreg()
    lin = nn.Linear(3, 1, init="zeros")
    r = train(
        lin,
        nn.MSELoss(),
        optim.SGD(lin.parameters(), lr=0.2),
        (X, y),
        10_000,
        stop_when_converged=True,
        progress=False,
    )
    assert r.stopped_reason == "converged" and r.converged and r.n_epochs < 200


def test_scheduler_is_stepped_per_epoch():
    X, y = linreg()
    lin = nn.Linear(3, 1, init="zeros")
    opt = optim.SGD(lin.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    r = train(lin, nn.MSELoss(), opt, (X, y), 4, scheduler=sched, progress=False)
    np.testing.assert_allclose(r.lr, [0.1, 0.05, 0.025, 0.0125])


def test_plateau_scheduler_gets_the_epoch_loss():
    X, y = linreg()
    lin = nn.Linear(3, 1, init="zeros")
    opt = optim.SGD(lin.parameters(), lr=0.1)
    seen = []

    class Plateau(optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    r = train(lin, nn.MSELoss(), opt, (X, y), 3, scheduler=Plateau(opt), progress=False)
    np.testing.assert_array_equal(seen, r.loss_curve)


# --------------------------------------------------------------------- dtype, progress
def test_float32_end_to_end():
    X, y = linreg()
    X, y = X.astype(np.float32), y.astype(np.float32)
    lin = nn.Linear(3, 1, dtype=np.float32, rng=0)
    seen = []
    cb = type("C", (), {"on_step_end": lambda self, s: seen.append(s.output.dtype)})()
    r = train(
        lin,
        nn.MSELoss(),
        optim.SGD(lin.parameters(), lr=0.05),
        (X, y),
        3,
        callbacks=[cb],
        progress=False,
    )
    assert r.params["weight"].dtype == np.float32 and set(seen) == {np.dtype(np.float32)}


def test_progress_bar_silent_when_not_a_terminal(capsys):
    X, y = linreg()
    lin = nn.Linear(3, 1)
    train(lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=0.05), (X, y), 3, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_bar_only_on_a_terminal_and_when_enabled(monkeypatch):
    import sys

    from gradwise.training import _progress

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    for setting in (True, None):
        bar = _progress(setting, 3)
        assert bar is not None
        bar[0].stop()
    assert _progress(False, 3) is None
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert _progress(True, 3) is None and _progress(None, 3) is None


def test_str_summary():
    X, y = linreg()
    lin = nn.Linear(3, 1)
    r = train(lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=0.05), (X, y), 3, progress=False)
    s = str(r)
    assert s.startswith("Training: ok") and "epochs: 3" in s and "max_epochs" in s


# --------------------------------------------------------------------- PyTorch oracle
def test_loop_matches_pytorch_minibatch_momentum():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 4))
    y = rng.integers(0, 3, 24)
    net = nn.Sequential(nn.Linear(4, 5, rng=1), nn.Tanh(), nn.Linear(5, 3, rng=2))
    tnet = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).double()
    with torch.no_grad():
        for (_, p), tp in zip(net.named_parameters(), tnet.parameters()):
            tp.copy_(torch.from_numpy(p.data))
    r = train(
        net,
        nn.CrossEntropyLoss(),
        optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
        (X, y),
        5,
        batch_size=8,
        shuffle=False,
        progress=False,
    )
    topt = torch.optim.SGD(tnet.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(5):
        for i in range(0, 24, 8):
            topt.zero_grad()
            L = torch.nn.functional.cross_entropy(
                tnet(torch.from_numpy(X[i : i + 8])), torch.from_numpy(y[i : i + 8])
            )
            L.backward()
            topt.step()
            losses.append(L.item())
    np.testing.assert_allclose(r.step_loss, losses, rtol=0, atol=1e-12)
    for (_, p), tp in zip(net.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
        lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
        lambda ps: optim.Adagrad(ps, lr=0.1),
        lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),  # measured by copy
    ],
)
def test_update_norms_equal_the_parameter_change(make_opt):
    # the optimizers report their updates (no copy); the norms must equal ‖p_after - p_before‖
    X, y = linreg()
    lin = nn.Linear(3, 1, rng=0)
    seen = []

    class Probe:
        def on_step_end(self, state):
            seen.append({n: (state.params[n] - state.params_before[n]) for n in state.names})

    r = train(lin, nn.MSELoss(), make_opt(lin.parameters()), (X, y), 3, batch_size=10,
              callbacks=[Probe()], progress=False)
    for k, diff in enumerate(seen):
        for name, d in diff.items():
            assert r.block_update_norms[name][k] == pytest.approx(np.linalg.norm(d), rel=1e-9)
        total = np.sqrt(sum(np.sum(d**2) for d in diff.values()))
        assert r.update_norm[k] == pytest.approx(total, rel=1e-9)
