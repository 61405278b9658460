"""Loss modules; each calls its function in :mod:`gradwise.nn.functional`."""

from __future__ import annotations

from typing import Any

from gradwise.autodiff import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module

__all__ = ["MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]


class _Loss(Module):
    """Base of the losses: stores ``reduction`` ("mean", "sum" or "none")."""

    name = ""
    _fn = staticmethod(F.mse_loss)

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = F.check_reduction(reduction)

    def forward(self, input: Any, target: Any) -> Tensor:
        """Loss of ``input`` against ``target`` (see the functional form)."""
        return type(self)._fn(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class MSELoss(_Loss):
    """Mean (or summed) squared error, :func:`gradwise.nn.functional.mse_loss`.

    ``reduction="mean"`` gives ``mean((input - target)^2)`` (no 1/2), whose gradient
    is ``2 (input - target) / n``.
    """

    name = "mse"
    _fn = staticmethod(F.mse_loss)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (log clamped at -100),
    :func:`gradwise.nn.functional.binary_cross_entropy`."""

    name = "bce"
    _fn = staticmethod(F.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, ``softplus(z) - y z`` (stable),
    :func:`gradwise.nn.functional.binary_cross_entropy_with_logits`."""

    name = "bce_with_logits"
    _fn = staticmethod(F.binary_cross_entropy_with_logits)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits ``(n, C)`` with integer class targets ``(n,)``
    or one-hot/probability targets ``(n, C)``,
    :func:`gradwise.nn.functional.cross_entropy`."""

    name = "cross_entropy"
    _fn = staticmethod(F.cross_entropy)
