"""Layers: ``Linear``, ``Sequential`` and the activation modules."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gradwise.autodiff import Tensor, leaky_relu, linear, relu, sigmoid, softplus, tanh
from gradwise.nn import init as _init
from gradwise.nn.module import Module, Parameter

__all__ = [
    "Linear",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softplus",
    "Identity",
    "LINEAR_INITS",
]


def _torch_bound(fan_in: int) -> float:
    # PyTorch's nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) on the weight,
    # which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias uses the same bound.
    return 1.0 / math.sqrt(fan_in)


def _torch_default(shape, rng, dtype):
    b = _torch_bound(shape[1])
    return _init.uniform(shape, -b, b, rng=rng, dtype=dtype)


#: Weight initialisers accepted by ``Linear(init=...)``: name -> (weight fn, bias is zero).
LINEAR_INITS: dict[str, tuple[Callable, bool]] = {
    "glorot_uniform": (lambda s, r, d: _init.xavier_uniform(s, rng=r, dtype=d), True),
    "glorot_normal": (lambda s, r, d: _init.xavier_normal(s, rng=r, dtype=d), True),
    "he_uniform": (lambda s, r, d: _init.kaiming_uniform(s, nonlinearity="relu", rng=r, dtype=d), True),
    "he_normal": (lambda s, r, d: _init.kaiming_normal(s, nonlinearity="relu", rng=r, dtype=d), True),
    "torch": (_torch_default, False),
    "zeros": (lambda s, r, d: _init.zeros(s, dtype=d), True),
}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Linear(Module):
    """Affine layer ``y = x @ W.T + b`` (PyTorch's convention).

    Parameters
    ----------
    in_features : int
        Size of each input sample (last axis of ``x``).
    out_features : int
        Size of each output sample.
    bias : bool, default True
        Whether to learn an additive bias ``b``.
    init : str or callable, default "glorot_uniform"
        Weight initialisation (bias starts at zero unless noted):

        - ``"glorot_uniform"`` / ``"glorot_normal"``: Glorot & Bengio (2010),
          variance ``2 / (in + out)`` — for sigmoid/tanh layers;
        - ``"he_uniform"`` / ``"he_normal"``: He et al. (2015), variance
          ``2 / in`` — for ReLU layers;
        - ``"torch"``: PyTorch's default, ``U(-1/sqrt(in), 1/sqrt(in))`` for the
          weight *and* the bias;
        - ``"zeros"``: all zeros (for linear/logistic models; a hidden layer
          started at zero never breaks symmetry);
        - a callable ``f(shape, rng, dtype) -> ndarray`` for the weight.
    rng : numpy.random.Generator or int, optional
        Source of the random initial values (see :func:`gradwise.nn.init.as_generator`).
    dtype : numpy floating dtype, default numpy.float64
        Dtype of the parameters (use ``np.float32`` for float32 training).

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None

    Shapes
    ------
    input ``(..., in_features)`` -> output ``(..., out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init: str | Callable = "glorot_uniform", rng: Any = None,
                 dtype: Any = np.float64):
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"dtype must be a floating type (float32 or float64), got {dt}")
        if callable(init):
            weight_fn, zero_bias = init, True
        elif init in LINEAR_INITS:
            weight_fn, zero_bias = LINEAR_INITS[init]
        else:
            raise ValueError(
                f"unknown init {init!r}; choose one of {', '.join(map(repr, LINEAR_INITS))} "
                "or pass a callable f(shape, rng, dtype)"
            )
        self.init = init
        gen = _init.as_generator(rng)
        shape = (self.out_features, self.in_features)
        w = np.asarray(weight_fn(shape, gen, dt))
        if w.shape != shape:
            raise ValueError(f"init returned shape {w.shape}, expected {shape}")
        self.weight = Parameter(w.astype(dt, copy=False))
        if bias:
            bound = _torch_bound(self.in_features)
            b = (np.zeros(self.out_features, dtype=dt) if zero_bias
                 else _init.uniform(self.out_features, -bound, bound, rng=gen, dtype=dt))
            self.bias = Parameter(b)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        """``x @ weight.T + bias`` for ``x`` of shape ``(..., in_features)``."""
        if not isinstance(x, Tensor):
            x = np.asarray(x)
        if not x.shape or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear(in_features={self.in_features}) got input of shape {tuple(x.shape)}; "
                f"the last axis must have size {self.in_features}"
            )
        # one fused node; the weight gradient comes out C-contiguous like the weight
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Sequential(Module):
    """Modules applied one after another; children are named ``"0"``, ``"1"``, ...

    Parameters
    ----------
    *modules : Module
        The layers in order, or a single ``OrderedDict`` of name -> module.

    Examples
    --------
    >>> import gradwise.nn as nn
    >>> nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU())
    Sequential(
      (0): Linear(in_features=2, out_features=3, bias=True)
      (1): ReLU()
    )
    """

    def __init__(self, *modules: Module | OrderedDict):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self._check(m, name)
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                self._check(m, i)
                self.add_module(str(i), m)

    @staticmethod
    def _check(m: Any, where: Any) -> None:
        if not isinstance(m, Module):
            hint = " (instantiate it: nn.ReLU(), not nn.ReLU)" if isinstance(m, type) else ""
            raise TypeError(
                f"Sequential element {where} is {type(m).__name__}, not a gradwise.nn.Module{hint}"
            )

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; returns ``self``."""
        self._check(module, len(self))
        self.add_module(str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Module:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        try:
            return mods[idx]
        except IndexError:
            raise IndexError(f"index {idx} is out of range for Sequential of length {len(mods)}") from None

    def forward(self, x: Any) -> Any:
        """Apply every module in order."""
        for m in self._modules.values():
            x = m(x)
        return x


class _Activation(Module):
    """Elementwise activation; ``name`` tells monitors what it is (saturating or not)."""

    name = ""
    _fn: Callable = staticmethod(lambda x: x)

    def forward(self, x: Any) -> Tensor:
        return type(self)._fn(x)


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``; saturates for |x| large (gradient ``σ(1 - σ) <= 1/4``)."""

    name = "sigmoid"
    _fn = staticmethod(sigmoid)


class Tanh(_Activation):
    """``tanh(x)``; saturates for |x| large (gradient ``1 - tanh^2``)."""

    name = "tanh"
    _fn = staticmethod(tanh)


class ReLU(_Activation):
    """``max(x, 0)``; units whose input stays negative are dead (zero gradient)."""

    name = "relu"
    _fn = staticmethod(relu)


class Identity(_Activation):
    """Returns its input unchanged."""

    name = "identity"


class LeakyReLU(Module):
    """``x`` for x > 0, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    negative_slope : float, default 0.01
        Slope for negative inputs (finite).
    """

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
                or not math.isfinite(negative_slope):
            raise ValueError(f"negative_slope must be a finite number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, computed stably (no overflow for large x).

    Parameters
    ----------
    beta : float, default 1.0
        Sharpness (> 0); the limit beta -> inf is ReLU.

    Notes
    -----
    PyTorch switches to the identity above ``beta x > 20``; here the exact stable
    formula is used everywhere (differences below 2e-9 there).
    """

    name = "softplus"

    def __init__(self, beta: float = 1.0):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0 \
                or not math.isfinite(beta):
            raise ValueError(f"beta must be a positive finite number, got {beta!r}")
        self.beta = float(beta)

    def forward(self, x: Any) -> Tensor:
        if self.beta == 1.0:
            return softplus(x)
        return softplus(x * self.beta) / self.beta

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
