"""S4 — the layered network from scratch, done right: breast-cancer data,
standardised, a 30-16-1 network with sigmoid hidden units and binary
cross-entropy on the logit (numerically stable; no clipping needed).

Run: python examples/s4_breast_cancer.py
"""

import warnings

import numpy as np
from sklearn.model_selection import train_test_split

import gradwise as gw
from gradwise import nn, optim
from gradwise.data import load_dataset
from gradwise.models import MLPClassifier

d = load_dataset("breast_cancer")
Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, test_size=0.25, random_state=0, stratify=d.y)
mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
Ztr, Zte = (Xtr - mu) / sd, (Xte - mu) / sd

rng = np.random.default_rng(0)
net = nn.Sequential(nn.Linear(30, 16, rng=rng), nn.Sigmoid(), nn.Linear(16, 1, rng=rng))
print(net)
r = gw.train(
    net,
    nn.BCEWithLogitsLoss(),
    optim.SGD(net.parameters(), lr=0.1),
    (Ztr, ytr[:, None].astype(float)),
    100,
    batch_size=32,
    seed=0,
)
with gw.no_grad():
    acc = np.mean((net(Zte).data[:, 0] > 0) == (yte == 1))
print(
    f"gradwise.train, SGD lr 0.1, batch 32, 100 epochs: loss {r.loss_curve[0]:.3f} → "
    f"{r.loss_curve[-1]:.4f}; test accuracy {acc:.3f}"
)
print("gradient norm per layer, first → last step:")
for name, g in r.block_grad_norms.items():
    print(f"  {name:>9}: {g[0]:.3g} → {g[-1]:.3g}")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m = MLPClassifier((16,), "sigmoid", standardize=True, random_state=0).fit(Xtr, ytr)
print(
    f"\nMLPClassifier((16,), 'sigmoid', standardize=True): test accuracy "
    f"{m.score(Xte, yte):.3f} after {m.n_iter_} epochs"
)
