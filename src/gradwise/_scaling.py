"""Feature standardisation and its inverse for linear coefficients — one place.

Used by the estimators (``standardize=True``), the reference optima, the
conditioning rule and the verified ``standardize`` fix, so that they all scale
the same way (scikit-learn's ``StandardScaler`` conventions).
"""

from __future__ import annotations

import numpy as np

__all__ = ["standardize", "unscale_linear"]


def standardize(X: np.ndarray, center: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero mean, unit variance per column.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features) or (n_samples,)
        Floating data (a 1-D array is one feature).
    center : bool, default True
        Subtract the column means (False: only divide by the standard deviations).

    Returns
    -------
    Z : ndarray, shape (n_samples, n_features)
        ``(X - mean) / scale``.
    mean, scale : ndarray, shape (n_features,)
        Column means (zeros when ``center`` is False) and population standard
        deviations (``ddof=0``). A constant column keeps scale 1, as in
        ``sklearn.preprocessing.StandardScaler``: a standard deviation below
        ``10·eps·max(1, |mean|)`` is rounding noise of a constant column.
    """
    X = np.asarray(X)
    X = X[:, None] if X.ndim == 1 else X
    mean = X.mean(axis=0) if center else np.zeros(X.shape[1], dtype=X.dtype)
    scale = X.std(axis=0)
    eps = np.finfo(X.dtype).eps if X.dtype.kind == "f" else np.finfo(float).eps
    scale = np.where(scale < 10 * eps * np.maximum(1.0, np.abs(X.mean(axis=0))), 1.0, scale)
    return (X - mean) / scale, mean, scale


def unscale_linear(coef: np.ndarray, intercept, mean: np.ndarray, scale: np.ndarray):
    """Coefficients of a linear model fitted on standardised features, in the
    units of the raw features: with ``z = (x − μ)/σ``,
    ``w·z + b = (w/σ)·x + (b − (w/σ)·μ)``.

    Parameters
    ----------
    coef : ndarray, shape (n_features,) or (n_outputs, n_features)
    intercept : float or ndarray, shape (n_outputs,)
    mean, scale : ndarray, shape (n_features,)
        From :func:`standardize`.

    Returns
    -------
    coef_raw, intercept_raw : same shapes as the inputs
    """
    w = np.asarray(coef) / scale
    return w, intercept - w @ mean
