"""S6 — per-sample SGD on five houses, the correct loop: every row each epoch.

Least-mean-squares with a bias column; every column (the bias column too)
divided by its column sum; θ ← θ − 0.1 (xᵢ·θ − yᵢ) xᵢ from θ₀ = [0, 0.5, 0.5],
rows in order. The cost (SSE over all rows) approaches the least-squares
minimum 1444.1444; a constant step leaves a small limit cycle above it.

Run: python examples/s6_sgd_houses.py            (100 000 epochs, 500 000 steps)
     python examples/s6_sgd_houses.py 10000      (a shorter run)
"""

import sys

import numpy as np

import gradwise as gw
from gradwise import nn, optim
from gradwise.data import load_dataset

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
d = load_dataset("houses")
A = np.column_stack([np.ones(5), d.X])
A = A / A.sum(axis=0)
theta_ls, *_ = np.linalg.lstsq(A, d.y, rcond=None)
print(f"least-squares minimum of the cost: {np.sum((A @ theta_ls - d.y) ** 2):.7f}")

lin = nn.Linear(3, 1, bias=False)
lin.weight.data[...] = [[0.0, 0.5, 0.5]]
mse_sum = nn.MSELoss(reduction="sum")
half_sse = lambda out, t: 0.5 * mse_sum(out, t)  # gradient (x·θ − y) x per sample


class Checkpoints:
    """Print the full-data cost after 1 000, 10 000 and 100 000 epochs."""

    def on_epoch_end(self, s):
        if s.epoch + 1 in (1_000, 10_000, 100_000):
            cost = float(np.sum((A @ s.params["weight"][0] - d.y) ** 2))
            print(f"  after {s.epoch + 1:>7,} epochs: cost {cost:.2f}")


r = gw.train(
    lin,
    half_sse,
    optim.SGD(lin.parameters(), lr=0.1),
    (A, d.y[:, None]),
    epochs,
    batch_size=1,
    shuffle=False,
    callbacks=[Checkpoints()],
)
cost = float(np.sum((A @ lin.weight.data[0] - d.y) ** 2))
print(f"final cost after {epochs:,} epochs ({r.n_steps:,} steps, {r.total_time:.1f} s): {cost:.2f}")
