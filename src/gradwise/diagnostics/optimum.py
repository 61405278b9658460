"""Reference optima: where gradient descent should end up, and how long it takes.

- Least squares: the ordinary-least-squares solution by :func:`numpy.linalg.lstsq`
  (SVD based, so rank-deficient designs give the minimum-norm solution).
- Logistic regression: the maximum-likelihood (optionally L2-penalised)
  coefficients by Newton's method (IRLS) with backtracking; no finite optimum
  exists for separable data, which is reported as ``converged = False``.
- Any quadratic loss given as a function: one Newton step from any point lands on
  the minimiser, ``θ* = θ - H⁻¹∇L(θ)`` (Nocedal & Wright, *Numerical
  Optimization*, 2nd ed., §3.3); the loss is accepted as quadratic when the
  second-order model predicts ``L(θ*)`` to 1e-8 relative.

For gradient descent on a quadratic the error along the Hessian eigenvector
``uᵢ`` evolves as ``cᵢ(t) = cᵢ(0) ρᵢᵗ`` with ``ρᵢ = |1 - ηλᵢ|`` (heavy ball: the
spectral radius, :func:`gradwise.diagnostics.curvature.amplification`), so the
number of steps until ``‖θ_t - θ*‖ <= tol`` follows from the eigenvalues and the
initial error (:func:`steps_to_tolerance`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_limits

from gradwise import _scaling
from gradwise._result import Result
from gradwise.diagnostics.curvature import Objective, amplification, as_objective, hessian

__all__ = [
    "separable",
    "Optimum",
    "least_squares",
    "logistic",
    "quadratic_optimum",
    "steps_to_tolerance",
    "condition_number",
    "design_matrix",
    "gram",
    "DIST_RTOL",
]

#: a run has reached the optimum when ‖θ - θ*‖ <= DIST_RTOL · max(1, ‖θ*‖): the
#: coefficients then agree with the reference to about three significant digits,
#: the precision at which users compare with scikit-learn's printed fit.
DIST_RTOL = 1e-3
#: relative accuracy required of the second-order model for a loss to count as
#: quadratic (well above float64 rounding of the loss, far below any curvature
#: change of a non-quadratic loss over a Newton step)
QUADRATIC_RTOL = 1e-8
#: the same for a finite-difference Hessian (untraceable loss): its entries carry
#: relative errors of about eps^(2/5)·... ≈ 1e-6, so the model is checked to 1e-4
QUADRATIC_RTOL_FD = 1e-4


class Optimum(Result):
    """A reference optimum (a :class:`~gradwise.Result`).

    Keys: ``params`` (the optimum, same structure as the user's parameters),
    ``loss`` (loss at the optimum), ``method`` (``"lstsq"``,
    ``"newton"``), and when computed from a loss function: ``x`` (flat optimum),
    ``eigenvalues``/``eigenvectors`` of the (constant) Hessian.
    """

    title = "Reference optimum"

    def _summary_lines(self) -> list[str]:
        return [f"{self.method}: loss {self.loss:.6g} at {self.params}"]


def design_matrix(X: Any, fit_intercept: bool = True) -> np.ndarray:
    """``X`` as a float64 (n, d) matrix, with a final column of ones if ``fit_intercept``."""
    A = np.asarray(X, dtype=float)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"X must be 1-D or 2-D (n_samples, n_features), got shape {A.shape}")
    if fit_intercept:
        A = np.hstack([A, np.ones((len(A), 1))])
    return A


#: design matrices with more entries than this use BLAS for the Gram matrix
GRAM_EINSUM_MAX = 200_000


def gram(A: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``AᵀA/n`` (or ``Aᵀ diag(w) A/n``) for a tall, thin design matrix.

    Computed with :func:`numpy.einsum` rather than BLAS: multithreaded OpenBLAS
    took 60-100 ms for a 569×31 product on a loaded 2-core machine (thread
    wake-up), einsum 0.2 ms.
    """
    if A.size > GRAM_EINSUM_MAX:  # large products: BLAS wins despite its start-up
        B = A if weights is None else A * weights[:, None]
        return B.T @ A / len(A)
    if weights is None:
        return np.einsum("ij,ik->jk", A, A) / len(A)
    return np.einsum("ij,i,ik->jk", A, weights, A) / len(A)


def condition_number(X: Any, fit_intercept: bool = True, standardize: bool = False) -> float:
    """Condition number of the least-squares Hessian ``XᵀX/n`` (with the intercept
    column if ``fit_intercept``), optionally after standardising each feature
    (zero mean, unit variance; constant columns are left as they are).

    This is κ of the Hessian of the mean squared error of a linear model on ``X``
    (the factor 2 cancels), so GD needs about ``κ/2 · ln(1/tol)`` steps at the best
    constant step (Nesterov 2018, Thm 2.1.15).
    """
    A = np.asarray(X, dtype=float)
    A = A[:, None] if A.ndim == 1 else A
    if standardize:
        A = _scaling.standardize(A)[0]
    A = design_matrix(A, fit_intercept)
    # one thread: on a loaded machine threaded LAPACK/BLAS stalled for seconds on a
    # 785×785 eigenproblem that takes 0.06 s on one core
    with threadpool_limits(limits=1):
        ev = np.linalg.eigvalsh(gram(A))
    return float(ev[-1] / ev[0]) if ev[0] > 0 else math.inf


def least_squares(X: Any, y: Any, fit_intercept: bool = True) -> Optimum:
    """Ordinary least squares by :func:`numpy.linalg.lstsq`.

    Parameters
    ----------
    X : array_like, shape (n_samples,) or (n_samples, n_features)
    y : array_like, shape (n_samples,) or (n_samples, n_targets)
    fit_intercept : bool, default True

    Returns
    -------
    Optimum
        ``coef`` (n_features,) or (n_features, n_targets), ``intercept``,
        ``loss`` (the mean squared error at the optimum), ``params``
        (``{"coef", "intercept"}``), ``method = "lstsq"``.
    """
    A = design_matrix(X, fit_intercept)
    Y = np.asarray(y, dtype=float)
    if len(Y) != len(A):
        raise ValueError(f"X has {len(A)} samples but y has {len(Y)}")
    sol = np.linalg.lstsq(A, Y, rcond=None)[0]
    coef, icpt = (sol[:-1], sol[-1]) if fit_intercept else (sol, np.zeros(sol.shape[1:]))
    mse = float(np.mean((A @ sol - Y) ** 2))
    return Optimum(coef=coef, intercept=icpt, loss=mse, method="lstsq",
                   params={"coef": coef, "intercept": icpt})


def logistic(X: Any, y: Any, fit_intercept: bool = True, alpha: float = 0.0,
             max_iter: int = 100) -> Optimum:
    """Binary logistic regression optimum by Newton's method (IRLS).

    Minimises the mean log loss ``mean(softplus(z) - y z)``, ``z = Xw + b``, plus
    ``alpha/2 ‖w‖²`` (the intercept is not penalised), with Newton steps and
    Armijo backtracking (Nocedal & Wright §3.1, §6; Hastie, Tibshirani & Friedman,
    *Elements of Statistical Learning*, §4.4.1) on standardised features, mapped
    back to the raw units at the end.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
    y : array_like of {0, 1}, shape (n_samples,)
    fit_intercept : bool, default True
    alpha : float, default 0.0
        L2 penalty. With linearly separable data and ``alpha = 0`` no finite
        optimum exists (the loss → 0 as ‖w‖ → ∞): the result then has
        ``converged = False`` and ``separable = True``, whatever Newton's
        gradient test says (the gradient vanishes along the way to infinity).
    max_iter : int, default 100

    Returns
    -------
    Optimum
        ``coef``, ``intercept``, ``loss`` (mean log loss at the optimum, without the
        penalty), ``converged``, ``separable``, ``method = "newton"``; for separable
        data the last Newton iterate (not an optimum).
    """
    Xa = np.asarray(X, dtype=float)
    Xa = Xa[:, None] if Xa.ndim == 1 else Xa
    t = np.asarray(y, dtype=float).ravel()
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("logistic: y must contain only 0 and 1")
    if len(t) != len(Xa):
        raise ValueError(f"X has {len(Xa)} samples but y has {len(t)}")
    Z, mu, sd = _scaling.standardize(Xa, center=fit_intercept)
    A = design_matrix(Z, fit_intercept)
    n, d = A.shape
    pen = np.ones(d)
    if fit_intercept:
        pen[-1] = 0.0

    def f(w):
        z = A @ w
        return float(np.mean(np.logaddexp(0.0, z) - t * z) + 0.5 * alpha * np.sum(pen * w * w))

    w = np.zeros(d)
    fw = f(w)
    converged = False
    for _ in range(max_iter):
        p = expit(A @ w)
        g = A.T @ (p - t) / n + alpha * pen * w
        if np.max(np.abs(g)) <= 1e-10:
            converged = True
            break
        H = gram(A, p * (1 - p)) + np.diag(alpha * pen)
        try:
            step = np.linalg.solve(H + 1e-12 * np.eye(d), g)
        except np.linalg.LinAlgError:
            break
        a = 1.0
        while a > 1e-10 and f(w - a * step) > fw - 1e-4 * a * float(g @ step):
            a /= 2
        w = w - a * step
        fw = f(w)
        if fw < 1e-9:  # separable: the loss goes to 0 as the weights grow without bound
            break
    sep = alpha == 0 and separable(A, t)
    coef, icpt = _scaling.unscale_linear(w[:-1] if fit_intercept else w,
                                         w[-1] if fit_intercept else 0.0, mu, sd)
    icpt = float(icpt)
    z = Xa @ coef + icpt
    return Optimum(coef=coef, intercept=icpt, method="newton", converged=converged and not sep,
                   separable=sep,
                   loss=float(np.mean(np.logaddexp(0.0, z) - t * z)),
                   params={"coef": coef, "intercept": icpt})


def separable(A: Any, y: Any) -> bool:
    """Whether the classes 0/1 of ``y`` are strictly linearly separable by ``A @ w``.

    Feasibility of the linear program ``s_i (A_i · w) >= 1`` with ``s_i = 2 y_i - 1``
    (any strict separation can be scaled to margin 1), solved by
    :func:`scipy.optimize.linprog` (HiGHS). Separable data have no finite
    maximum-likelihood logistic fit (Albert & Anderson, "On the existence of maximum
    likelihood estimates in logistic regression models", Biometrika 1984).

    Parameters
    ----------
    A : array_like, shape (n_samples, n_columns)
        The design (include a column of ones for an intercept).
    y : array_like of {0, 1}, shape (n_samples,)
    """
    from scipy.optimize import linprog

    A = np.asarray(A, dtype=float)
    s = 2.0 * np.asarray(y, dtype=float).ravel() - 1.0
    res = linprog(np.zeros(A.shape[1]), A_ub=-(s[:, None] * A), b_ub=-np.ones(len(A)),
                  bounds=(None, None), method="highs")
    return bool(res.status == 0)


def quadratic_optimum(loss: Any, params: Any = None, *, max_params: int = 200,
                      at: np.ndarray | None = None) -> Optimum | None:
    """The minimiser of ``loss`` if it is a convex quadratic of the parameters.

    One Newton step from ``params`` with the exact Hessian (``n`` HVPs); the loss
    counts as quadratic when ``L(θ*)`` equals the second-order prediction
    ``L(θ) - ½ gᵀH⁻¹g`` to ``QUADRATIC_RTOL``.

    Parameters
    ----------
    loss : callable or Objective
    params : parameters (any structure)
    max_params : int, default 200
        Larger problems are not attempted (returns None).
    at : ndarray, shape (n,), optional
        Flat point to take the Newton step from (default ``params``). Choose the
        point with the smaller loss: from a diverged point (loss 1e100) the step
        loses all digits to cancellation.

    Returns
    -------
    Optimum or None
        None when the loss is not a quadratic with a positive definite Hessian,
        or too large. Otherwise ``params`` (user structure), ``x`` (flat),
        ``loss``, ``eigenvalues``, ``eigenvectors``, ``method = "newton"``.
    """
    obj = as_objective(loss, params)
    if obj.n > max_params:
        return None
    H = hessian(obj)
    ev, U = np.linalg.eigh(H)
    if not ev[0] > 1e-12 * max(abs(ev[-1]), 1e-300):
        return None
    x0 = obj.x0 if at is None else np.asarray(at, dtype=float)
    f0, g = obj.value_and_grad(x0)
    step = U @ ((U.T @ g) / ev)
    xs = x0 - step
    predicted = f0 - 0.5 * float(g @ step)
    try:
        fs = obj.value(xs)
    except (FloatingPointError, OverflowError, ValueError):
        return None
    scale = max(abs(f0), abs(fs), 1e-300)
    # a finite-difference Hessian (untraceable loss) is accurate to ~1e-6 relative,
    # so the model check is looser and the step is refined with accurate gradients
    rtol = QUADRATIC_RTOL if obj.traceable else QUADRATIC_RTOL_FD
    if not abs(fs - predicted) <= rtol * scale:
        return None
    for _ in range(0 if obj.traceable else 2):
        fs, g = obj.value_and_grad(xs)
        xs = xs - U @ ((U.T @ g) / ev)
    fs = obj.value(xs)
    return Optimum(params=obj.unflat(xs), x=xs, loss=fs, method="newton",
                   eigenvalues=ev, eigenvectors=U)


def steps_to_tolerance(
    eigenvalues: np.ndarray,
    eigenvectors: np.ndarray,
    error0: np.ndarray,
    lr: float,
    tol: float,
    momentum: float = 0.0,
    max_steps: float = 1e12,
) -> float:
    """Steps of gradient descent on a quadratic until ``‖θ_t - θ*‖ <= tol``.

    Parameters
    ----------
    eigenvalues : ndarray, shape (n,)
        Hessian eigenvalues λᵢ.
    eigenvectors : ndarray, shape (n, n)
        Columns uᵢ.
    error0 : ndarray, shape (n,)
        Initial error ``θ_0 - θ*`` (flat).
    lr : float
        Step η.
    tol : float
        Distance to reach.
    momentum : float, default 0.0
        Heavy ball β (the error along uᵢ then decays like ρᵢᵗ with ρᵢ the spectral
        radius; the transient factor is ignored).
    max_steps : float, default 1e12

    Returns
    -------
    float
        The smallest integer ``t`` with ``sqrt(Σ cᵢ² ρᵢ^{2t}) <= tol``; ``inf`` if
        some direction with a non-negligible error does not contract (ρ >= 1) or
        more than ``max_steps`` are needed; 0 if already within ``tol``.
    """
    c2 = (eigenvectors.T @ error0) ** 2
    rho = np.array([amplification(lr, lam, momentum) for lam in eigenvalues])
    keep = c2 > (tol * 1e-6) ** 2
    c2, rho = c2[keep], rho[keep]

    def dist(t: float) -> float:
        with np.errstate(over="ignore", under="ignore"):
            return float(np.sqrt(np.sum(c2 * rho ** (2 * t))))

    if dist(0) <= tol:
        return 0.0
    if np.any(rho >= 1):
        return math.inf
    hi = 1.0
    while dist(hi) > tol:
        hi *= 2
        if hi > max_steps:
            return math.inf
    lo = hi / 2 if hi > 1 else 0.0
    while hi - lo > 1:
        mid = math.floor((lo + hi) / 2)
        lo, hi = (mid, hi) if dist(mid) > tol else (lo, mid)
    return float(hi)


def distance(x: np.ndarray, optimum: Optimum) -> float:
    """Euclidean distance ``‖x - θ*‖`` between a flat parameter vector and a
    quadratic optimum from :func:`quadratic_optimum`."""
    return float(np.linalg.norm(np.asarray(x, dtype=float) - optimum["x"]))


def tolerance(optimum: Optimum) -> float:
    """Distance counted as "at the optimum": ``DIST_RTOL · max(1, ‖θ*‖)``."""
    return DIST_RTOL * max(1.0, float(np.linalg.norm(optimum["x"])))


__all__ += ["distance", "tolerance", "Objective"]
