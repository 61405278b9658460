"""S2 — linear regression by gradient descent "disagrees with scikit-learn".

Diabetes data unscaled, x = BMI, y = disease progression. The user's run
(m = c = 0, lr 1e-4, 1000 epochs, MSE) is correct but not converged: the
feature is badly conditioned. Standardising the feature fixes it.

Run: python examples/s2_linear_regression.py
"""

import warnings

import numpy as np

from gradwise.data import load_dataset
from gradwise.models import LinearRegression

d = load_dataset("diabetes_bmi")
x, y = d.X, d.y
A = np.column_stack([x[:, 0], np.ones(len(y))])
(m_ols, c_ols), *_ = np.linalg.lstsq(A, y, rcond=None)
H = 2 / len(y) * A.T @ A  # Hessian of the mean squared error
lam = np.linalg.eigvalsh(H)
print(
    f"OLS optimum: slope {m_ols:.6f}, intercept {c_ols:.6f}, "
    f"MSE {np.mean((A @ [m_ols, c_ols] - y) ** 2):.4f}"
)
print(
    f"Hessian eigenvalues {lam[0]:.4f}, {lam[1]:.1f}; condition number {lam[1] / lam[0]:,.0f}; "
    f"stable for lr < 2/λmax = {2 / lam[1]:.4g}"
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    raw = LinearRegression(lr=1e-4, epochs=1000).fit(x, y)
print(
    f"\nThe user's run (lr 1e-4, 1000 epochs): slope {raw.coef_[0]:.5f}, intercept "
    f"{raw.intercept_:.5f}, MSE {np.mean((raw.predict(x) - y) ** 2):.2f}"
)
if hasattr(raw, "diagnosis_"):
    print(raw.diagnosis_)

std = LinearRegression(lr=0.1, epochs=300, standardize=True).fit(x, y)
err = np.hypot(std.coef_[0] - m_ols, std.intercept_ - c_ols) / np.hypot(m_ols, c_ols)
print(
    f"\nStandardised feature (lr 0.1, 300 epochs): slope {std.coef_[0]:.6f}, intercept "
    f"{std.intercept_:.6f} (original units); relative error to OLS {err:.1e}"
)
