"""Curvature of a loss: sharpness (λmax), the Hessian spectrum, and the stability limit.

Gradient descent on a quadratic ``L(θ) = ½ (θ-θ*)ᵀ H (θ-θ*)`` multiplies the error
along the Hessian eigenvector of eigenvalue λ by ``1 - ηλ`` per step (Nesterov,
*Lectures on Convex Optimization*, 2nd ed., §1.2.3; Goodfellow, Bengio & Courville,
*Deep Learning*, §4.3.1). The step is stable iff ``|1 - ηλmax| < 1``, i.e.
``η < 2/λmax``, and the loss along that direction then grows or shrinks by
``(1 - ηλ)²`` per step. For heavy-ball momentum β the error obeys
``e_{t+1} = (1 + β - ηλ) e_t - β e_{t-1}``; its characteristic roots lie inside the
unit circle iff ``0 < ηλ < 2(1 + β)`` (Polyak 1964; Goh, "Why momentum really
works", Distill 2017). Adaptive methods (Adam, RMSProp, Adagrad) rescale every
coordinate by running gradient statistics, so no bound in terms of λmax exists and
only the observed behaviour counts (Cohen et al., "Adaptive gradient methods at
the edge of stability", 2022).

λmax comes from Hessian-vector products (HVPs, Pearlmutter 1994) through the
engine's :func:`gradwise.hvp`, either as the exact Hessian (``n`` HVPs, then
``numpy.linalg.eigvalsh``) for small problems or by Lanczos (one run with full
reorthogonalisation, Ritz values by :func:`scipy.linalg.eigh_tridiagonal`; or
ARPACK, :func:`scipy.sparse.linalg.eigsh` on a
:class:`~scipy.sparse.linalg.LinearOperator`).
A loss the engine cannot trace is differentiated by finite differences
(:mod:`gradwise.diagnostics.finite_diff`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
from scipy.linalg import eigh_tridiagonal

from gradwise._result import Finding, Result
from gradwise._tree import flatten, unflatten
from gradwise._util import to_array
from gradwise.diagnostics import finite_diff
from gradwise.optim import ADAPTIVE, normalize

__all__ = [
    "Objective",
    "Spectrum",
    "StepBound",
    "hessian",
    "spectrum",
    "sharpness",
    "stable_lr",
    "amplification",
    "critical_lr",
    "lambda_from_growth",
    "ADAPTIVE",
]

#: number of parameters up to which the Hessian is formed exactly (n HVPs ≤ the
#: Lanczos budget below, so exact is never more expensive)
EXACT_MAX = 50
#: Lanczos residual tolerance. For a Ritz pair (θ, x) of a symmetric matrix, some
#: eigenvalue lies within ‖Hx - θx‖ of θ (Parlett, *The Symmetric Eigenvalue
#: Problem*, Thm 4.5.1), so stopping at ‖r‖ <= tol·|θ| with tol = 1e-3 bounds the
#: relative error of λmax by 1e-3 (in practice far less: the error is about
#: ‖r‖²/gap). LANCZOS_NCV is ARPACK's subspace size for ``method="arpack"``.
LANCZOS_NCV = 15
LANCZOS_TOL = 1e-3


# --------------------------------------------------------------------------- objective
class Objective:
    """A user's loss seen as a function of one flat float64 vector.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> scalar`` (a gradwise Tensor, a float or a 0-d array).
    params : array_like, tuple/list or dict of arrays
        The point; its structure is kept for calls to ``loss``.

    Attributes
    ----------
    x0 : ndarray, shape (n,)
        The flattened parameters.
    traceable : bool
        False when the engine could not trace ``loss`` (it calls ``float()``,
        pandas, ...); gradients then come from finite differences.
    n_loss, n_grad, n_hvp : int
        Evaluation counts.
    """

    def __init__(self, loss: Callable[[Any], Any], params: Any):
        if not callable(loss):
            raise TypeError(f"loss must be callable as loss(params), got {type(loss).__name__}")
        leaves, info, self._treedef = flatten(params)
        arrays = [np.asarray(to_array(a), dtype=np.float64) for a in leaves]
        self.shapes = [a.shape for a in arrays]
        self.names = [leaf.name for leaf in info]
        self.sizes = [a.size for a in arrays]
        self.x0 = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)
        self.loss = loss
        self.n_loss = self.n_grad = self.n_hvp = 0
        self.traceable: bool | None = None
        self._fd = finite_diff.CountedFunction(self._leaf_loss)

    @property
    def n(self) -> int:
        return self.x0.size

    # structure <-> vector
    def unflat(self, x: np.ndarray) -> Any:
        out, i = [], 0
        for shp, sz in zip(self.shapes, self.sizes):
            out.append(np.array(x[i : i + sz].reshape(shp)))
            i += sz
        return unflatten(self._treedef, out)

    def flat(self, tree: Any) -> np.ndarray:
        leaves, _, _ = flatten(tree)
        return np.concatenate([np.asarray(to_array(a), dtype=np.float64).ravel() for a in leaves])

    def split(self, x: np.ndarray) -> list[np.ndarray]:
        """The blocks of a flat vector, in parameter order."""
        return np.split(np.asarray(x), np.cumsum(self.sizes)[:-1]) if self.sizes else []

    def _leaf_loss(self, leaves: list[np.ndarray]) -> float:
        return _scalar(self.loss(unflatten(self._treedef, leaves)))

    # evaluations
    def value(self, x: np.ndarray) -> float:
        self.n_loss += 1
        return _scalar(self.loss(self.unflat(x)))

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and gradient at ``x`` (engine; finite differences if untraceable)."""
        self.n_grad += 1
        if self.traceable is not False:
            try:
                import gradwise

                v, g = gradwise.value_and_grad(self.loss)(self.unflat(x))
                self.traceable = True
                return _scalar(v), self.flat(g)
            except (TypeError, RuntimeError, AttributeError, NotImplementedError):
                if self.traceable:
                    raise
                self.traceable = False
        leaves = self.split(x)
        f0 = self._fd(leaves)
        g = finite_diff.numeric_gradient(
            self._fd, [lf.reshape(s) for lf, s in zip(leaves, self.shapes)], f0=f0
        ).value
        return f0, np.concatenate([np.asarray(a, dtype=float).ravel() for a in g])

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_grad(x)[1]

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product ``H(x) v`` (engine; if untraceable, a central
        difference of finite-difference gradients along ``v``,
        :func:`gradwise.diagnostics.finite_diff.gradient_jvp`)."""
        self.n_hvp += 1
        if self.traceable is None:
            self.value_and_grad(x)
            self.n_grad -= 1
        if self.traceable:
            import gradwise

            return self.flat(gradwise.hvp(self.loss, self.unflat(x), self.unflat(v)))
        return finite_diff.gradient_jvp(self.grad, x, v)


def _scalar(v: Any) -> float:
    arr = np.asarray(to_array(v), dtype=np.float64)
    if arr.size != 1:
        raise ValueError(
            f"loss must return a scalar, got shape {arr.shape}; return the mean or sum"
        )
    return float(arr.reshape(()))


def as_objective(loss: Any, params: Any = None) -> Objective:
    """``loss`` if it already is an :class:`Objective`, else ``Objective(loss, params)``
    after checking the user's input (:func:`check_objective`)."""
    if isinstance(loss, Objective):
        return loss
    if params is None:
        raise ValueError("params are required with a loss function: sharpness(loss, params)")
    return check_objective(Objective(loss, params))


def check_objective(obj: Objective, finite: bool = True) -> Objective:
    """Refuse parameters with NaN/inf and a loss that is not a finite scalar at them
    (costs one loss evaluation). Curvature there would be NaN or meaningless, and a
    loss returning None or a vector would fail later with an unrelated message.
    With ``finite=False`` only the loss's type and shape are checked (a diverged
    run's last point may be NaN and still be diagnosed from its history).

    Raises
    ------
    ValueError
        Non-finite parameters (the block is named), a loss that is not a scalar,
        or a NaN/inf loss at ``params``.
    TypeError
        A loss returning something that is not a number (e.g. None).
    """
    for name, block in zip(obj.names, obj.split(obj.x0)):
        if finite and not np.all(np.isfinite(block)):
            raise ValueError(f"params contain NaN or inf (in {name!r}); give finite parameters")
    out = obj.loss(obj.unflat(obj.x0))
    obj.n_loss += 1
    raw = to_array(out, "loss(params)")
    if raw is None or isinstance(raw, (str, bytes)) or np.asarray(raw).dtype.kind not in "biuf":
        raise TypeError(f"loss(params) must return a scalar number, got {type(out).__name__}")
    value = _scalar(out)
    if finite and not math.isfinite(value):
        raise ValueError(f"loss(params) is {value} at the given params; curvature needs a finite loss there")
    return obj


# --------------------------------------------------------------------------- spectrum
class Spectrum(Result):
    """Curvature at a point (a :class:`~gradwise.Result`).

    Keys: ``lambda_max``, ``lambda_min`` (None when not computed), ``condition``
    (λmax/λmin for a positive definite Hessian, else None), ``eigenvalues`` (all of
    them when ``method == "exact"``), ``method`` (``"exact"`` / ``"lanczos"`` /
    ``"power"``), ``n_hvp`` (Hessian-vector products used), ``n_params``.
    """

    title = "Curvature"

    def _summary_lines(self) -> list[str]:
        s = [f"lambda_max = {self.lambda_max:.6g} ({self.method}, {self.n_hvp} HVPs)"]
        if self.get("lambda_min") is not None:
            s.append(f"lambda_min = {self.lambda_min:.6g}")
        if self.get("condition") is not None:
            s.append(f"condition number = {self.condition:.6g}")
        return s


def hessian(loss: Any, params: Any = None) -> np.ndarray:
    """The exact Hessian of ``loss`` at ``params`` as a dense (n, n) float64 matrix.

    Built from ``n`` Hessian-vector products with the unit vectors (Pearlmutter
    1994) and symmetrised; meant for small problems (n up to a few hundred).

    Parameters
    ----------
    loss : callable or Objective
        ``loss(params) -> scalar``.
    params : array, tuple/list or dict of arrays
        The point. Parameters are flattened block by block in the order of
        :func:`gradwise._tree.flatten`.

    Returns
    -------
    ndarray, shape (n, n)
    """
    obj = as_objective(loss, params)
    n = obj.n
    H = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        H[:, i] = obj.hvp(obj.x0, e)
    return 0.5 * (H + H.T)


def spectrum(
    loss: Any,
    params: Any = None,
    *,
    method: str = "auto",
    which: str = "max",
    max_hvp: int = 50,
    seed: int = 0,
) -> Spectrum:
    """Extreme Hessian eigenvalues of ``loss`` at ``params``.

    Parameters
    ----------
    loss : callable or Objective
        ``loss(params) -> scalar``; traced by the engine (finite differences if it
        cannot be traced).
    params : array, tuple/list or dict of arrays
        The point.
    method : {"auto", "exact", "lanczos", "arpack", "power"}, default "auto"
        ``"auto"``: exact for ``n <= 50`` (n HVPs), Lanczos otherwise (one run with
        full reorthogonalisation); ``"arpack"``: :func:`scipy.sparse.linalg.eigsh`.
    which : {"max", "both"}, default "max"
        ``"both"`` also computes λmin (a second Lanczos run when not exact) and
        the condition number λmax/λmin.
    max_hvp : int, default 50
        HVP budget per Lanczos/power run.
    seed : int, default 0
        Seed of the random start vector.

    Returns
    -------
    Spectrum
        ``lambda_max``, ``lambda_min``, ``condition``, ``eigenvalues``, ``method``,
        ``n_hvp``.

    Raises
    ------
    ValueError
        Unknown ``method``/``which``, or no parameters.
    """
    obj = as_objective(loss, params)
    if method not in ("auto", "exact", "lanczos", "arpack", "power"):
        raise ValueError(
            f"method must be 'auto', 'exact', 'lanczos', 'arpack' or 'power', got {method!r}")
    if which not in ("max", "both"):
        raise ValueError(f"which must be 'max' or 'both', got {which!r}")
    n = obj.n
    if n == 0:
        raise ValueError("no parameters: params is empty")
    start = obj.n_hvp
    if method == "auto":
        method = "exact" if n <= EXACT_MAX else "lanczos"
    if method in ("lanczos", "arpack") and n < 3:
        method = "exact"
    ev = None
    if method == "exact":
        ev = np.linalg.eigvalsh(hessian(obj))
        lmax, lmin = float(ev[-1]), float(ev[0])
    elif method in ("lanczos", "arpack"):
        solver = _lanczos if method == "lanczos" else _arpack
        lmax = solver(obj, "LA", max_hvp, seed)
        lmin = solver(obj, "SA", max_hvp, seed) if which == "both" else None
    else:
        lmax = _power(obj, max_hvp, seed)
        lmin = None
        if which == "both":
            lmin = lmax - _power(obj, max_hvp, seed, shift=lmax)
    cond = lmax / lmin if (lmin is not None and lmin > 0) else None
    return Spectrum(
        lambda_max=lmax,
        lambda_min=lmin if (which == "both" or ev is not None) else None,
        condition=cond,
        eigenvalues=ev,
        method=method,
        n_hvp=obj.n_hvp - start,
        n_params=n,
    )


def _lanczos(obj: Objective, which: str, max_hvp: int, seed: int) -> float:
    """Extreme eigenvalue by one Lanczos run with full reorthogonalisation.

    Golub & Van Loan, *Matrix Computations*, 4th ed., §10.1-10.3; the Ritz values
    are the eigenvalues of the tridiagonal matrix (:func:`scipy.linalg.eigh_tridiagonal`).
    The run stops when the residual of the wanted Ritz pair, ``|β_k s_k|``, is at
    most ``LANCZOS_TOL·|θ|`` (Parlett, Thm 4.5.1: an eigenvalue lies within the
    residual of θ), or after ``max_hvp`` HVPs. One run without restarts keeps the
    HVP count predictable; ARPACK's implicit restarts (``method="arpack"``) used
    55+ HVPs on 1000-parameter problems with clustered or dense top spectra.
    """
    n = obj.n
    kmax = min(max_hvp, n)
    Q = np.zeros((kmax + 1, n))
    q = np.random.default_rng(seed).standard_normal(n)
    Q[0] = q / np.linalg.norm(q)
    alpha: list[float] = []
    beta: list[float] = []
    pick = -1 if which == "LA" else 0
    theta = np.zeros(1)
    for k in range(kmax):
        w = obj.hvp(obj.x0, Q[k])
        alpha.append(float(Q[k] @ w))
        for _ in range(2):  # "twice is enough" (Parlett): full reorthogonalisation
            w = w - Q[: k + 1].T @ (Q[: k + 1] @ w)
        b = float(np.linalg.norm(w))
        theta, S = eigh_tridiagonal(np.array(alpha), np.array(beta))
        scale = max(float(np.max(np.abs(theta))), 1e-300)
        if abs(b * S[-1, pick]) <= LANCZOS_TOL * max(abs(theta[pick]), 1e-12 * scale) or (
                b <= 1e-12 * scale):
            break
        beta.append(b)
        Q[k + 1] = w / b
    return float(theta[pick])


def _arpack(obj: Objective, which: str, max_hvp: int, seed: int) -> float:
    """Extreme eigenvalue by ARPACK (:func:`scipy.sparse.linalg.eigsh` on a
    :class:`~scipy.sparse.linalg.LinearOperator` of HVPs); the best Ritz value so
    far is returned when ``max_hvp`` is reached."""
    n = obj.n
    count = [0]

    def mv(v):
        count[0] += 1
        if count[0] > max_hvp:
            raise _Budget
        return obj.hvp(obj.x0, np.asarray(v, dtype=float).ravel())

    op = spla.LinearOperator((n, n), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    try:
        w = spla.eigsh(op, k=1, which=which, ncv=min(n - 1, LANCZOS_NCV), tol=LANCZOS_TOL,
                       v0=v0, return_eigenvectors=False)
        return float(w[0])
    except spla.ArpackNoConvergence as e:
        if len(e.eigenvalues):
            return float(e.eigenvalues[0])
    except _Budget:
        pass
    raise RuntimeError(f"ARPACK did not converge within {max_hvp} HVPs; use method='lanczos'")


class _Budget(Exception):
    pass


def _power(obj: Objective, max_hvp: int, seed: int, shift: float = 0.0) -> float:
    """Power iteration on ``shift·I - H`` (``H`` itself for ``shift = 0``; Golub &
    Van Loan, *Matrix Computations*, 4th ed., §8.2.1): the Rayleigh quotient of the
    dominant eigenvalue, stopping early once it changes by < 1e-6 (relative).
    With ``shift = λmax`` the dominant eigenvalue is ``λmax - λmin``."""
    v = np.random.default_rng(seed).standard_normal(obj.n)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(max_hvp):
        hv = obj.hvp(obj.x0, v)
        w = shift * v - hv if shift else hv
        new = float(v @ w)
        nw = np.linalg.norm(w)
        if nw == 0:
            return 0.0
        v = w / nw
        done = abs(new - lam) <= 1e-6 * abs(new)
        lam = new
        if done:
            break
    return lam


def sharpness(loss: Any, params: Any = None, *, method: str = "auto", max_hvp: int = 50) -> float:
    """Sharpness: the largest eigenvalue λmax of the Hessian of ``loss`` at ``params``.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> scalar``, e.g. the mean squared error of a model.
    params : array, tuple/list or dict of arrays
        Where to measure it.
    method : {"auto", "exact", "lanczos", "power"}, default "auto"
        Exact (eigvalsh of the n-HVP Hessian) for up to 50 parameters, else
        Lanczos (see :func:`spectrum`).
    max_hvp : int, default 50
        Budget of Hessian-vector products.

    Returns
    -------
    float
        λmax. Relative error <= 1e-3 (see ``LANCZOS_TOL``).

    Examples
    --------
    >>> import numpy as np, gradwise
    >>> X = np.array([[1.0, 0.0], [0.0, 3.0]])
    >>> round(gradwise.sharpness(lambda w: ((X @ w) ** 2).sum(), np.zeros(2)), 6)
    18.0
    """
    return spectrum(loss, params, method=method, max_hvp=max_hvp)["lambda_max"]


# --------------------------------------------------------------------------- step bounds
def critical_lr(lam: float, optimizer: str = "sgd", momentum: float = 0.0) -> float | None:
    """The largest stable step for curvature ``lam``: ``2(1+β)/λ`` (β = 0 for plain
    GD); None for adaptive optimizers or ``lam <= 0`` (module docstring)."""
    name, beta = normalize(optimizer, momentum)
    if name in ADAPTIVE or not lam > 0:
        return None
    return 2.0 * (1.0 + beta) / lam


def amplification(lr: float, lam: float, momentum: float = 0.0) -> float:
    """Per-step factor of the error along an eigendirection of curvature ``lam``.

    Plain GD: ``|1 - ηλ|``. Heavy ball β: the spectral radius of
    ``[[1+β-ηλ, -β], [1, 0]]`` (largest root modulus of
    ``z² - (1+β-ηλ) z + β = 0``). The loss changes by the square of it.
    """
    a = 1.0 + momentum - lr * lam
    roots = np.roots([1.0, -a, momentum]) if momentum else np.array([a])
    return float(np.max(np.abs(roots)))


def lambda_from_growth(growth: float, lr: float, momentum: float = 0.0) -> float:
    """Invert :func:`amplification` for a diverging run.

    A loss multiplied by ``growth`` > 1 per step means the error along the top
    eigendirection grows by ``a = sqrt(growth)``. Above the limit the dominant
    root is real and negative (the error flips sign each step), ``z = -a``; putting
    it into ``z² - (1+β-ηλ)z + β = 0`` gives ``ηλ = 1 + β + a + β/a``
    (GD: ``ηλ = 1 + a``).
    """
    if not growth > 0 or not lr > 0:
        raise ValueError(f"growth and lr must be positive, got {growth!r}, {lr!r}")
    a = math.sqrt(growth)
    return (1.0 + momentum + a + momentum / a) / lr


class StepBound(Result):
    """A stability limit for the learning rate (a :class:`~gradwise.Result`).

    Keys: ``bound`` (largest stable lr, None for adaptive optimizers),
    ``lambda_max``, ``rule`` (the formula used, e.g. ``"2/lambda_max"``),
    ``optimizer``, ``momentum``, ``lr`` (the step checked, or None),
    ``amplification`` (per-step error factor at ``lr``), ``loss_growth``
    (per-step loss factor = amplification²), ``stable``.
    """

    title = "Stable learning rate"

    def __float__(self) -> float:
        return float("nan") if self.bound is None else float(self.bound)

    def _summary_lines(self) -> list[str]:
        if self.bound is None:
            return [f"{self.optimizer}: no curvature bound ({self.rule})"]
        s = [f"lr < {self.bound:.4g}  ({self.rule}, lambda_max = {self.lambda_max:.6g})"]
        if self.get("lr") is not None:
            s.append(
                f"lr {self.lr:g}: error x{self.amplification:.4g} per step, "
                f"loss x{self.loss_growth:.4g} per step ({'stable' if self.stable else 'UNSTABLE'})"
            )
        return s


def stable_lr(
    loss: Any = None,
    params: Any = None,
    *,
    lambda_max: float | None = None,
    lr: float | None = None,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    X: Any = None,
    batch_size: int | None = None,
    curvature_scale: float = 1.0,
) -> StepBound:
    """The largest stable learning rate, and what a given ``lr`` does.

    Parameters
    ----------
    loss, params : callable and parameters, optional
        λmax is computed with :func:`sharpness` unless ``lambda_max`` is given.
    lambda_max : float, optional
        Known sharpness.
    lr : float, optional
        A step to evaluate: the result then holds the predicted per-step
        amplification ``|1 - η λmax|`` (heavy ball: spectral radius) and the loss
        growth per step (its square).
    optimizer : str, default "sgd"
        ``"sgd"`` (full-batch or mini-batch gradient descent; with ``momentum`` β
        heavy ball) or an adaptive method (``"adam"``, ``"rmsprop"``, ...), which has
        no bound.
    momentum : float, default 0.0
        Heavy-ball coefficient β in [0, 1).
    X : array_like, shape (n_samples, n_features), optional
        With ``batch_size=1`` on a least-squares loss, the per-sample bound
        ``2/(c · maxᵢ‖xᵢ‖²)`` is used: the single-sample loss ``(c/2)(xᵢθ - yᵢ)²``
        has Hessian ``c xᵢxᵢᵀ`` whose only non-zero eigenvalue is ``c‖xᵢ‖²``
        (Widrow & Hoff LMS; Haykin, *Adaptive Filter Theory*, §6). ``c`` is
        ``curvature_scale`` (1 for ½·squared error, 2 for squared error).
    batch_size : int, optional
        1 selects the per-sample bound when ``X`` is given.
    curvature_scale : float, default 1.0
        ``c`` above.

    Returns
    -------
    StepBound

    Raises
    ------
    ValueError
        Neither ``lambda_max``, ``loss``+``params`` nor per-sample ``X`` given;
        unknown optimizer; momentum outside [0, 1).

    Examples
    --------
    >>> import gradwise
    >>> b = gradwise.stable_lr(lambda_max=226.24, lr=0.01)
    >>> round(b.bound, 6), round(b.loss_growth, 3)
    (0.00884, 1.594)
    """
    name, beta = normalize(optimizer, momentum)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {beta!r}")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float, np.number))
                           or not (lr > 0 and math.isfinite(lr))):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    rule = "2/lambda_max" if beta == 0 else "2(1+beta)/lambda_max"
    if X is not None and batch_size == 1 and lambda_max is None:
        Xa = np.asarray(X, dtype=float)
        Xa = Xa.reshape(len(Xa), -1)
        lambda_max = curvature_scale * float(np.max(np.sum(Xa * Xa, axis=1)))
        rule = "2/max_i(c*||x_i||^2) (per-sample SGD on least squares)"
    if lambda_max is None:
        if loss is None:
            raise ValueError("give lambda_max, or loss and params, or X with batch_size=1")
        lambda_max = sharpness(loss, params)
    lambda_max = float(lambda_max)
    if name in ADAPTIVE:
        return StepBound(bound=None, lambda_max=lambda_max, optimizer=name, momentum=beta,
                         rule="none: adaptive methods have no lambda_max bound; judge by the loss",
                         lr=lr, amplification=None, loss_growth=None, stable=None)
    bound = critical_lr(lambda_max, name, beta)
    out = StepBound(bound=bound, lambda_max=lambda_max, optimizer=name, momentum=beta,
                    rule=rule, lr=lr, amplification=None, loss_growth=None, stable=None)
    if lr is not None:
        a = amplification(lr, lambda_max, beta)
        out.update(amplification=a, loss_growth=a * a, stable=bool(bound is None or lr < bound))
        if not out.stable:  # the headline must not say ok for an unstable step
            out.findings.append(Finding(
                "lr.too_high", "fault",
                f"learning rate {lr:g} is above the stability limit {bound:.4g} ({rule}): the "
                f"error grows x{a:.4g} per step.",
                evidence={"lr": lr, "bound": bound, "lambda_max": lambda_max,
                          "amplification": a},
                fix={"lr": float(f"{0.9 * bound:.3g}")}))
    return out
