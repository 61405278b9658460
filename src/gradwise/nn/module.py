"""``Module`` and ``Parameter``: the containers every layer is built from.

The conventions are PyTorch's (``torch.nn.Module``): parameters and submodules
assigned as attributes are registered in assignment order, so
``named_parameters()`` yields dotted names such as ``"0.weight"``; calling a
module runs :meth:`Module.forward` and then its forward hooks.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from gradwise.autodiff import Tensor
from gradwise.autodiff.compile import MODULES_CHANGED
from gradwise.autodiff.tensor import _trace_break

__all__ = ["Module", "Parameter", "RemovableHandle", "IncompatibleKeys", "zero_grads"]


def zero_grads(params: Any, set_to_none: bool = True) -> None:
    """Reset the ``.grad`` of every tensor in ``params``: ``None`` (``set_to_none``),
    or zeros in place (a fresh zero array if the gradient is a read-only view).
    Used by :meth:`Module.zero_grad` and ``Optimizer.zero_grad``."""
    for p in params:
        g = p.grad
        if g is None:
            continue
        if set_to_none:
            p.grad = None
        elif g.data.flags.writeable:
            g.data[...] = 0
        else:
            g.data = np.zeros_like(g.data)


class Parameter(Tensor):
    """A :class:`~gradwise.Tensor` that a :class:`Module` registers as trainable.

    Parameters
    ----------
    data : array_like
        Initial values; the dtype is kept (float32 stays float32, integers become
        float64 as in :class:`~gradwise.Tensor`).
    requires_grad : bool, default True
        Whether the optimizer trains it. A frozen parameter is still part of
        ``parameters()`` and ``state_dict()``.
    name : str, optional
        Label used in graphs and error messages.

    Notes
    -----
    Results of operations on a ``Parameter`` are plain tensors; only the leaf is a
    ``Parameter``. Optimizers update ``p.data`` in place, so a module and its
    optimizer always see the same array.
    """

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    # Tensors with an elementwise ``__eq__`` are unhashable; parameters are
    # identified by identity (dictionary keys of optimizer state, de-duplication).
    __hash__ = object.__hash__


class RemovableHandle:
    """Handle returned by :meth:`Module.register_forward_hook`; ``remove()`` detaches
    the hook. Also a context manager that removes the hook on exit."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        """Detach the hook (idempotent)."""
        MODULES_CHANGED[0] += 1
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class IncompatibleKeys(NamedTuple):
    """Keys reported by ``load_state_dict(strict=False)``."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer, activation, loss and network.

    Subclasses implement :meth:`forward` and assign their parameters
    (:class:`Parameter`) and submodules (:class:`Module`) as attributes; both are
    registered automatically, in assignment order.

    Attributes
    ----------
    training : bool
        True after :meth:`train` (the default), False after :meth:`eval`.

    Examples
    --------
    >>> import gradwise.nn as nn
    >>> net = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh(), nn.Linear(3, 1, rng=0))
    >>> [name for name, _ in net.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise RuntimeError(
                f"cannot assign {name!r} before Module.__init__() call; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        MODULES_CHANGED[0] += 1  # compiled functions reading a module trace again
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            self._modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(gradwise.nn.Parameter or None expected); wrap it: nn.Parameter(value)"
                )
            params[name] = None
        elif name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module {name!r} "
                    "(gradwise.nn.Module or None expected)"
                )
            self._modules[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        MODULES_CHANGED[0] += 1
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or ``None``, a declared but absent parameter such as a
        disabled bias) under ``name``."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"parameter name must be a non-empty string without '.', got {name!r}")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot register {type(param).__name__} as parameter {name!r}: "
                "gradwise.nn.Parameter or None expected"
            )
        MODULES_CHANGED[0] += 1
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child under ``name`` (``Sequential`` uses
        ``"0"``, ``"1"``, ...)."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a gradwise.nn.Module")
        MODULES_CHANGED[0] += 1
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # ------------------------------------------------------------------ forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; subclasses must override it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:  # one dict truth test when no hook is registered
            _trace_break(f"{type(self).__name__} has forward hooks, which a replay would skip")
            for hook in tuple(self._forward_hooks.values()):
                res = hook(self, args, out)
                if res is not None:
                    out = res
        return out

    def register_forward_hook(
        self, hook: Callable[[Module, tuple, Any], Any]
    ) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward pass.

        Parameters
        ----------
        hook : callable
            Receives the module, the tuple of positional inputs and the output. If
            it returns something other than ``None``, that replaces the output.

        Returns
        -------
        RemovableHandle
            ``handle.remove()`` detaches the hook.
        """
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        handle = RemovableHandle(self._forward_hooks)
        MODULES_CHANGED[0] += 1
        self._forward_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for this module (name ``prefix``, ``""`` at the
        root) and every descendant (dotted names), each module once."""
        seen: set[int] = set()

        def rec(mod: Module, pre: str):
            if id(mod) in seen:
                return
            seen.add(id(mod))
            yield pre, mod
            for name, child in mod._modules.items():
                if child is not None:
                    yield from rec(child, f"{pre}.{name}" if pre else name)

        yield from rec(self, prefix)

    def modules(self) -> Iterator[Module]:
        """This module and all descendants."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct submodules with their names."""
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        """Direct submodules."""
        for _, child in self.named_children():
            yield child

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, parameter)``, e.g. ``("0.weight", W)``; a parameter
        shared by several modules is yielded once, under its first name."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, mod in mods:
            for name, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The parameters, in registration order (what an optimizer takes)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    # ------------------------------------------------------------------ state
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters.

        Parameters
        ----------
        set_to_none : bool, default True
            ``True`` sets ``p.grad = None`` (the next backward pass assigns a fresh
            gradient); ``False`` fills the existing gradient arrays with zeros.
        """
        zero_grads(self.parameters(), set_to_none)

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and all descendants; returns ``self``."""
        if not isinstance(mode, bool):
            raise TypeError(f"training mode must be a bool, got {type(mode).__name__}")
        MODULES_CHANGED[0] += 1
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (``False``) or unfreeze all parameters; returns ``self``."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype: Any) -> Module:
        """Cast every floating parameter to ``dtype`` in place (e.g. ``np.float32``);
        returns ``self``. Gradients are dropped."""
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"parameters must have a floating dtype, got {dt}")
        for p in self.parameters():
            if p.data.dtype != dt:
                p.data = p.data.astype(dt)
            p.grad = None
        return self

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of all parameter arrays under their dotted names.

        Returns
        -------
        collections.OrderedDict of str -> numpy.ndarray
            Independent copies: training further does not change a saved state.
        """
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into the parameters (in place).

        Parameters
        ----------
        state_dict : mapping of str -> array_like
            As produced by :meth:`state_dict`.
        strict : bool, default True
            Require exactly the module's keys.

        Returns
        -------
        IncompatibleKeys
            ``(missing_keys, unexpected_keys)`` (both empty when ``strict``).

        Raises
        ------
        KeyError
            ``strict`` and keys are missing or unexpected (all are listed).
        ValueError
            An array's shape differs from its parameter's, or it is not numeric.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(
                f"error loading state_dict into {type(self).__name__}: " + "; ".join(parts)
                + " (pass strict=False to load the matching keys only)"
            )
        arrays = {}
        for k, p in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = np.asarray(v.data if isinstance(v, Tensor) else v)
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"state_dict[{k!r}] has non-numeric dtype {arr.dtype}")
            if arr.shape != p.data.shape:
                raise ValueError(
                    f"size mismatch for {k!r}: copying an array of shape {arr.shape}, "
                    f"the parameter has shape {p.data.shape}"
                )
            arrays[k] = arr
        for k, arr in arrays.items():  # validate everything before changing anything
            own[k].data[...] = arr
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """One-line description of the module's settings (shown in ``repr``)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        extra = self.extra_repr()
        main = f"{type(self).__name__}({extra}"
        if lines:
            return main + "\n  " + "\n  ".join(lines) + "\n)"
        return main + ")"
