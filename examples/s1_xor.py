"""S1 — the 3-hidden-unit sigmoid network that would not learn XOR, trained by gradwise.

Network: inputs (x1, x2, 1) → 3 sigmoid units (W, 3×3) → 1 sigmoid unit (w, 1×3),
no other biases; loss = sum of squared errors over the 4 samples; full batch.
Initialisation as in the scenario: np.random.seed(0); W = rand(3, 3); w = rand(1, 3).
The user's convention is W·x, which is Linear's (out, in) weight layout.

Run: python examples/s1_xor.py
"""

import warnings

import numpy as np

import gradwise as gw
from gradwise import nn, optim
from gradwise.data import load_dataset
from gradwise.models import MLPClassifier

d = load_dataset("xor")  # rows 00, 11, 10, 01 with a constant-1 bias column
X, y = d.X, d.y.astype(float)[:, None]


def s1_network():
    np.random.seed(0)
    W, w = np.random.rand(3, 3), np.random.rand(1, 3)
    net = nn.Sequential(
        nn.Linear(3, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 1, bias=False), nn.Sigmoid()
    )
    net[0].weight.data[...] = W
    net[2].weight.data[...] = w
    return net


sse = nn.MSELoss(reduction="sum")
for lr, epochs in [(0.01, 10_000), (1.0, 10_000), (2.0, 20_000)]:
    net = s1_network()
    r = gw.train(net, sse, optim.SGD(net.parameters(), lr=lr), (X, y), epochs)
    with gw.no_grad():
        out = net(X).data.ravel()
    loss = float(np.sum((out - d.y) ** 2))
    print(
        f"lr {lr:<4} {epochs:>6} epochs: loss {loss:.3g}  outputs {np.round(out, 3)}  "
        f"({r.total_time:.2f} s)"
    )

print("\nThe estimator API learns XOR from other seeds (2 features, log-loss, plain GD, lr 1):")
xp = load_dataset("xor_plain")
for seed in range(1, 6):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MLPClassifier(
            (3,), "sigmoid", lr=1.0, epochs=5000, n_iter_no_change=None,
            random_state=seed, diagnose=False,
        ).fit(xp.X, xp.y)
    print(
        f"  random_state={seed}: predictions {m.predict(xp.X)}  (targets {xp.y}), "
        f"final loss {m.loss_curve_[-1]:.2g} after {m.n_iter_} epochs"
    )
