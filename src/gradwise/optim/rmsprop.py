"""RMSprop (``torch.optim.RMSprop`` semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gradwise.optim.adam import lerp_
from gradwise.optim.optimizer import Optimizer, check_range

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square.

    Algorithm (Hinton, *Neural Networks for Machine Learning*, lecture 6e, 2012;
    centred variant from Graves, "Generating Sequences With Recurrent Neural
    Networks", 2013, eq. 38; PyTorch's formulation, ``eps`` outside the root)::

        if maximize:        g = -g
        if weight_decay:    g = g + weight_decay * theta
        v = alpha v + (1 - alpha) g^2
        if centered:        gbar = alpha gbar + (1 - alpha) g;  d = sqrt(v - gbar^2) + eps
        else:               d = sqrt(v) + eps
        if momentum:        b = momentum b + g / d;  theta = theta - lr * b
        else:               theta = theta - lr * g / d

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the running average of ``g^2`` (>= 0).
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
        Normalise by the estimated variance instead of the second moment.
    maximize : bool, default False

    Raises
    ------
    ValueError
        ``"Invalid learning rate: ..."``, ``"Invalid alpha value: ..."``, and so on.
    """

    reports_updates = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_range("learning rate", group["lr"])
        check_range("epsilon value", group["eps"])
        check_range("momentum value", group["momentum"])
        check_range("weight_decay value", group["weight_decay"])
        check_range("alpha value", group["alpha"])

    def _update_group(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        alpha = group["alpha"]
        eps = group["eps"]
        momentum = group["momentum"]
        centered = group["centered"]
        for p, d, g in self._gradients(group):
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {"step": 0, "square_avg": np.zeros_like(d)}
                if momentum > 0:
                    state["momentum_buffer"] = np.zeros_like(d)
                if centered:
                    state["grad_avg"] = np.zeros_like(d)
            state["step"] += 1
            v = state["square_avg"]
            v *= alpha
            v += (1 - alpha) * g * g
            if centered:
                gbar = state.setdefault("grad_avg", np.zeros_like(d))
                lerp_(gbar, g, 1 - alpha)
                avg = v - gbar * gbar
                # v - gbar^2 >= 0 in exact arithmetic (Jensen); clamp rounding residues
                # so a near-constant gradient cannot give sqrt(-tiny) = NaN
                np.maximum(avg, 0.0, out=avg)
                np.sqrt(avg, out=avg)
            else:
                avg = np.sqrt(v)
            avg += eps
            if momentum > 0:
                buf = state.setdefault("momentum_buffer", np.zeros_like(d))
                buf *= momentum
                buf += g / avg
                self._apply_update(p, d, lr * buf)
            else:
                upd = g * lr  # (lr * g) / avg, PyTorch's addcdiv order
                upd /= avg
                self._apply_update(p, d, upd)
