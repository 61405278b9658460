"""Overhead of ``gradwise.Monitor`` on one MLP training epoch (issue 5: <= 5%).

Task: the MLP benchmark of issue 3 (784-128(ReLU)-10, softmax cross-entropy,
random float32 inputs with random labels, mini-batches of 128 in order, plain SGD
lr 0.01), one epoch through ``gradwise.train`` with and without a ``Monitor``
callback (which records per step the loss, every block's gradient norm and
update-to-parameter ratio, and the ReLU layer's dead fraction through a forward
hook). Both start from the same weights.

Timing: ``--repeats`` rounds, each runs one epoch of both variants (interleaved,
so load changes on a shared machine hit both alike). Reported: median and minimum
epoch time of each, and the overhead computed on the medians and on the minima
(the minimum is the least disturbed run on a shared machine), and the time spent
inside the Monitor's own code as a share of the monitored epoch (robust to load).

Run:  python benchmarks/bench_monitor.py [--repeats 7] [--n 60000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import gradwise as gw
from gradwise import nn, optim
from gradwise.diagnostics.monitor import Monitor

IN, HIDDEN, OUT = 784, 128, 10
BATCH, LR = 128, 0.01


class TimedMonitor(Monitor):
    """A Monitor that also adds up the wall-clock time spent in its own code (step
    callback and activation hook): a measure of its cost that machine load cannot
    hide the way it hides a small difference of two epoch times."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0

    def on_step_end(self, state):
        t = time.perf_counter()
        super().on_step_end(state)
        self.seconds += time.perf_counter() - t

    def record_activation(self, layer, kind, a):
        t = time.perf_counter()
        super().record_activation(layer, kind, a)
        self.seconds += time.perf_counter() - t


def make_model(seed: int = 0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(IN, HIDDEN, init="he_uniform", rng=rng, dtype=np.float32),
        nn.ReLU(),
        nn.Linear(HIDDEN, OUT, rng=rng, dtype=np.float32),
    )


def epoch(X, y, monitored: bool) -> tuple[float, Monitor | None]:
    model = make_model()
    mon = TimedMonitor() if monitored else None
    t = time.perf_counter()
    gw.train(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=LR), (X, y),
             epochs=1, batch_size=BATCH, shuffle=False, callbacks=[mon] if mon else (),
             progress=False)
    return time.perf_counter() - t, mon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--n", type=int, default=60000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, IN), dtype=np.float32)
    y = rng.integers(0, OUT, args.n)
    epoch(X[:1024], y[:1024], True)  # warm-up
    plain, monitored, inside = [], [], []
    mon = None
    for _ in range(args.repeats):
        plain.append(epoch(X, y, False)[0])
        t, mon = epoch(X, y, True)
        monitored.append(t)
        inside.append(mon.seconds / t)
    med_p, med_m = statistics.median(plain), statistics.median(monitored)
    min_p, min_m = min(plain), min(monitored)
    print(f"MLP {IN}-{HIDDEN}-{OUT}, {args.n} samples, batch {BATCH}, {args.repeats} rounds")
    print(f"{'':22}{'median s':>10}{'min s':>10}")
    print(f"{'gradwise.train':22}{med_p:10.3f}{min_p:10.3f}")
    print(f"{'  + Monitor':22}{med_m:10.3f}{min_m:10.3f}")
    print(f"overhead: {100 * (med_m / med_p - 1):+.1f}% (medians), "
          f"{100 * (min_m / min_p - 1):+.1f}% (minima)")
    print(f"time inside the Monitor: {100 * statistics.median(inside):.2f}% of the monitored "
          f"epoch (median), {100 * min(inside):.2f}% (min)")
    print(f"monitor recorded {len(mon.steps)} steps, blocks {list(mon.grad_norm)}, "
          f"layers {mon.last_activations()}")


if __name__ == "__main__":
    main()
