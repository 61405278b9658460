"""Adam and AdamW (``torch.optim.Adam`` / ``torch.optim.AdamW`` semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gradwise.optim.optimizer import Optimizer, check_range

__all__ = ["Adam", "AdamW"]


def lerp_(a: np.ndarray, b: np.ndarray, w: float) -> None:
    """``a += w (b - a)`` in place, evaluated as PyTorch's ``lerp_`` does (from the
    nearer end for ``w >= 0.5``) so trajectories agree to the last bits."""
    diff = b - a
    if abs(w) < 0.5:
        diff *= w
        a += diff
    else:
        diff *= 1 - w
        np.subtract(b, diff, out=a)


class Adam(Optimizer):
    r"""Adam: adaptive moment estimation.

    Algorithm (Kingma and Ba, "Adam: A Method for Stochastic Optimization",
    ICLR 2015, Algorithm 1, in PyTorch's formulation; AMSGrad from Reddi, Kale and
    Kumar, "On the Convergence of Adam and Beyond", ICLR 2018)::

        if maximize:        g = -g
        if weight_decay:    g = g + weight_decay * theta        (Adam: L2 in the gradient)
        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g^2
        if amsgrad:         v_max = max(v_max, v);  v_hat = v_max  else  v_hat = v
        theta = theta - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator (>= 0).
    weight_decay : float, default 0
        L2 coefficient added to the gradient (for decoupled decay use :class:`AdamW`).
    amsgrad : bool, default False
        Use the running maximum of ``v`` (AMSGrad).
    maximize : bool, default False

    Raises
    ------
    ValueError
        ``"Invalid learning rate: -0.1"``, ``"Invalid beta parameter at index 0: 1.0"``,
        ``"Invalid epsilon value: ..."``, ``"Invalid weight_decay value: ..."``.
    """

    _decoupled = False
    reports_updates = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_range("learning rate", group["lr"])
        check_range("epsilon value", group["eps"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (a pair (beta1, beta2) is expected)")
        check_range("beta parameter at index 0", betas[0], 0.0, 1.0)
        check_range("beta parameter at index 1", betas[1], 0.0, 1.0)
        check_range("weight_decay value", group["weight_decay"])

    def _update_group(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        wd = group["weight_decay"]
        amsgrad = group["amsgrad"]
        for p, d, g in self._gradients(group, l2=not self._decoupled):
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": 0,
                    "exp_avg": np.zeros_like(d),
                    "exp_avg_sq": np.zeros_like(d),
                }
                if amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(d)
            state["step"] += 1
            t = state["step"]
            if wd != 0 and self._decoupled:
                d *= 1 - lr * wd
            m, v = state["exp_avg"], state["exp_avg_sq"]
            lerp_(m, g, 1 - beta1)
            v *= beta2
            v += (1 - beta2) * g * g
            if amsgrad:
                vmax = state.setdefault("max_exp_avg_sq", np.zeros_like(d))
                np.maximum(vmax, v, out=vmax)
                v = vmax
            step_size = lr / (1 - beta1**t)
            denom = np.sqrt(v)
            denom /= (1 - beta2**t) ** 0.5
            denom += eps
            # (step_size * m) / denom: PyTorch's addcdiv evaluation order
            upd = m * step_size
            upd /= denom
            self._apply_update(p, d, upd)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay.

    Algorithm (Loshchilov and Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019, Algorithm 2, in PyTorch's formulation): first
    ``theta = theta (1 - lr * weight_decay)``, then the :class:`Adam` update with
    no decay term in the gradient.

    Parameters are those of :class:`Adam`, except ``weight_decay`` (default 1e-2)
    is applied directly to the parameters.
    """

    _decoupled = True
    reports_updates = False  # the decoupled decay scales the parameters directly

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)
