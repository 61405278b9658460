"""The one table of optimizer names: name → class, the adaptive ones, the
estimators' ``optimizer`` values, and :func:`normalize` / :func:`make`.

Every layer above (models, diagnostics) reads optimizer names from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gradwise.optim.adagrad import Adagrad
from gradwise.optim.adam import Adam, AdamW
from gradwise.optim.optimizer import Optimizer
from gradwise.optim.rmsprop import RMSprop
from gradwise.optim.sgd import SGD

__all__ = ["OPTIMIZER_CLASSES", "ADAPTIVE", "SGD_NAMES", "ESTIMATOR_OPTIMIZERS", "normalize", "make"]

#: canonical name -> gradwise optimizer class ("sgd" is heavy ball with momentum β > 0)
OPTIMIZER_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}
#: optimizers whose step is rescaled per coordinate, so no λmax step bound exists
#: (also torch's Adadelta and NAdam, which gradwise does not implement)
ADAPTIVE = frozenset({"adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam"})
#: names of (heavy-ball) gradient descent; :func:`normalize` maps them to "sgd"
SGD_NAMES = ("gd", "sgd", "bgd", "momentum", "heavy_ball", "heavy-ball")
#: the estimators' ``optimizer`` values -> (canonical name, momentum): "momentum" is
#: heavy ball with β = 0.9 (Polyak 1964; the value of Sutskever et al. 2013), "adam"
#: uses Kingma & Ba (2015)'s defaults
ESTIMATOR_OPTIMIZERS = {"sgd": ("sgd", 0.0), "momentum": ("sgd", 0.9), "adam": ("adam", 0.0)}


def normalize(optimizer: Any, momentum: float = 0.0) -> tuple[str, float]:
    """The canonical ``(name, momentum)`` of an optimizer.

    Parameters
    ----------
    optimizer : str or optimizer object
        A name (case-insensitive; one of :data:`SGD_NAMES` or :data:`ADAPTIVE`), or a
        gradwise/torch optimizer whose momentum is read from its first parameter
        group and whose name is its class name (any class with "sgd" in it is SGD).
    momentum : float, default 0.0
        Heavy-ball β for a name (an object's own momentum wins).

    Returns
    -------
    name : str
        ``"sgd"`` or one of :data:`ADAPTIVE`.
    momentum : float

    Raises
    ------
    ValueError
        An unknown name, or SGD momentum outside [0, 1) (heavy ball diverges for
        β >= 1, Polyak 1964).
    """
    if not isinstance(optimizer, str):
        groups = getattr(optimizer, "param_groups", None) or [{}]
        momentum = float(groups[0].get("momentum", momentum) or 0.0)
        cls = type(optimizer).__name__.lower()
        optimizer = "sgd" if "sgd" in cls else cls
    name = optimizer.lower()
    if name in SGD_NAMES:
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        return "sgd", float(momentum)
    if name in ADAPTIVE:
        return name, float(momentum)
    raise ValueError(
        f"unknown optimizer {optimizer!r}; use 'sgd' (with momentum=β for heavy ball) "
        f"or one of {sorted(ADAPTIVE)}"
    )


def make(name: str, params: Iterable[Any], lr: float, momentum: float = 0.0) -> Optimizer:
    """A gradwise optimizer by canonical name with its defaults but ``lr``.

    Parameters
    ----------
    name : str
        A key of :data:`OPTIMIZER_CLASSES`.
    params : iterable of Parameter
    lr : float
        Learning rate.
    momentum : float, default 0.0
        Heavy-ball β, used by ``"sgd"`` only.

    Raises
    ------
    ValueError
        ``name`` is not a key of :data:`OPTIMIZER_CLASSES`.
    """
    cls = OPTIMIZER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_CLASSES)}")
    if cls is SGD:
        return SGD(params, lr=lr, momentum=momentum)
    return cls(params, lr=lr)
