"""The one finite-difference implementation of gradwise.

Everything in gradwise that needs the derivative of a function it cannot trace
(the user's loss in :func:`~gradwise.check_gradient`, per-sample gradients in
:func:`~gradwise.check_step`, untraceable losses in ``diagnose``) comes here.

Method
------
Central differences with Richardson extrapolation (Numerical Recipes, Press et
al., 3rd ed., §5.7; Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1).
For a step ``h``

    D(h) = (f(x + h) - f(x - h)) / (2h)          error O(h²)
    R    = (4 D(h/2) - D(h)) / 3                  error O(h⁴)

Per-entry step ``h_i = eps^(1/5) · max(1, |x_i|)``: balancing the O(h⁴)
truncation of ``R`` against the O(eps/h) rounding of the differences gives
``h ∝ eps^(1/5)`` (≈ 7.4e-4 in float64, ≈ 0.041 for a function computing in
float32), scaled by the entry's magnitude as in Nocedal & Wright eq. (8.6).
``eps`` is the precision of the function (``CountedFunction.eps``).

Each derivative also returns an error estimate: ``|R - D(h/2)|`` bounds the
truncation error (it is the error of the less accurate ``D(h/2)``), plus the
rounding term ``eps_f · (|f(x+h)| + |f(x-h)|) / h`` with ``eps_f`` the machine
epsilon of the dtype the function returned. The one-sided second-order
differences ``(∓3 f(x) ± 4 f(x ± h/2) ∓ f(x ± h)) / h`` are compared to detect a
kink (a non-differentiable point such as ReLU at 0 within the step): for a
smooth function they agree to O(h²), at a kink they differ by the jump.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CountedFunction",
    "NonFiniteLoss",
    "check_deterministic",
    "Derivative",
    "NumericGradient",
    "directional_derivative",
    "numeric_gradient",
    "gradient_jvp",
    "JVP_STEP_EXPONENT",
    "STEP_EXPONENT",
]

#: exponent of machine epsilon in the Richardson step (see module docstring)
STEP_EXPONENT = 1.0 / 5.0
_EPS64 = np.finfo(np.float64).eps
#: exponent of machine epsilon in the step of :func:`gradient_jvp` (see there)
JVP_STEP_EXPONENT = 1.0 / 4.0


class CountedFunction:
    """Wrap ``f(leaves) -> float`` and count its evaluations.

    Parameters
    ----------
    f : callable
        Takes a list of float64 arrays, returns a real scalar.
    name : str
        Used in error messages (``"loss"``).
    eps : float, default float64 machine epsilon
        Relative precision the function is assumed to compute with (raised
        automatically when it returns float32/float16; pass float32's epsilon
        when it computes in float32 internally, e.g. for float32 parameters).

    Attributes
    ----------
    calls : int
        Number of evaluations so far.
    eps : float
        Machine epsilon of the dtype the function returns (float32 results give
        a larger rounding floor).
    """

    def __init__(self, f: Callable[[list[np.ndarray]], float], name: str = "loss",
                 eps: float = _EPS64):
        self.f = f
        self.name = name
        self.calls = 0
        self.eps = eps

    def __call__(self, leaves: list[np.ndarray]) -> float:
        self.calls += 1
        out = self.f([np.array(a, dtype=np.float64, copy=True) for a in leaves])
        return self._scalar(out)

    def _scalar(self, out) -> float:
        if not isinstance(out, (np.ndarray, np.generic)) and hasattr(out, "item"):
            out = out.item()  # a gradwise/torch scalar tensor
        if out is None:
            raise TypeError(f"{self.name} returned None; it must return a number (a float)")
        arr = np.asarray(out)
        if arr.size != 1:
            raise ValueError(
                f"{self.name} must return a scalar, got an array of shape {arr.shape}; "
                "return the sum or mean of the per-sample losses"
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"{self.name} returned {type(out).__name__} {str(out)[:60]!r}, not a real "
                "number; it must return a float"
            )
        if arr.dtype == np.float32 or arr.dtype == np.float16:
            self.eps = max(self.eps, float(np.finfo(arr.dtype).eps))
        val = float(arr.reshape(()))
        if not np.isfinite(val):
            raise FloatingPointError(f"{self.name} returned {val} at the checked point")
        return val


def check_deterministic(f: Callable, leaves: Sequence[np.ndarray], f0: float) -> None:
    """Evaluate ``f`` once more at ``leaves``; raise ValueError when it does not return ``f0``.

    Finite differences of a random function (dropout, a random mini-batch or
    ``np.random`` inside the loss) are noise, and their large error estimates
    would let any gradient pass. Deterministic NumPy code returns bit-identical
    values; a relative difference up to 1e-13 is allowed for reductions whose
    order may vary between calls.
    """
    f1 = f([np.array(a, dtype=np.float64, copy=True) for a in leaves])
    if abs(f1 - f0) > 1e-13 * max(abs(f0), abs(f1)):
        name = getattr(f, "name", "the function")
        raise ValueError(
            f"{name} returned {f0!r} and then {f1!r} at the same point: it is random (dropout, "
            "a random mini-batch, np.random inside?). A gradient cannot be checked against a "
            f"random function: fix its randomness (seed it inside {name}, or pass the batch in)"
        )


class NonFiniteLoss(FloatingPointError):
    """The function is finite at the point but not at a finite-difference step from it.

    Attributes
    ----------
    leaf : int
        Index of the perturbed leaf (None for a directional step).
    index : tuple
        Index of the perturbed entry in that leaf.
    x, step : float
        The entry's value and the largest step tried.
    label : str or None
        The entry's name in the user's terms, set by the caller (``'W[0, 1]'``).
    """

    def __init__(self, cause: BaseException, leaf=None, index=(), x=0.0, step=0.0):
        super().__init__(str(cause))
        self.cause, self.leaf, self.index, self.x, self.step = cause, leaf, index, x, step
        self.label: str | None = None

    def __str__(self):
        where = self.label or (f"entry {self.index} of parameter block {self.leaf}"
                               if self.leaf is not None else "a point along a random direction")
        return (
            f"{str(self.cause).replace(' at the checked point', '')} at {where} = {self.x:.6g} ± {self.step:.2g} (a finite-difference step "
            "away from the checked point, where it is finite); finite differences need the "
            f"function finite within ±{self.step:.2g} of every entry. Check from a point inside "
            "its domain (away from log(0), sqrt(0), a division by zero) or where exp does not "
            "overflow"
        )


def _perturbed(f, leaves, where):
    """Call ``f`` at a perturbed point, turning a non-finite value into NonFiniteLoss."""
    try:
        return f(leaves)
    except NonFiniteLoss:
        raise
    except FloatingPointError as e:
        raise NonFiniteLoss(e, *where) from None


@dataclass
class Derivative:
    """A finite-difference derivative with its error estimate.

    Attributes
    ----------
    value : float
        Richardson-extrapolated central difference.
    error : float
        Estimated absolute error (truncation + rounding).
    forward, backward : float
        Second-order one-sided differences; they differ at a kink.
    kink : bool
        True when the one-sided differences disagree by more than the error
        estimate allows (a non-differentiable point within the step).
    """

    value: float
    error: float
    forward: float
    backward: float
    kink: bool


def _richardson(phi: Callable[[float], float], h: float, f0: float, eps: float) -> Derivative:
    """Derivative of the scalar function ``phi`` at 0 with step ``h`` (see module doc)."""
    fp, fm = phi(h), phi(-h)
    fp2, fm2 = phi(h / 2), phi(-h / 2)
    d1 = (fp - fm) / (2 * h)
    d2 = (fp2 - fm2) / h
    r = (4 * d2 - d1) / 3
    rounding = eps * (abs(fp) + abs(fm) + abs(fp2) + abs(fm2) + abs(f0)) / h
    error = abs(r - d2) + rounding
    fwd = (-3 * f0 + 4 * fp2 - fp) / h
    bwd = (3 * f0 - 4 * fm2 + fm) / h
    # smooth: fwd - bwd = O(h^3 f'''') while d1 - d2 = h^2 f'''/8 (Taylor expansion); at a
    # kink the difference is the jump of f'. A false flag at a smooth point is harmless:
    # callers only use it to explain an analytic value lying between fwd and bwd.
    kink = abs(fwd - bwd) > 10 * (abs(d1 - d2) + rounding)
    return Derivative(r, error, fwd, bwd, bool(kink))


@dataclass
class NumericGradient:
    """Result of :func:`numeric_gradient`, one array per leaf (NaN where not computed).

    Attributes
    ----------
    value : list of ndarray
        Richardson-extrapolated central differences.
    error : list of ndarray
        Estimated absolute error of each entry.
    kink : list of ndarray of bool
        Entries where the one-sided differences disagree (a non-differentiable
        point within the step).
    lower, upper : list of ndarray
        Smaller and larger one-sided difference of each entry: any subgradient
        lies between them at a kink.
    """

    value: list
    error: list
    kink: list
    lower: list
    upper: list


def numeric_gradient(
    f: Callable[[list[np.ndarray]], float],
    leaves: Sequence[np.ndarray],
    *,
    entries: Sequence[tuple[int, tuple]] | None = None,
    f0: float | None = None,
) -> NumericGradient:
    """Gradient of ``f`` by Richardson-extrapolated central differences.

    Parameters
    ----------
    f : callable
        ``f(leaves) -> float`` where ``leaves`` is a list of float64 arrays. Wrap
        it in :class:`CountedFunction` to count evaluations. ``f`` receives fresh
        copies, so it may modify them.
    leaves : sequence of array_like
        Point at which to differentiate (converted to float64; never modified).
    entries : sequence of (leaf index, index tuple), optional
        Differentiate only these entries (the others are NaN in the result).
        Default: all entries.
    f0 : float, optional
        ``f(leaves)`` if already known (saves one evaluation).

    Returns
    -------
    NumericGradient
        Values, error estimates, kink flags and one-sided bounds, each a list of
        float64 arrays with the shapes of ``leaves``.

    Notes
    -----
    Costs ``4·len(entries) + 1`` evaluations (module docstring: method and step).
    """
    base = [np.array(a, dtype=np.float64, copy=True) for a in leaves]
    eps = getattr(f, "eps", _EPS64)
    if f0 is None:
        f0 = f(base)
    eps = getattr(f, "eps", eps)
    grad = [np.full(a.shape, np.nan) for a in base]
    err = [np.full(a.shape, np.nan) for a in base]
    kink = [np.zeros(a.shape, dtype=bool) for a in base]
    lower = [np.full(a.shape, np.nan) for a in base]
    upper = [np.full(a.shape, np.nan) for a in base]
    if entries is None:
        entries = [(k, idx) for k, a in enumerate(base) for idx in np.ndindex(*a.shape)]
    for k, idx in entries:
        x = base[k][idx]
        h = (getattr(f, "eps", _EPS64) ** STEP_EXPONENT) * max(1.0, abs(float(x)))

        def phi(t, k=k, idx=idx, x=x, h=h):
            pert = list(base)
            a = base[k].copy()
            a[idx] = x + t
            pert[k] = a
            return _perturbed(f, pert, (k, tuple(int(i) for i in idx), float(x), h))

        d = _richardson(phi, h, f0, getattr(f, "eps", eps))
        grad[k][idx] = d.value
        err[k][idx] = d.error
        kink[k][idx] = d.kink
        lower[k][idx] = min(d.forward, d.backward)
        upper[k][idx] = max(d.forward, d.backward)
    return NumericGradient(grad, err, kink, lower, upper)


def directional_derivative(
    f: Callable[[list[np.ndarray]], float],
    leaves: Sequence[np.ndarray],
    direction: Sequence[np.ndarray],
    *,
    f0: float | None = None,
    step_scale: float = 1.0,
) -> Derivative:
    """Derivative of ``f`` at ``leaves`` along ``direction`` (4 or 5 evaluations).

    Parameters
    ----------
    f : callable
        ``f(leaves) -> float`` as in :func:`numeric_gradient`.
    leaves, direction : sequence of array_like
        Point and direction, same shapes. Entries of ``direction`` that are 0
        leave the corresponding entries unperturbed.
    f0 : float, optional
        ``f(leaves)`` if already known.
    step_scale : float, default 1.0
        Multiplies the step: a smaller step crosses fewer kinks of a piecewise
        linear loss (ReLU networks) at the price of more rounding error.

    Returns
    -------
    Derivative
        ``value`` estimates ``Σ ∂f/∂x_i · v_i``; the step is
        ``step_scale · eps^(1/5) · max(1, max|x|) / max|v|`` (module docstring).
    """
    base = [np.array(a, dtype=np.float64, copy=True) for a in leaves]
    v = [np.asarray(d, dtype=np.float64) for d in direction]
    if f0 is None:
        f0 = f(base)
    vmax = max((float(np.max(np.abs(d))) for d in v if d.size), default=0.0)
    if vmax == 0.0:
        return Derivative(0.0, 0.0, 0.0, 0.0, False)
    active = [np.abs(d) > 0 for d in v]
    xmax = max(
        (float(np.max(np.abs(a[m]))) for a, m in zip(base, active) if m.any()), default=0.0
    )
    h = step_scale * (getattr(f, "eps", _EPS64) ** STEP_EXPONENT) * max(1.0, xmax) / vmax

    def phi(t):
        return _perturbed(f, [a + t * d for a, d in zip(base, v)], (None, (), xmax, h * vmax))

    return _richardson(phi, h, f0, getattr(f, "eps", _EPS64))


def gradient_jvp(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Derivative of a numerically computed gradient along ``v``: a Hessian-vector
    product ``H(x) v`` from two gradients (one central difference).

    Parameters
    ----------
    grad : callable
        ``grad(x) -> ndarray`` of the same shape as ``x`` (float64); here gradients
        from :func:`numeric_gradient`.
    x, v : ndarray
        Point and direction (1-D, float64).

    Returns
    -------
    ndarray
        ``(grad(x + h v) - grad(x - h v)) / (2h)``; zeros for ``v = 0`` (no call).

    Notes
    -----
    The step is ``h = eps^(1/4) · max(1, ‖x‖) / ‖v‖``: a central difference of a
    function known to relative accuracy δ has its best step at ``δ^(1/3)``
    (Nocedal & Wright, 2nd ed., §8.1); Richardson gradients carry δ ≈ eps^(4/5),
    hence ``eps^(4/15) ≈ eps^(1/4)`` (:data:`JVP_STEP_EXPONENT`).
    """
    nv = float(np.linalg.norm(v))
    if nv == 0:
        return np.zeros_like(x)
    h = _EPS64**JVP_STEP_EXPONENT * max(1.0, float(np.linalg.norm(x))) / nv
    return (grad(x + h * v) - grad(x - h * v)) / (2 * h)
