"""Linear, polynomial and logistic regression trained by gradient descent.

All three start from zero weights and train through :func:`gradwise.train`,
so a run is exactly the textbook iteration, e.g. for ``LinearRegression`` with
the defaults (full batch, plain SGD):

    θ ← θ − lr · (2/n) Xᵀ(Xθ − y)        (mean squared error, no ½)

which is the gradient descent users write by hand (scenario S2).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils._param_validation import Interval, StrOptions

from gradwise import nn
from gradwise._scaling import unscale_linear
from gradwise.models._base import GradientEstimator, _ClassifierOutputs

__all__ = ["LinearRegression", "PolynomialRegression", "LogisticRegression"]

#: Largest expanded feature matrix PolynomialRegression builds (degree d on p features
#: has C(p+d, d) - 1 monomials; scikit-learn's PolynomialFeatures allocates them all).
MAX_EXPANDED_BYTES = 2 * 1024**3

_REGRESSION_LOSSES = {"mse": "mean", "sse": "sum"}


def _linear_coefs(est, model: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    """Weight (n_out, n_in) and bias (n_out,) in the units of the unscaled features:
    with standardised inputs z = (x − μ)/σ, w·z + b = (w/σ)·x + (b − (w/σ)·μ)."""
    W = model.weight.data.copy()
    b = model.bias.data.copy()
    if est.x_mean_ is not None:
        W, b = unscale_linear(W, b, est.x_mean_, est.x_scale_)
    return W, b


class LinearRegression(RegressorMixin, GradientEstimator):
    """Least-squares linear regression ``y ≈ X·coef_ + intercept_`` by gradient descent.

    Parameters
    ----------
    optimizer : {"sgd", "momentum", "adam"}, default "sgd"
        Plain gradient descent by default (no momentum).
    lr : float, default 0.01
        Learning rate. Full-batch gradient descent on the MSE is stable for
        ``lr < 2/λmax`` of the Hessian ``(2/n) XᵀX`` (with the intercept column).
    epochs : int, default 1000
        Passes over the data.
    batch_size : int or None, default None
        ``None`` = full batch, ``1`` = per-sample SGD.
    shuffle : bool, default True
        Reshuffle mini-batches every epoch.
    standardize : bool, default False
        Train on standardised features (zero mean, unit variance); ``coef_`` and
        ``intercept_`` are still reported in the original units.
    loss : {"mse", "sse"}, default "mse"
        Mean squared error (no ½; gradient ``(2/n)Xᵀ(Xθ − y)``) or sum of squared
        errors.
    tol : float, default 1e-4
        Loss improvement, relative to ``max(|loss|, 1)``, below which an epoch
        counts as "no change" (see :func:`gradwise.training.loss_converged`).
    n_iter_no_change : int or None, default None
        ``None`` runs every epoch of the budget; an integer stops early once the
        loss has not improved by ``tol`` for that many epochs.
    random_state : int, numpy.random.RandomState or None, default None
        Seeds the shuffling (the weights start at zero).
    diagnose : bool, default True
        Run the registered fit hooks (they attach ``diagnosis_``).
    verbose : bool, default False
        Show a progress bar (only on a terminal).

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    loss_curve_ : ndarray, shape (n_iter_,)
        Mean training loss of each epoch (at the parameters before each step).
    n_iter_ : int
        Epochs run.
    result_ : gradwise.TrainResult
        Full history (step losses, gradient and update norms, timings).
    model_ : gradwise.nn.Linear
    n_features_in_ : int

    Examples
    --------
    >>> from gradwise.data import load_dataset
    >>> d = load_dataset("diabetes_bmi")
    >>> m = LinearRegression(lr=1e-4, epochs=1000, diagnose=False).fit(d.X, d.y)  # doctest: +SKIP
    >>> round(m.coef_[0], 5), round(m.intercept_, 5)  # doctest: +SKIP
    (5.90496, -0.4231)
    """

    _parameter_constraints = {
        **GradientEstimator._parameter_constraints,
        "loss": [StrOptions(set(_REGRESSION_LOSSES))],
    }

    def __init__(
        self,
        *,
        optimizer="sgd",
        lr=0.01,
        epochs=1000,
        batch_size=None,
        shuffle=True,
        standardize=False,
        loss="mse",
        tol=1e-4,
        n_iter_no_change=None,
        random_state=None,
        diagnose=True,
        verbose=False,
    ):
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.standardize = standardize
        self.loss = loss
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.diagnose = diagnose
        self.verbose = verbose

    def _build_model(self, n_features, n_outputs, dtype, rng):
        return nn.Linear(n_features, n_outputs, init="zeros", dtype=dtype)

    def _loss(self):
        return nn.MSELoss(reduction=_REGRESSION_LOSSES[self.loss])

    def _encode_target(self, y, dtype):
        self._single_output = y.ndim == 1
        y2 = y.reshape(len(y), -1).astype(dtype, copy=False)
        return y2, y2.shape[1]

    def _after_fit(self):
        W, b = _linear_coefs(self, self.model_)
        if self._single_output:
            self.coef_, self.intercept_ = W[0], float(b[0])
        else:
            self.coef_, self.intercept_ = W, b

    def predict(self, X) -> np.ndarray:
        """Predictions, shape (n_samples,) or (n_samples, n_targets)."""
        out = self._forward(X)
        return out[:, 0] if self._single_output else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class PolynomialRegression(LinearRegression):
    """Least-squares polynomial regression by gradient descent.

    The features are expanded to all monomials of degree 1 … ``degree``
    (``sklearn.preprocessing.PolynomialFeatures(degree, include_bias=False)``;
    for one feature: x, x², x³, …) and fitted as in :class:`LinearRegression`.
    With ``standardize=True`` the expanded features are standardised, which is
    what makes a cubic trainable at a reasonable step (scenario S5).

    Parameters
    ----------
    degree : int, default 2
        Highest total degree of the monomials (>= 1).
    **others
        As :class:`LinearRegression`.

    Attributes
    ----------
    coef_ : ndarray, shape (n_output_features,) or (n_targets, n_output_features)
        Coefficients of the monomials, in the order of ``powers_``, original units.
    powers_ : ndarray of int, shape (n_output_features, n_features)
        Exponent of each input feature in each monomial.
    """

    _parameter_constraints = {
        **LinearRegression._parameter_constraints,
        "degree": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        degree=2,
        *,
        optimizer="sgd",
        lr=0.01,
        epochs=1000,
        batch_size=None,
        shuffle=True,
        standardize=False,
        loss="mse",
        tol=1e-4,
        n_iter_no_change=None,
        random_state=None,
        diagnose=True,
        verbose=False,
    ):
        self.degree = degree
        super().__init__(
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            standardize=standardize,
            loss=loss,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            diagnose=diagnose,
            verbose=verbose,
        )

    def _expand(self, X, fit=False):
        if fit:
            poly = PolynomialFeatures(self.degree, include_bias=False).fit(X)
            size = poly.n_output_features_ * X.shape[0] * X.dtype.itemsize
            if size > MAX_EXPANDED_BYTES:  # transform would allocate it (MemoryError or worse)
                raise ValueError(
                    f"degree {self.degree} on {X.shape[1]} features makes {poly.n_output_features_:,} "
                    f"monomials: the expanded X would take {size / 1024**3:.3g} GB; use a lower degree "
                    "or fewer features"
                )
            self._poly = poly
            self.powers_ = self._poly.powers_
        return self._poly.transform(X).astype(X.dtype, copy=False)


class LogisticRegression(_ClassifierOutputs, ClassifierMixin, GradientEstimator):
    """Logistic regression (binary or multinomial) by gradient descent on the mean
    log-loss, without a penalty.

    Two classes: ``p = σ(X·coef_ᵀ + intercept_)`` and binary cross-entropy on the
    logit; more classes: softmax regression with cross-entropy.

    Parameters
    ----------
    optimizer, lr, epochs, batch_size, shuffle, standardize, tol, n_iter_no_change, random_state, diagnose, verbose
        As :class:`LinearRegression` (default lr 0.1, 1000 epochs).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coef_ : ndarray, shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray, shape (1,) or (n_classes,)
    loss_curve_, n_iter_, result_, model_, n_features_in_
        As :class:`LinearRegression`.
    """

    def __init__(
        self,
        *,
        optimizer="sgd",
        lr=0.1,
        epochs=1000,
        batch_size=None,
        shuffle=True,
        standardize=False,
        tol=1e-4,
        n_iter_no_change=None,
        random_state=None,
        diagnose=True,
        verbose=False,
    ):
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.standardize = standardize
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.diagnose = diagnose
        self.verbose = verbose

    def _build_model(self, n_features, n_outputs, dtype, rng):
        return nn.Linear(n_features, n_outputs, init="zeros", dtype=dtype)

    def _loss(self):
        return nn.BCEWithLogitsLoss() if len(self.classes_) == 2 else nn.CrossEntropyLoss()

    def _encode_target(self, y, dtype):
        idx = self._encode_classes(y)
        if len(self.classes_) == 2:
            return idx.astype(dtype)[:, None], 1
        return idx.astype(np.int64), len(self.classes_)

    def _after_fit(self):
        self.coef_, self.intercept_ = _linear_coefs(self, self.model_)
