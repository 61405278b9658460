"""Adagrad (``torch.optim.Adagrad`` semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gradwise.optim.optimizer import Optimizer, check_range

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad: per-coordinate steps scaled by the accumulated squared gradients.

    Algorithm (Duchi, Hazan and Singer, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", JMLR 12, 2011, diagonal version; in
    PyTorch's formulation, at step ``t = 1, 2, ...``)::

        if maximize:        g = -g
        if weight_decay:    g = g + weight_decay * theta
        lr_t = lr / (1 + (t - 1) lr_decay)
        s = s + g^2                                  (s starts at initial_accumulator_value)
        theta = theta - lr_t * g / (sqrt(s) + eps)

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False

    Raises
    ------
    ValueError
        ``"Invalid learning rate: ..."``, ``"Invalid lr_decay value: ..."``,
        ``"Invalid initial_accumulator_value value: ..."``, ...
    """

    reports_updates = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_range("learning rate", group["lr"])
        check_range("lr_decay value", group["lr_decay"])
        check_range("weight_decay value", group["weight_decay"])
        check_range("initial_accumulator_value value", group["initial_accumulator_value"])
        check_range("epsilon value", group["eps"])

    def _update_group(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        lr_decay = group["lr_decay"]
        eps = group["eps"]
        for p, d, g in self._gradients(group):
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": 0,
                    "sum": np.full_like(d, group["initial_accumulator_value"]),
                }
            state["step"] += 1
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            s = state["sum"]
            s += g * g
            std = np.sqrt(s)
            std += eps
            upd = g * clr  # (clr * g) / std, PyTorch's addcdiv order
            upd /= std
            self._apply_update(p, d, upd)
