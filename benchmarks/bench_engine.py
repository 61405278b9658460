"""Engine benchmarks (issue 2), measured side by side in one run.

(a) chain of 50 x (y*1.01, y+0.1) on a 3x3 float32 array, then sum and backward:
    microseconds per op (100 ops) for gradwise, PyTorch and the same computation
    written by hand in NumPy (forward and the hand-derived backward).
(b) one XOR training step of a 2-3-1 tanh/sigmoid MLP with MSE on 4 rows
    (forward, backward, SGD update), raw tensors with a manual update in both
    frameworks, plus the hand-written NumPy step.

(b') the same step with gradwise.value_and_grad(compile=True) (trace once, replay
    generated NumPy code) and a NumPy update; for reference also against
    torch.compile.

Run:  python benchmarks/bench_engine.py [--repeat 7] [--no-torch-compile]
Each figure is the median over ``--repeat`` timing rounds (timeit, auto loop count).
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np

import gradwise as gw

try:
    import torch

except ImportError:  # pragma: no cover - torch is an optional oracle
    torch = None

N_PAIRS = 50
N_OPS = 2 * N_PAIRS


def median_times(fns, repeat):
    """Median seconds per call of each function, timing them in interleaved rounds
    (round r times every function once) so that load changes on a shared machine
    hit all of them alike."""
    timers = [timeit.Timer(fn) for fn in fns]
    counts = [t.autorange()[0] for t in timers]
    samples = [[] for _ in fns]
    for _ in range(repeat):
        for t, n, out in zip(timers, counts, samples):
            out.append(t.timeit(number=n) / n)
    return [statistics.median(s) for s in samples]


# ---------------------------------------------------------------- (a) chain
X0 = np.random.default_rng(0).random((3, 3)).astype(np.float32)


def chain(make_tensor):
    """The chain on a framework's tensor: ``make_tensor(array, requires_grad=True)``;
    the same code runs on gradwise and on PyTorch."""
    x = make_tensor(X0, requires_grad=True)
    y = x
    for _ in range(N_PAIRS):
        y = y * 1.01
        y = y + 0.1
    y.sum().backward()
    return x.grad


def chain_gradwise():
    return chain(gw.tensor)


def chain_torch():
    return chain(torch.tensor)


def chain_numpy():
    y = X0
    for _ in range(N_PAIRS):
        y = y * np.float32(1.01)
        y = y + np.float32(0.1)
    s = y.sum()  # noqa: F841
    g = np.ones_like(X0)
    for _ in range(N_PAIRS):  # backward of (y*1.01, y+0.1): g <- g*1.01
        g = g * np.float32(1.01)
    return g


# ------------------------------------------------------------- (b) XOR step
RNG = np.random.default_rng(1)
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
W1_0 = RNG.normal(0, 1, (2, 3))
B1_0 = np.zeros(3)
W2_0 = RNG.normal(0, 1, (3, 1))
B2_0 = np.zeros(1)
LR = 0.5


def make_gradwise_step():
    params = [gw.tensor(a, requires_grad=True) for a in (W1_0, B1_0, W2_0, B2_0)]
    W1, b1, W2, b2 = params
    X, Y = gw.tensor(XOR_X), gw.tensor(XOR_Y)

    def step():
        h = (X @ W1 + b1).tanh()
        out = (h @ W2 + b2).sigmoid()
        loss = ((out - Y) ** 2).mean()
        loss.backward()
        with gw.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return loss

    return step


def make_torch_step(compiled=False):
    """Raw tensors with a manual update; ``compiled``: the loss under torch.compile."""
    params = [torch.tensor(a, requires_grad=True) for a in (W1_0, B1_0, W2_0, B2_0)]
    X, Y = torch.tensor(XOR_X), torch.tensor(XOR_Y)

    def loss_fn(W1, b1, W2, b2):
        h = torch.tanh(X @ W1 + b1)
        out = torch.sigmoid(h @ W2 + b2)
        return ((out - Y) ** 2).mean()

    if compiled:
        loss_fn = torch.compile(loss_fn)

    def step():
        loss = loss_fn(*params)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return loss

    return step


def xor_loss(params, X, Y):
    """The XOR network's loss written as plain NumPy code on (W1, b1, W2, b2)."""
    W1, b1, W2, b2 = params
    h = np.tanh(X @ W1 + b1)
    out = gw.sigmoid(h @ W2 + b2)
    return np.mean((out - Y) ** 2)


def make_gradwise_compiled_step():
    """gradwise.value_and_grad(compile=True) on NumPy parameters, NumPy update (the
    JAX idiom: trace once, replay the generated forward/backward)."""
    vg = gw.value_and_grad(xor_loss, compile=True)
    params = [a.copy() for a in (W1_0, B1_0, W2_0, B2_0)]

    def step():
        loss, grads = vg(params, XOR_X, XOR_Y)
        for p, g in zip(params, grads):
            p -= LR * g
        return loss

    return step


def make_gradwise_module_step():
    """The same step written with gradwise.nn + gradwise.optim (the user-level API)."""
    from gradwise import nn, optim

    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Sigmoid())
    model.load_state_dict({"0.weight": W1_0.T, "0.bias": B1_0, "2.weight": W2_0.T,
                           "2.bias": B2_0})
    loss_fn, opt = nn.MSELoss(), optim.SGD(model.parameters(), lr=LR)
    X, Y = XOR_X, XOR_Y

    def step():
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
        return loss

    return step


def make_torch_module_step():
    """The same step written with torch.nn + torch.optim."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1),
                                torch.nn.Sigmoid()).double()
    with torch.no_grad():
        for p, a in zip(model.parameters(), (W1_0.T, B1_0, W2_0.T, B2_0)):
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))
    loss_fn, opt = torch.nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=LR)
    X, Y = torch.tensor(XOR_X), torch.tensor(XOR_Y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
        return loss

    return step


def make_numpy_step():
    W1, b1, W2, b2 = (a.copy() for a in (W1_0, B1_0, W2_0, B2_0))
    X, Y = XOR_X, XOR_Y
    n = Y.size

    def step():
        nonlocal W1, b1, W2, b2
        z1 = X @ W1 + b1
        h = np.tanh(z1)
        z2 = h @ W2 + b2
        out = 1.0 / (1.0 + np.exp(-z2))
        d = out - Y
        loss = (d * d).mean()
        dout = (2.0 / n) * d
        dz2 = dout * out * (1.0 - out)
        dW2 = h.T @ dz2
        db2 = dz2.sum(axis=0)
        dh = dz2 @ W2.T
        dz1 = dh * (1.0 - h * h)
        dW1 = X.T @ dz1
        db1 = dz1.sum(axis=0)
        W1 -= LR * dW1
        b1 -= LR * db1
        W2 -= LR * dW2
        b2 -= LR * db2
        return loss

    return step


def check_losses(n=20):
    step = make_numpy_step()
    return [step() for _ in range(n)]


def check_same_trajectory():
    """The three XOR implementations follow the same trajectory (sanity check)."""
    g, n = make_gradwise_step(), make_numpy_step()
    lg = [float(g().item()) for _ in range(20)]
    ln = [float(n()) for _ in range(20)]
    assert np.allclose(lg, ln, rtol=1e-10, atol=1e-12), (lg[-1], ln[-1])
    gm = make_gradwise_module_step()
    assert np.allclose([float(gm().item()) for _ in range(20)], ln, rtol=1e-10, atol=1e-12)
    gc = make_gradwise_compiled_step()
    assert [gc() for _ in range(20)] == lg  # the compiled replay is bit-identical to eager
    if torch is not None:
        for make in (make_torch_step, make_torch_module_step):
            t = make()
            lt = [float(t().item()) for _ in range(20)]
            assert np.allclose(lg, lt, rtol=1e-10, atol=1e-12), (lg[-1], lt[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-torch-compile", dest="torch_compile", action="store_false",
                    help="skip the torch.compile reference row (its compilation takes ~30 s)")
    args = ap.parse_args()
    check_same_trajectory()
    np.testing.assert_allclose(chain_gradwise().data, chain_numpy(), rtol=1e-5)

    rows = []
    fns = [chain_gradwise, chain_numpy] + ([chain_torch] if torch else [])
    a_gw, a_np, *a_t = (t / N_OPS * 1e6 for t in median_times(fns, args.repeat))
    rows.append(("(a) chain, µs per op", a_gw, a_t[0] if a_t else float("nan"), a_np,
                 "<= 0.5x PyTorch"))
    fns = [make_gradwise_step(), make_numpy_step()] + ([make_torch_step()] if torch else [])
    b_gw, b_np, *b_t = (t * 1e6 for t in median_times(fns, args.repeat))
    rows.append(("(b) XOR step (raw tensors, manual update), µs", b_gw,
                 b_t[0] if b_t else float("nan"), b_np, "<= 0.3x PyTorch, <= 3x NumPy"))
    fns = [make_gradwise_module_step(), make_numpy_step()] + (
        [make_torch_module_step()] if torch else [])
    c_gw, c_np, *c_t = (t * 1e6 for t in median_times(fns, args.repeat))
    rows.append(("(b) XOR step (nn + optim.SGD in both), µs", c_gw,
                 c_t[0] if c_t else float("nan"), c_np, "<= 0.3x PyTorch, <= 3x NumPy"))

    fns = [make_gradwise_compiled_step(), make_numpy_step()] + ([make_torch_step()] if torch else [])
    d_gw, d_np, *d_t = (t * 1e6 for t in median_times(fns, args.repeat))
    rows.append(("(b) XOR step, gradwise compiled (value_and_grad(compile=True), NumPy update) "
                 "vs PyTorch eager, µs", d_gw, d_t[0] if d_t else float("nan"), d_np,
                 "<= 0.3x PyTorch, <= 3x NumPy"))
    if torch is not None and args.torch_compile:
        try:
            tc = make_torch_step(compiled=True)
            lt = [float(tc().item()) for _ in range(20)]  # compiles (tens of seconds)
            assert np.allclose(lt, [float(x) for x in check_losses()], rtol=1e-10, atol=1e-12)
            fns = [make_gradwise_compiled_step(), make_numpy_step(), tc]
            e_gw, e_np, e_t = (t * 1e6 for t in median_times(fns, args.repeat))
            rows.append(("(b) XOR step, gradwise compiled vs torch.compile (Inductor), µs", e_gw,
                         e_t, e_np, "(for reference)"))
        except Exception as e:  # noqa: BLE001  (no C++ compiler, ...)
            print(f"torch.compile row skipped: {type(e).__name__}: {e}")

    print("| benchmark | gradwise | PyTorch | hand NumPy | gradwise/PyTorch | gradwise/NumPy | target |")
    print("|---|---|---|---|---|---|---|")
    for name, g, t, n, target in rows:
        print(f"| {name} | {g:.2f} | {t:.2f} | {n:.2f} | {g / t:.2f}x | {g / n:.2f}x | {target} |")
    print(f"\nnumpy {np.__version__}, torch {torch.__version__ if torch else 'n/a'} "
          f"(default threads), gradwise {gw.__version__}")


if __name__ == "__main__":
    main()
