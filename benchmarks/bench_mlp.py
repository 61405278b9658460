"""One training epoch of an MLP, gradwise vs PyTorch vs scikit-learn vs hand NumPy.

Task (issue 3): MLP 784-128(ReLU)-10, softmax cross-entropy, 60 000 x 784 random
float32 inputs with random labels 0..9, mini-batches of 128 in order (no
shuffling, so every contender does exactly the same work), plain SGD with
lr 0.01. All contenders start from the same weights; after the timed epochs
their parameters are compared to prove they computed the same thing.

Contenders
----------
- ``numpy``: the network written by hand (forward, hand-derived backward, update).
- ``gradwise``: an explicit loop over ``gradwise.nn`` + ``gradwise.optim``
  (``zero_grad``, forward, ``CrossEntropyLoss``, ``backward``, ``SGD.step``).
- ``gradwise.compile``: the same loop with ``loss_fn(model(xb), yb)`` compiled
  (:func:`gradwise.compile`: traced once per batch shape, replayed as generated
  NumPy code; the same numbers).
- ``gradwise.train``: the same through ``gradwise.train`` (the library's loop,
  which also records per-step loss, gradient norms and update norms), eager and
  with ``compile=True``.
- ``torch``: ``torch.nn`` + ``torch.optim.SGD`` on CPU, float32.
- ``sklearn``: ``MLPClassifier(solver="sgd", momentum=0, alpha=0,
  shuffle=False).partial_fit`` (one call = one epoch).

Timing: ``--repeats`` rounds; each round runs one epoch of every contender
(interleaved, so load changes on a shared machine hit all alike); the table
shows the median and the minimum (the load of a shared machine inflates the
median; the minimum is the least disturbed run). Peak memory: for each
contender a fresh process imports its library and builds the data, resets the
kernel's peak-RSS counter (``/proc/self/clear_refs``), then sets up the model and
runs one epoch: "peak RSS +MB" is the peak resident memory above the level
before the setup (model, optimizer state, per-batch temporaries, allocator
caches). "tracemalloc peak" is measured in the main process over one more epoch
and sees NumPy allocations only (not PyTorch's allocator).

Run:  python benchmarks/bench_mlp.py [--repeats 7] [--n 60000] [--threads N] [--no-memory] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc

import numpy as np

import gradwise as gw
from gradwise import nn, optim

IN, HIDDEN, OUT = 784, 128, 10
BATCH, LR = 128, 0.01
F32 = np.float32


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, IN), dtype=F32)
    y = rng.integers(0, OUT, n)
    return X, y


def initial_weights(seed: int = 1):
    rng = np.random.default_rng(seed)
    return {
        "W1": nn.init.kaiming_uniform((HIDDEN, IN), nonlinearity="relu", rng=rng, dtype=F32),
        "b1": np.zeros(HIDDEN, dtype=F32),
        "W2": nn.init.xavier_uniform((OUT, HIDDEN), rng=rng, dtype=F32),
        "b2": np.zeros(OUT, dtype=F32),
    }


# ------------------------------------------------------------------ contenders
def setup_numpy(X, y, w0):
    W1, b1, W2, b2 = (w0[k].copy() for k in ("W1", "b1", "W2", "b2"))
    n = len(X)

    def epoch():
        nonlocal W1, b1, W2, b2  # updated in place below
        for i in range(0, n, BATCH):
            xb, yb = X[i:i + BATCH], y[i:i + BATCH]
            m = len(xb)
            h = xb @ W1.T
            h += b1
            a = np.maximum(h, 0)
            z = a @ W2.T
            z += b2
            z -= z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            rows = np.arange(m)
            loss = -logp[rows, yb].mean()  # noqa: F841  (computed, as every framework does)
            dz = np.exp(logp)
            dz[rows, yb] -= 1
            dz /= m
            dW2 = dz.T @ a
            db2 = dz.sum(axis=0)
            da = dz @ W2
            da *= h > 0
            dW1 = da.T @ xb
            db1 = da.sum(axis=0)
            W1 -= LR * dW1
            b1 -= LR * db1
            W2 -= LR * dW2
            b2 -= LR * db2

    return epoch, lambda: {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def _gradwise_model(w0):
    model = nn.Sequential(nn.Linear(IN, HIDDEN, dtype=F32, rng=0), nn.ReLU(),
                          nn.Linear(HIDDEN, OUT, dtype=F32, rng=0))
    model.load_state_dict({"0.weight": w0["W1"], "0.bias": w0["b1"],
                           "2.weight": w0["W2"], "2.bias": w0["b2"]})
    return model


def _gradwise_params(model):
    sd = model.state_dict()
    return {"W1": sd["0.weight"], "b1": sd["0.bias"], "W2": sd["2.weight"], "b2": sd["2.bias"]}


def setup_gradwise(X, y, w0):
    model = _gradwise_model(w0)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=LR)
    n = len(X)

    def epoch():
        for i in range(0, n, BATCH):
            opt.zero_grad()
            loss = loss_fn(model(X[i:i + BATCH]), y[i:i + BATCH])
            loss.backward()
            opt.step()
        assert loss.dtype == F32, loss.dtype  # float32 end to end, no silent upcast
        assert all(p.dtype == F32 and p.grad.dtype == F32 for p in model.parameters())

    return epoch, lambda: _gradwise_params(model)


def setup_gradwise_compiled(X, y, w0):
    """The explicit loop with the forward+loss+backward through ``gradwise.compile``."""
    model = _gradwise_model(w0)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=LR)
    step = gw.compile(lambda xb, yb: loss_fn(model(xb), yb))
    n = len(X)

    def epoch():
        for i in range(0, n, BATCH):
            opt.zero_grad()
            loss = step(X[i:i + BATCH], y[i:i + BATCH])
            loss.backward()
            opt.step()
        assert loss.dtype == F32, loss.dtype
        assert all(t is not None for t in step.traces.values())  # really compiled

    return epoch, lambda: _gradwise_params(model)


def setup_gradwise_train(X, y, w0, compile=False):  # noqa: A002
    model = _gradwise_model(w0)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=LR)

    def epoch():
        gw.train(model, loss_fn, opt, (X, y), epochs=1, batch_size=BATCH, shuffle=False,
                 progress=False, compile=compile)

    return epoch, lambda: _gradwise_params(model)


def setup_torch(X, y, w0):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, OUT))
    with torch.no_grad():
        for p, k in zip(model.parameters(), ("W1", "b1", "W2", "b2")):
            p.copy_(torch.from_numpy(w0[k]))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n = len(X)

    def epoch():
        for i in range(0, n, BATCH):
            opt.zero_grad()
            loss = loss_fn(model(Xt[i:i + BATCH]), yt[i:i + BATCH])
            loss.backward()
            opt.step()

    def params():
        ps = [p.detach().numpy().copy() for p in model.parameters()]
        return dict(zip(("W1", "b1", "W2", "b2"), ps))

    return epoch, params


def setup_sklearn(X, y, w0):
    import warnings

    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd",
                        learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False,
                        alpha=0.0, batch_size=BATCH, shuffle=False, random_state=0)
    classes = np.arange(OUT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X[:BATCH], y[:BATCH], classes=classes)  # allocate the layers
    dt = clf.coefs_[0].dtype
    clf.coefs_ = [w0["W1"].T.astype(dt), w0["W2"].T.astype(dt)]  # sklearn: x @ W
    clf.intercepts_ = [w0["b1"].astype(dt), w0["b2"].astype(dt)]

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X, y)

    def params():
        return {"W1": clf.coefs_[0].T, "b1": clf.intercepts_[0],
                "W2": clf.coefs_[1].T, "b2": clf.intercepts_[1]}

    return epoch, params


CONTENDERS = {
    "numpy (hand-written)": setup_numpy,
    "gradwise (nn + optim loop)": setup_gradwise,
    "gradwise.compile (nn + optim loop)": setup_gradwise_compiled,
    "gradwise.train": setup_gradwise_train,
    "gradwise.train(compile=True)": functools.partial(setup_gradwise_train, compile=True),
    "torch": setup_torch,
    "sklearn MLPClassifier.partial_fit": setup_sklearn,
}


# ------------------------------------------------------------------ measuring
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tracemalloc_peak(epoch) -> float:
    """Peak of NumPy/Python allocations during one epoch, MB (PyTorch's own
    allocator is invisible to tracemalloc)."""
    tracemalloc.start()
    epoch()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


# modules a contender imports on first use: imported before the baseline is taken
_LIBS = {"torch": "torch", "sklearn": "sklearn.neural_network", "gradwise.train": "gradwise.training",
         "gradwise.compile": "gradwise.autodiff.compile"}


def _peak_rss_child(name: str, n: int) -> float | None:
    """In a fresh process: import the contender's library, build the data, reset the
    kernel's peak-RSS counter, then set up the contender and run one epoch. Returns
    the peak resident memory above the level before the setup, MB."""
    import importlib

    for key, mod in _LIBS.items():
        if name.startswith(key):
            importlib.import_module(mod)
    X, y = make_data(n)
    w0 = initial_weights()
    before = _status_kb("VmRSS")
    if before is None or not _reset_peak_rss():
        return None
    epoch, _ = CONTENDERS[name](X, y, w0)
    epoch()
    return max(_status_kb("VmHWM") - before, 0) / 1024


def peak_rss(names, n: int) -> dict[str, float | None]:
    """:func:`_peak_rss_child` for every contender, each in its own process."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = {}
    for name in names:
        with ctx.Pool(1) as pool:
            out[name] = pool.apply(_peak_rss_child, (name, n))
    return out


def _ratio(name, ref, med, times) -> str:
    if ref not in med:
        return "-"
    return f"{med[name] / med[ref]:.2f}; {min(times[name]) / min(times[ref]):.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed epochs per contender")
    ap.add_argument("--n", type=int, default=60_000, help="number of samples")
    ap.add_argument("--only", nargs="*", help="substrings of contender names to run")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip the peak-RSS measurement (one fresh process per contender)")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit BLAS/OpenMP threads of NumPy, scikit-learn and PyTorch "
                         "(threadpoolctl + torch.set_num_threads); default: library defaults")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile one gradwise epoch and print the top functions")
    args = ap.parse_args(argv)

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    X, y = make_data(args.n)
    w0 = initial_weights()
    names = [k for k in CONTENDERS if not args.only or any(s in k for s in args.only)]
    runs = {}
    for name in names:
        try:
            runs[name] = CONTENDERS[name](X, y, w0)
        except ImportError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
    # one epoch each from the common start, then compare: same computation?
    for epoch, _ in runs.values():
        epoch()
    ref = runs[names[0]][1]()
    agree = {}
    for name, (_, params) in runs.items():
        p = params()
        agree[name] = max(float(np.max(np.abs(p[k] - ref[k]))) for k in ref)
    times = {name: [] for name in runs}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, (epoch, _) in runs.items():
            t0 = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - t0)
    load = os.getloadavg()[0]
    traced = {name: tracemalloc_peak(epoch) for name, (epoch, _) in runs.items()}
    rss = peak_rss(list(runs), args.n) if args.memory else dict.fromkeys(runs)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"# MLP {IN}-{HIDDEN}(ReLU)-{OUT}, softmax cross-entropy, {args.n} x {IN} float32, "
          f"batch {BATCH}, SGD lr {LR}: one epoch\n")
    thr = "" if args.threads is None else f" --threads {args.threads}"
    print(f"command: python benchmarks/bench_mlp.py --repeats {args.repeats} --n {args.n}{thr}")
    threads = ""
    try:
        import torch

        threads = f", torch threads {torch.get_num_threads()}"
    except ImportError:
        pass
    load = f", load average {load0:.1f} -> {load:.1f} during the timing"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{load}, "
          f"numpy {np.__version__}{threads}; {args.repeats} epochs each (interleaved)\n")
    print("| contender | s/epoch (median) | min | x torch (median; min) | x numpy (median; min) | peak RSS +MB | "
          "tracemalloc peak MB | max |Δparam| vs numpy after 1 epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for name in runs:
        cells = [name, f"{med[name]:.3f}", f"{min(times[name]):.3f}",
                 _ratio(name, "torch", med, times), _ratio(name, "numpy (hand-written)", med, times),
                 "-" if rss[name] is None else f"{rss[name]:.1f}", f"{traced[name]:.1f}", f"{agree[name]:.1e}"]
        print("| " + " | ".join(cells) + " |")
    if args.profile:
        epoch = setup_gradwise(X, y, w0)[0]
        epoch()
        pr = cProfile.Profile()
        pr.enable()
        epoch()
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18)
        print("\ncProfile of one gradwise epoch (sorted by own time):\n```")
        print(s.getvalue().strip())
        print("```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
