"""S5 — fitting a cubic by gradient descent: the cost explodes at lr 0.01.

The run diverges because 0.01 is above the stability limit 2/λmax = 8.84e-3 of
the MSE's Hessian on the raw powers of x. Two fixes: a step under the limit
(slow: the condition number is 263), or standardised powers (fast).

Run: python examples/s5_cubic.py
"""

import warnings

import numpy as np

import gradwise as gw
from gradwise import nn, optim
from gradwise.data import load_dataset
from gradwise.models import PolynomialRegression

d = load_dataset("cubic")
x = d.X[:, 0]
P = np.column_stack([x**3, x**2, x])
A = np.column_stack([P, np.ones_like(x)])
lam = np.linalg.eigvalsh(2 / len(x) * A.T @ A)
ols, *_ = np.linalg.lstsq(A, d.y, rcond=None)
print(f"Hessian eigenvalues {np.round(lam, 3)}; stable for lr < {2 / lam[-1]:.3g}")
print(f"OLS (a, b, c, d) = {np.round(ols, 6)}, MSE {np.mean((A @ ols - d.y) ** 2):.6f}")


def run(lr, steps):
    lin = nn.Linear(3, 1)
    lin.weight.data[...] = [[0.02, 0.001, 0.002]]  # the scenario's start (a, b, c), d = −0.04
    lin.bias.data[...] = [-0.04]
    r = gw.train(lin, nn.MSELoss(), optim.SGD(lin.parameters(), lr=lr), (P, d.y[:, None]), steps)
    return r, np.r_[lin.weight.data[0], lin.bias.data]


r, _ = run(0.01, 100)
print(
    f"\nlr 0.01: cost every 10 steps {np.array2string(r.loss_curve[::10], precision=4)}; "
    f"growth per step {r.loss_curve[-1] / r.loss_curve[-2]:.3f} "
    f"(predicted (1 − 0.01·{lam[-1]:.2f})² = {(1 - 0.01 * lam[-1]) ** 2:.3f})"
)
r, theta = run(8e-3, 20_000)
print(
    f"lr 8e-3 (under the limit), 20 000 steps: MSE {r.loss_curve[-1]:.6f}, "
    f"(a, b, c, d) = {np.round(theta, 4)}"
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m = PolynomialRegression(3, lr=0.1, epochs=3000, standardize=True).fit(d.X, d.y)
abcd = np.r_[m.coef_[::-1], m.intercept_]
print(
    f"standardised powers, lr 0.1, 3000 epochs: (a, b, c, d) = {np.round(abcd, 6)}; "
    f"relative error to OLS {np.linalg.norm(abcd - ols) / np.linalg.norm(ols):.1e}"
)
