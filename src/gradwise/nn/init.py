"""Weight initialisers, seeded only through a ``numpy.random.Generator``.

Two forms of each initialiser:

- ``xavier_uniform(shape, ..., rng=..., dtype=...)`` returns a new array;
- ``xavier_uniform_(tensor, ..., rng=...)`` fills ``tensor.data`` in place and
  returns the tensor (PyTorch's ``torch.nn.init`` naming).

``rng`` is a ``numpy.random.Generator`` or an int seed; ``None`` draws fresh OS
entropy through ``numpy.random.default_rng()``. The legacy global RNG
(``np.random.seed``) is never used. Values are drawn in float64 and cast to
``dtype``, so a float32 and a float64 layer built from the same seed agree to
float32 rounding.

Shapes follow PyTorch's weight convention ``(out_features, in_features, *kernel)``:
``fan_in = shape[1] * prod(shape[2:])`` and ``fan_out = shape[0] * prod(shape[2:])``.

Formulas and sources
--------------------
- Glorot/Xavier uniform: ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``;
  Glorot/Xavier normal: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.
  X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
  feedforward neural networks", AISTATS 2010, eq. (16) and the variance
  argument of section 4.2 (``Var[W] = 2 / (fan_in + fan_out)``).
- He/Kaiming normal: ``std = gain / sqrt(fan)``; He/Kaiming uniform: ``U(-b, b)``,
  ``b = sqrt(3) * gain / sqrt(fan)`` (same variance); with ``gain = sqrt(2)`` for
  ReLU this is ``Var[W] = 2 / fan_in``. K. He, X. Zhang, S. Ren and J. Sun,
  "Delving Deep into Rectifiers", ICCV 2015, eq. (10) (forward, ``mode="fan_in"``)
  and eq. (14) (backward, ``mode="fan_out"``); leaky ReLU with slope ``a``:
  ``gain = sqrt(2 / (1 + a^2))`` (their eq. 15 for PReLU).
- A uniform ``U(-b, b)`` has variance ``b^2 / 3`` (hence the ``sqrt(3)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "as_generator",
    "calculate_gain",
    "fan_in_and_fan_out",
    "uniform",
    "normal",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "zeros",
    "constant",
    "uniform_",
    "normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "zeros_",
    "constant_",
]

_LINEAR = ("linear", "identity", "sigmoid")


def as_generator(rng: Any) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator, int or None
        A generator is returned as is; an int is a seed; ``None`` uses fresh OS
        entropy (``numpy.random.default_rng()``), never the legacy global state.

    Raises
    ------
    TypeError
        For anything else (including the legacy ``numpy.random.RandomState``).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}; "
        "use numpy.random.default_rng(seed)"
    )


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for an activation (PyTorch's table).

    Parameters
    ----------
    nonlinearity : {"linear", "identity", "sigmoid", "tanh", "relu", "leaky_relu", "selu"}
    param : float, optional
        Negative slope for ``"leaky_relu"`` (default 0.01).

    Returns
    -------
    float
        1 for linear/identity/sigmoid, 5/3 for tanh, sqrt(2) for ReLU (He et al.
        2015), sqrt(2 / (1 + slope^2)) for leaky ReLU (He et al. 2015, eq. 15),
        3/4 for SELU.
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"unsupported nonlinearity {nonlinearity!r}; choose one of "
        "'linear', 'identity', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu'"
    )


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must not contain negative sizes, got {shape}")
    return shape


def fan_in_and_fan_out(shape: Any) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``.

    Raises
    ------
    ValueError
        For fewer than 2 dimensions (a bias has no fan-in/fan-out).
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan_in and fan_out need a weight with at least 2 dimensions, got shape {shape}; "
            "initialise biases with zeros/constant/uniform instead"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: Any, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialise a weight with zero {mode} (shape {tuple(shape)})")
    return fan


def _dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating type (float32 or float64), got {dt}")
    return dt


def uniform(shape: Any, low: float = 0.0, high: float = 1.0, *, rng: Any = None,
            dtype: Any = np.float64) -> np.ndarray:
    """Array of ``shape`` drawn from ``U(low, high)``."""
    if not low <= high:
        raise ValueError(f"uniform needs low <= high, got low={low}, high={high}")
    return as_generator(rng).uniform(low, high, _shape(shape)).astype(_dtype(dtype), copy=False)


def normal(shape: Any, mean: float = 0.0, std: float = 1.0, *, rng: Any = None,
           dtype: Any = np.float64) -> np.ndarray:
    """Array of ``shape`` drawn from ``N(mean, std^2)``."""
    if not std >= 0:
        raise ValueError(f"normal needs std >= 0, got {std}")
    return as_generator(rng).normal(mean, std, _shape(shape)).astype(_dtype(dtype), copy=False)


def xavier_uniform(shape: Any, gain: float = 1.0, *, rng: Any = None,
                   dtype: Any = np.float64) -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    Source: Glorot & Bengio (2010), eq. (16). Variance ``2 gain^2 / (fan_in + fan_out)``.
    """
    fan_in, fan_out = fan_in_and_fan_out(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -a, a, rng=rng, dtype=dtype)


def xavier_normal(shape: Any, gain: float = 1.0, *, rng: Any = None,
                  dtype: Any = np.float64) -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Source: Glorot & Bengio (2010), section 4.2.
    """
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return normal(shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng, dtype=dtype)


def kaiming_uniform(shape: Any, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", *, rng: Any = None,
                    dtype: Any = np.float64) -> np.ndarray:
    """He/Kaiming uniform: ``U(-b, b)``, ``b = sqrt(3) * gain / sqrt(fan)``.

    ``gain = calculate_gain(nonlinearity, a)``; with the defaults (leaky ReLU of
    slope 0, i.e. ReLU) the variance is ``2 / fan_in``. Source: He et al. (2015),
    eqs. (10), (14), (15).
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    bound = math.sqrt(3.0) * std
    return uniform(shape, -bound, bound, rng=rng, dtype=dtype)


def kaiming_normal(shape: Any, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu", *, rng: Any = None,
                   dtype: Any = np.float64) -> np.ndarray:
    """He/Kaiming normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)``.

    Source: He et al. (2015), eq. (10) (``mode="fan_in"``) and eq. (14) (``"fan_out"``).
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(shape, 0.0, std, rng=rng, dtype=dtype)


def zeros(shape: Any, *, dtype: Any = np.float64) -> np.ndarray:
    """Array of zeros."""
    return np.zeros(_shape(shape), dtype=_dtype(dtype))


def constant(shape: Any, value: float, *, dtype: Any = np.float64) -> np.ndarray:
    """Array filled with ``value``."""
    return np.full(_shape(shape), value, dtype=_dtype(dtype))


def _fill(tensor: Any, values: np.ndarray) -> Any:
    tensor.data[...] = values
    return tensor


def _target(tensor: Any) -> tuple[tuple[int, ...], np.dtype]:
    data = getattr(tensor, "data", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"expected a gradwise Tensor or Parameter, got {type(tensor).__name__}")
    return data.shape, data.dtype


def uniform_(tensor: Any, low: float = 0.0, high: float = 1.0, *, rng: Any = None) -> Any:
    """Fill ``tensor`` in place from ``U(low, high)``; returns it."""
    shape, dt = _target(tensor)
    return _fill(tensor, uniform(shape, low, high, rng=rng, dtype=dt))


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, *, rng: Any = None) -> Any:
    """Fill ``tensor`` in place from ``N(mean, std^2)``; returns it."""
    shape, dt = _target(tensor)
    return _fill(tensor, normal(shape, mean, std, rng=rng, dtype=dt))


def xavier_uniform_(tensor: Any, gain: float = 1.0, *, rng: Any = None) -> Any:
    """In-place :func:`xavier_uniform`; returns ``tensor``."""
    shape, dt = _target(tensor)
    return _fill(tensor, xavier_uniform(shape, gain, rng=rng, dtype=dt))


def xavier_normal_(tensor: Any, gain: float = 1.0, *, rng: Any = None) -> Any:
    """In-place :func:`xavier_normal`; returns ``tensor``."""
    shape, dt = _target(tensor)
    return _fill(tensor, xavier_normal(shape, gain, rng=rng, dtype=dt))


def kaiming_uniform_(tensor: Any, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", *, rng: Any = None) -> Any:
    """In-place :func:`kaiming_uniform`; returns ``tensor``."""
    shape, dt = _target(tensor)
    return _fill(tensor, kaiming_uniform(shape, a, mode, nonlinearity, rng=rng, dtype=dt))


def kaiming_normal_(tensor: Any, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", *, rng: Any = None) -> Any:
    """In-place :func:`kaiming_normal`; returns ``tensor``."""
    shape, dt = _target(tensor)
    return _fill(tensor, kaiming_normal(shape, a, mode, nonlinearity, rng=rng, dtype=dt))


def zeros_(tensor: Any) -> Any:
    """Fill ``tensor`` with zeros in place; returns it."""
    _target(tensor)
    tensor.data[...] = 0
    return tensor


def constant_(tensor: Any, value: float) -> Any:
    """Fill ``tensor`` with ``value`` in place; returns it."""
    _target(tensor)
    tensor.data[...] = value
    return tensor
