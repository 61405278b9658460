"""Losses as functions (the loss modules call these; one implementation each),
plus the engine's activation functions under their usual names.

Every loss takes ``input`` (a :class:`~gradwise.Tensor`, or an array) and
``target`` (an array or a tensor) and a ``reduction``:

- ``"mean"`` (default): average over the elements (over the samples for
  :func:`cross_entropy`);
- ``"sum"``: sum;
- ``"none"``: the per-element (per-sample for :func:`cross_entropy`) losses.

Targets are cast to the input's floating dtype, so float32 inputs stay float32.
Shapes must match exactly: ``(n, 1)`` predictions against ``(n,)`` targets would
broadcast to an ``(n, n)`` matrix of differences, a classic silent bug, so it is
an error here (PyTorch only warns).

The losses that take logits are computed with ``softplus`` and ``log_softmax``
(stable forms, no overflow for logits of ±1e4):

- ``binary_cross_entropy_with_logits``: ``softplus(z) - y z`` (since
  ``-y log σ(z) - (1 - y) log(1 - σ(z)) = softplus(z) - y z``);
- ``cross_entropy``: ``-Σ_c t_c log_softmax(z)_c`` with
  ``log_softmax(z) = z - logsumexp(z)``.

Reference: Goodfellow, Bengio and Courville, *Deep Learning* (2016), sections
6.2.2.2-6.2.2.3 (sigmoid and softmax output units and their log-likelihoods).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autodiff import (
    Tensor,
    leaky_relu,
    log,
    log_softmax,
    maximum,
    relu,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    softplus,
    square,
    tanh,
)
from gradwise.autodiff.tensor import _trace_break

__all__ = [
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softplus",
    "softmax",
    "log_softmax",
    "REDUCTIONS",
]

#: Allowed values of ``reduction``.
REDUCTIONS = ("mean", "sum", "none")

#: ``log`` is clamped at -100 in :func:`binary_cross_entropy` (PyTorch's choice),
#: so a probability of exactly 0 or 1 gives a finite loss of at most 100 per sample.
LOG_CLAMP = -100.0


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` or raise ``ValueError`` naming the allowed values."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}"
        )
    return reduction


def _as_input(x: Any, fn: str) -> Tensor:
    if not isinstance(x, Tensor):
        x = Tensor(np.asarray(x))
    if x.dtype.kind != "f":
        raise TypeError(
            f"{fn}: input must be floating point, got dtype {x.dtype}; "
            "predictions/logits come from a model, convert data with .astype(float)"
        )
    return x


def _as_target(t: Any, dtype: np.dtype) -> Any:
    """Float target in the input's dtype (a tensor that requires grad is kept as is)."""
    if isinstance(t, Tensor):
        if t.requires_grad:
            return t if t.dtype == dtype else t.astype(dtype)
        t = t.data
    t = np.asarray(t)
    if t.dtype.kind not in "fiub":
        raise TypeError(f"target must be numeric, got dtype {t.dtype}")
    return t.astype(dtype, copy=False)


def _check_same_shape(fn: str, x: Tensor, t: Any) -> None:
    if tuple(x.shape) != tuple(t.shape):
        hint = ""
        if len(x.shape) == 2 and x.shape[1] == 1 and tuple(t.shape) == (x.shape[0],):
            hint = f"; reshape the target with target.reshape({x.shape[0]}, 1)"
        elif len(t.shape) == 2 and t.shape[1] == 1 and tuple(x.shape) == (t.shape[0],):
            hint = f"; reshape the target with target.reshape({t.shape[0]})"
        raise ValueError(
            f"{fn}: input shape {tuple(x.shape)} and target shape {tuple(t.shape)} differ "
            f"(broadcasting would silently compare every prediction with every target){hint}"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target)^2``, reduced (no factor 1/2).

    Parameters
    ----------
    input : Tensor, shape (...)
        Predictions.
    target : array_like or Tensor, same shape as ``input``
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    Tensor
        Scalar (or per-element losses for ``"none"``), dtype of ``input``.

    Raises
    ------
    ValueError
        Shapes differ, or ``reduction`` is unknown.
    """
    check_reduction(reduction)
    x = _as_input(input, "mse_loss")
    t = _as_target(target, x.dtype)
    _check_same_shape("mse_loss", x, t)
    return _reduce(square(x - t), reduction)


def binary_cross_entropy(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on probabilities:
    ``-(y log p + (1 - y) log(1 - p))``, each log clamped at -100.

    Parameters
    ----------
    input : Tensor, values in [0, 1]
        Probabilities (e.g. a sigmoid output). For logits use
        :func:`binary_cross_entropy_with_logits` (more accurate, never saturates).
    target : array_like or Tensor, same shape, values in [0, 1]
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    Tensor
        Scalar, or per-element losses for ``"none"``.

    Raises
    ------
    ValueError
        ``input`` outside [0, 1] (typically logits passed by mistake), shapes
        differ, or unknown ``reduction``.

    Notes
    -----
    The clamp (PyTorch's) keeps the loss finite at p = 0 or 1; the argument of the
    log is first raised to the smallest positive number of the dtype, so the
    gradient where the clamp is active is 0, never NaN (PyTorch instead divides by
    ``max(p (1 - p), 1e-12)`` there). Inside the clamp the gradient is
    ``(p - y) / (p (1 - p))``.
    """
    check_reduction(reduction)
    x = _as_input(input, "binary_cross_entropy")
    t = _as_target(target, x.dtype)
    _check_same_shape("binary_cross_entropy", x, t)
    _trace_break("binary_cross_entropy checks that its input values are probabilities")
    xd = x.data
    if xd.size and not (np.all(xd >= 0) and np.all(xd <= 1)):
        raise ValueError(
            "binary_cross_entropy: input must be probabilities in [0, 1], got values in "
            f"[{np.nanmin(xd):.4g}, {np.nanmax(xd):.4g}]; for logits use "
            "binary_cross_entropy_with_logits (nn.BCEWithLogitsLoss)"
        )
    # log(max(p, tiny)) is finite (<= -103 for float32, -744 for float64) and then
    # clamped at -100, so p = 0 gives exactly PyTorch's value and a zero gradient
    tiny = np.finfo(x.dtype).smallest_subnormal
    log_p = maximum(log(maximum(x, tiny)), LOG_CLAMP)
    log_1mp = maximum(log(maximum(1.0 - x, tiny)), LOG_CLAMP)
    return _reduce(-(t * log_p + (1.0 - t) * log_1mp), reduction)


def binary_cross_entropy_with_logits(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on logits: ``softplus(z) - y z``.

    Equal to ``binary_cross_entropy(sigmoid(z), y)`` but stable for any logit
    (finite for z = ±1e4); its gradient is ``sigmoid(z) - y``.

    Parameters
    ----------
    input : Tensor
        Logits ``z``.
    target : array_like or Tensor, same shape, values in [0, 1]
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        Shapes differ, or unknown ``reduction``.
    """
    check_reduction(reduction)
    x = _as_input(input, "binary_cross_entropy_with_logits")
    t = _as_target(target, x.dtype)
    _check_same_shape("binary_cross_entropy_with_logits", x, t)
    return _reduce(softplus(x) - t * x, reduction)


def _class_indices(target: Any, n: int, c: int) -> np.ndarray:
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: class-index targets must be integers, got dtype {t.dtype}; "
            "use target.astype(int), or pass one-hot/probability targets of shape (n, C)"
        )
    if t.shape != (n,):
        raise ValueError(f"cross_entropy: class-index target must have shape ({n},), got {t.shape}")
    return t  # their range is checked by the primitive's forward (also in compiled replays)


def cross_entropy(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy on logits.

    Parameters
    ----------
    input : Tensor, shape (n, C)
        Logits (unnormalised scores), one row per sample.
    target : array_like
        Either class indices, integer dtype, shape ``(n,)``, values in
        ``[0, C)``: loss ``-log_softmax(z_i)[t_i]``; or one-hot / class
        probabilities, floating dtype, shape ``(n, C)``: loss
        ``-Σ_c t_ic log_softmax(z_i)_c``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides by ``n`` (the number of samples), as PyTorch does for
        both target forms; ``"none"`` returns the ``(n,)`` per-sample losses.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        ``input`` is not 2-D, target shape or class range wrong, unknown ``reduction``.
    TypeError
        1-D float targets (class indices must be integers).
    """
    check_reduction(reduction)
    x = _as_input(input, "cross_entropy")
    if x.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must have shape (n_samples, n_classes), got {tuple(x.shape)}; "
            "reshape a single sample to (1, C)"
        )
    n, c = x.shape
    tshape = np.shape(target.data if isinstance(target, Tensor) else target)
    if len(tshape) == 1:
        t = _class_indices(target, n, c)
    else:
        t = _as_target(target, x.dtype)
        if tuple(t.shape) != (n, c):
            raise ValueError(
                f"cross_entropy: probability target must have the logits' shape {(n, c)}, "
                f"got {tuple(t.shape)}"
            )
    return softmax_cross_entropy(x, t, reduction=reduction)  # one fused, stable node
