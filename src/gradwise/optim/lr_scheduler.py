"""Learning-rate schedules (``torch.optim.lr_scheduler`` semantics).

A scheduler changes ``group["lr"]`` of its optimizer each time :meth:`step` is
called (once per epoch, after ``optimizer.step()``); :meth:`get_last_lr` returns
the current rates. As in PyTorch the rates are updated recursively from the
current value (so other changes to ``group["lr"]`` compose with the schedule),
which reproduces PyTorch's sequences to the last bit.
"""

from __future__ import annotations

import math
from typing import Any

from gradwise.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


def _check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not a gradwise Optimizer")


class LRScheduler:
    """Base class: subclasses define :meth:`get_lr` (the rates after one more step).

    Parameters
    ----------
    optimizer : Optimizer
    last_epoch : int, default -1
        Index of the last epoch when resuming; ``-1`` starts from ``group["lr"]``.

    Attributes
    ----------
    base_lrs : list of float
        Each group's initial learning rate (stored as ``group["initial_lr"]``).
    last_epoch : int
        Number of ``step()`` calls so far (0 right after construction).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming a scheduler with last_epoch >= 0; load the optimizer's "
                        "state_dict first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        """The learning rates after the current step."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group after the last :meth:`step`."""
        return list(self._last_lr)

    def _current(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (plain Python values)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.__dict__.update(state_dict)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_gamma(gamma: Any) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0 \
            or not math.isfinite(gamma):
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    ``lr_e = lr_0 * gamma ** (e // step_size)``.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, in epochs (>= 1).
    gamma : float, default 0.1
        Multiplicative factor (> 0).
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        _check_positive_int("step_size", step_size)
        _check_gamma(gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current()
        return [lr * self.gamma for lr in self._current()]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch: ``lr_e = lr_0 * gamma ** e``.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        Multiplicative factor (> 0).
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _check_gamma(gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current()
        return [lr * self.gamma for lr in self._current()]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial rate down to ``eta_min`` over ``T_max`` epochs:
    ``lr_e = eta_min + (lr_0 - eta_min) (1 + cos(pi e / T_max)) / 2``
    (Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR 2017, eq. 5, without restarts). After ``T_max`` epochs the rate
    rises again along the cosine (period ``2 T_max``), as in PyTorch.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half period, in epochs (>= 1).
    eta_min : float, default 0
        Minimum learning rate (>= 0).
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1):
        _check_positive_int("T_max", T_max)
        if isinstance(eta_min, bool) or not isinstance(eta_min, (int, float)) or not eta_min >= 0:
            raise ValueError(f"eta_min must be a number >= 0, got {eta_min!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current()
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                    for lr, b in zip(self._current(), self.base_lrs)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - lo) + lo for lr in self._current()]


class ReduceLROnPlateau:
    """Reduce the learning rate when a metric has stopped improving.

    After more than ``patience`` epochs without improvement of the metric passed to
    :meth:`step`, every group's rate becomes ``max(lr * factor, min_lr)`` (changes
    smaller than ``eps`` are ignored), followed by ``cooldown`` epochs in which bad
    epochs are not counted. "Improvement" for ``mode="min"`` means
    ``metric < best * (1 - threshold)`` (``threshold_mode="rel"``) or
    ``metric < best - threshold`` (``"abs"``); mirrored for ``mode="max"``.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}, default "min"
    factor : float, default 0.1
        In (0, 1).
    patience : int, default 10
        Number of bad epochs tolerated (>= 0).
    threshold : float, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int, default 0
    min_lr : float or list of float, default 0
        Lower bound, one for all groups or one per group.
    eps : float, default 1e-8
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0.0, eps: float = 1e-8):
        _check_optimizer(optimizer)
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        for name, v in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"expected {n} min_lrs (one per parameter group), got {len(min_lr)}")
            self.min_lrs = list(min_lr)
        else:
            self.min_lrs = [min_lr] * n
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metrics: float) -> None:
        """Record this epoch's metric (e.g. validation loss) and reduce if needed."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for i, group in enumerate(self.optimizer.param_groups):
                old = float(group["lr"])
                new = max(old * self.factor, self.min_lrs[i])
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group after the last :meth:`step`."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.__dict__.update(state_dict)
