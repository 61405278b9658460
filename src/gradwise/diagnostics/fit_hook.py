"""The fit hook: every gradwise estimator's ``fit`` ends with ``diagnosis_``.

:mod:`gradwise._hooks` names :func:`attach_diagnosis` by its import path, so the
models layer calls it without importing the diagnostics layer. The diagnosis of a
fit stays cheap: the probes are one forward pass and a few dozen Hessian-vector
products, and verified re-fits share a budget of 20% of the fit's own time
(:data:`gradwise.diagnostics.fixes.BUDGET_FRACTION`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.diagnostics.diagnosis import diagnose
from gradwise.diagnostics.fixes import BUDGET_FRACTION
from gradwise.diagnostics.optimum import least_squares, logistic
from gradwise.optim import ESTIMATOR_OPTIMIZERS

__all__ = ["attach_diagnosis"]


def _reference(estimator: Any, Xe: np.ndarray, y: np.ndarray) -> dict | None:
    """The optimum of a linear or binary logistic regression in raw units, and the
    loss of the best constant prediction (for ``model.capacity``); for linearly
    separable classes ``{"loss": 0.0, "separable": True, "model"}`` (no finite
    optimum). The diagnosis keeps it as ``diagnosis.reference``."""
    name = type(estimator).__name__
    if name in ("LinearRegression", "PolynomialRegression") and y.ndim == 1:
        if getattr(estimator, "loss", "mse") != "mse":
            return None
        ref = least_squares(Xe, y)
        return {"coef": ref["coef"], "intercept": ref["intercept"], "loss": ref["loss"],
                "baseline": float(np.var(y)), "model": "linear least squares"}
    classes = getattr(estimator, "classes_", None)
    if name == "LogisticRegression" and classes is not None and len(classes) == 2:
        t = (y == classes[1]).astype(float)
        ref = logistic(Xe, t)
        if ref.get("separable"):  # no finite optimum: the log-loss's infimum is 0
            return {"loss": 0.0, "separable": True,
                    "model": "logistic regression (linear decision boundary)"}
        if not ref["converged"]:
            return None
        p = t.mean()
        base = float(-(p * np.log(p) + (1 - p) * np.log(1 - p))) if 0 < p < 1 else 0.0
        return {"coef": ref["coef"], "intercept": ref["intercept"], "loss": ref["loss"],
                "baseline": base, "model": "logistic regression (linear decision boundary)"}
    return None


def attach_diagnosis(estimator: Any, result: Any, X: Any, y: Any) -> None:
    """Diagnose a finished ``fit`` and set ``estimator.diagnosis_``.

    Parameters
    ----------
    estimator : fitted gradwise estimator
        Needs ``model_``, ``_loss()``, ``_transform``, ``_expand`` and
        ``_encode_target`` (see :class:`gradwise.models._base.GradientEstimator`).
    result : TrainResult
        The run (``estimator.result_``).
    X, y : ndarray
        The validated training data passed to ``fit``.
    """
    Xe = estimator._expand(np.asarray(X))
    Xs = estimator._transform(Xe)
    target, n_out = estimator._encode_target(np.asarray(y), Xs.dtype)
    opt, beta = ESTIMATOR_OPTIMIZERS.get(getattr(estimator, "optimizer", "sgd"), ("sgd", 0.0))
    batch = getattr(estimator, "batch_size", None)
    classes = getattr(estimator, "classes_", None)
    log_loss = getattr(estimator, "loss", None) in (None, "log_loss")
    diag = diagnose(
        result,
        model=estimator.model_,
        loss_fn=estimator._loss(),
        X=Xs,
        y=target,
        optimizer=opt,
        momentum=beta,
        batch_size=batch,
        estimator=estimator,
        refit_data=(X, y),
        params0=result.get("initial_params"),
        budget=BUDGET_FRACTION * float(result.get("total_time", 0.0)),
        n_classes=len(classes) if classes is not None and log_loss else None,
        reference=_reference(estimator, Xe, np.asarray(y)),
    )
    if getattr(estimator, "standardize", False):
        _mark_standardized_units(diag)
    estimator.diagnosis_ = diag


def _mark_standardized_units(diag: Any) -> None:
    """The diagnosis works on the model's own parameters, which see standardised
    features; say so where a finding quotes an optimum or a distance (coef_ and
    intercept_, and the report's table, are in the data's units)."""
    for f in diag.findings:
        if "optimum" in f.evidence or "distance" in f.evidence:
            f.evidence["units"] = "model parameters on standardised features"
            note = " (optimum and distance: model parameters on the standardised features)"
            f.message = (f.message[:-1] + note + "." if f.message.endswith(".")
                         else f.message + note)
