"""The ``Optimizer`` base class: parameter groups, per-parameter state, checkpoints.

Same structure and semantics as ``torch.optim.Optimizer``: an optimizer holds
``param_groups`` (a list of dicts, each with ``"params"`` and its
hyperparameters) and ``state`` (a dict from parameter to its buffers).
``step()`` updates ``p.data`` in place from ``p.grad.data``; parameters whose
``grad`` is None are skipped.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradwise.autodiff import Tensor, enable_grad
from gradwise.nn.module import zero_grads

__all__ = ["Optimizer", "check_range"]


def check_range(what: str, value: Any, lo: float = 0.0, hi: float | None = None,
                hi_open: bool = True) -> None:
    """Raise ``ValueError(f"Invalid {what}: {value}")`` (PyTorch's wording) unless
    ``lo <= value`` and ``value < hi`` (``<=`` when ``hi_open`` is False)."""
    ok = (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
          and math.isfinite(value) and value >= lo)
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        raise ValueError(f"Invalid {what}: {value}")


class Optimizer:
    """Base class of the optimizers.

    Parameters
    ----------
    params : iterable of Parameter/Tensor, or iterable of dict
        The tensors to optimise (e.g. ``model.parameters()``), or parameter groups:
        dicts with ``"params"`` and any hyperparameters that override ``defaults``.
    defaults : dict
        Default hyperparameters of every group.

    Attributes
    ----------
    param_groups : list of dict
    state : dict
        Parameter -> dict of its buffers (e.g. ``"momentum_buffer"``).
    defaults : dict

    Raises
    ------
    TypeError
        ``params`` is a single tensor, a Module, or contains non-tensors.
    ValueError
        Empty parameter list, a non-leaf tensor, or a parameter in two groups.
    """

    #: Every change the optimizer makes to a parameter goes through
    #: :meth:`_apply_update`, so a caller may ask for the updates themselves
    #: (``record_updates``) instead of copying the parameters before each step.
    #: Subclasses that change parameters in another way must set it to False.
    reports_updates = False

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        #: when a list, each step appends ``(parameter, delta)`` with the update
        #: ``data_after = data_before - delta`` (the training loop reads it)
        self.record_updates: list | None = None
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of Tensors or dicts, got a single Tensor; "
                "wrap it in a list: [p]"
            )
        if hasattr(params, "parameters") and hasattr(params, "named_parameters"):
            raise TypeError(
                f"params must be an iterable of Tensors or dicts, got a {type(params).__name__} "
                "module; pass model.parameters()"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    # -------------------------------------------------------------------- groups
    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check a group's hyperparameters (subclasses raise ``ValueError``)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (e.g. a smaller
        ``lr`` for a pretrained layer); missing hyperparameters take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group.get("params")
        if params is None:
            raise ValueError("param_group must have a 'params' entry")
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but params[{i}] is {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (params[{i}] is the result of "
                    f"'{p.grad_fn}'); optimise the leaf it was computed from"
                )
            if p.data.dtype.kind != "f":
                raise TypeError(f"params[{i}] has dtype {p.data.dtype}; parameters must be floating")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group contains the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group = {**self.defaults, **param_group, "params": params}
        self._validate_group(group)
        self.param_groups.append(group)

    # -------------------------------------------------------------------- step
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (``None``, or zeros in place)."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one update of every parameter that has a gradient.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (it should call
            ``zero_grad()`` and ``backward()``); run with gradients enabled before
            the update.

        Returns
        -------
        The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    @staticmethod
    def _gradients(group: dict[str, Any], l2: bool = True):
        """Yield ``(p, data, g)`` for each parameter of ``group`` that has a gradient,
        ``g`` being the gradient with ``maximize`` (negation) and, when ``l2``,
        the L2 weight decay ``g + weight_decay * data`` already applied (the
        first lines of every algorithm in ``torch.optim``)."""
        maximize = group.get("maximize", False)
        wd = group.get("weight_decay", 0.0) if l2 else 0.0
        for p in group["params"]:
            gt = p.grad
            if gt is None:
                continue
            d = p.data
            g = gt.data
            if maximize:
                g = -g
            if wd != 0:
                g = g + wd * d
            yield p, d, g

    def _apply_update(self, p: Any, d: np.ndarray, delta: np.ndarray) -> None:
        """``d -= delta`` in place, remembering ``delta`` when updates are recorded."""
        d -= delta
        if self.record_updates is not None:
            self.record_updates.append((p, delta))

    def _update_group(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data (PyTorch's layout).

        Returns
        -------
        dict
            ``{"state": {index: {name: array or number}}, "param_groups": [...]}``
            where parameters are replaced by their position (0, 1, ...) across
            groups. Arrays are copies.
        """
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {
            index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items()
            if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` of a similar optimizer.

        Raises
        ------
        ValueError
            The number of groups, or of parameters in a group, differs; a buffer's
            shape differs from its parameter's.
        """
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if groups is None or "state" not in state_dict:
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups'")
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        by_index = {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"loaded state dict's parameter group {i} has {len(saved['params'])} "
                    f"parameters, the optimizer's has {len(own['params'])}"
                )
            by_index.update(zip(saved["params"], own["params"]))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for k, buffers in state_dict["state"].items():
            p = by_index.get(int(k))
            if p is None:
                raise ValueError(f"state for parameter index {k} has no parameter to go to")
            s = {}
            for name, v in buffers.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(
                            f"state[{k}][{name!r}] has shape {v.shape}, the parameter has "
                            f"shape {p.data.shape}"
                        )
                    v = v.astype(p.data.dtype, copy=True)
                s[name] = v
            new_state[p] = s
        self.state = new_state
        for saved, own in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    own[key] = copy.deepcopy(value)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)
