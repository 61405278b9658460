"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and
weight decay (``torch.optim.SGD`` semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gradwise.optim.optimizer import Optimizer, check_range

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum).

    Algorithm (PyTorch's formulation; for each parameter :math:`\theta` with
    gradient :math:`g_t`, step :math:`t = 1, 2, \dots`)::

        if maximize:        g_t = -g_t
        if weight_decay:    g_t = g_t + weight_decay * theta
        if momentum:
            b_t = g_t                                   (t = 1)
            b_t = momentum * b_{t-1} + (1 - dampening) * g_t   (t > 1)
            g_t = g_t + momentum * b_t   if nesterov   else   b_t
        theta = theta - lr * g_t

    Momentum is the heavy-ball method of Polyak (1964); Nesterov momentum in this
    form is from Sutskever, Martens, Dahl and Hinton, "On the importance of
    initialization and momentum in deep learning", ICML 2013. Note the momentum is
    applied to the gradient (not to ``lr * g`` as in Sutskever et al.), as in
    PyTorch; with a constant ``lr`` the two are equivalent.

    Parameters
    ----------
    params : iterable of Parameter or of dict
        ``model.parameters()`` or parameter groups.
    lr : float, default 1e-3
        Learning rate (>= 0).
    momentum : float, default 0
        Momentum factor (>= 0).
    dampening : float, default 0
        Dampening of the momentum (the new gradient is scaled by ``1 - dampening``).
    weight_decay : float, default 0
        L2 penalty coefficient (>= 0): adds ``weight_decay * theta`` to the gradient.
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Maximise the objective (ascend the gradient).

    Raises
    ------
    ValueError
        ``"Invalid learning rate: -0.1"`` and similar for a bad hyperparameter;
        ``nesterov`` without momentum or with dampening.

    Examples
    --------
    >>> import numpy as np, gradwise as gw
    >>> w = gw.nn.Parameter(np.array([1.0, -2.0]))
    >>> opt = gw.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data
    array([ 0.8, -1.6])
    """

    reports_updates = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_range("learning rate", group["lr"])
        check_range("momentum value", group["momentum"])
        check_range("dampening value", group["dampening"], 0.0, 1.0, hi_open=False)
        check_range("weight_decay value", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update_group(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        nesterov = group["nesterov"]
        for p, d, g in self._gradients(group):
            if momentum != 0:
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, dtype=d.dtype, copy=True)
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            self._apply_update(p, d, lr * g)
