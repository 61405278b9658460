"""Adversarial inputs to gradwise.diagnose / sharpness / stable_lr / Monitor:
each test is a bug that was found by trying to break them (or a guard against one)."""

import math
import warnings

import numpy as np
import pytest

from gradwise import models


def _line_data(n=30):
    x1 = np.arange(n, dtype=float)
    x2 = (np.arange(n) * 7) % 5.0
    return np.c_[x1, x2], 2 * x1 - x2 + 0.1 * (np.arange(n) % 3)


def test_absurd_lr_is_diagnosed_not_an_overflow_error():
    # lr 1e200: |1 - lr*lambda_max| ~ 6e202, whose square overflowed a Python float
    # (OverflowError inside lr.too_high, so the fit had no diagnosis_ at all)
    X, y = _line_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = models.LinearRegression(lr=1e200).fit(X, y)
    codes = {f.code: f for f in est.diagnosis_.findings}
    assert "lr.too_high" in codes
    ev = codes["lr.too_high"].evidence
    assert ev["predicted_growth"] == math.inf
    # the bound is 2/lambda_max of the MSE Hessian (2/n) X1^T X1, computed here in closed form
    X1 = np.c_[X, np.ones(len(X))]
    lmax = np.linalg.eigvalsh(2 / len(X) * X1.T @ X1)[-1]
    assert ev["bound"] == pytest.approx(2 / lmax, rel=1e-6)
    assert codes["lr.too_high"].fix["lr"] < ev["bound"]
