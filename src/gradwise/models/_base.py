"""What every gradwise estimator shares: parameters, validation, the fit procedure
(which calls :func:`gradwise.train`), standardisation, warnings and fit hooks."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from gradwise import no_grad
from gradwise import optim as _optim
from gradwise._hooks import fit_hooks
from gradwise._scaling import standardize
from gradwise.training import DivergenceWarning, TrainResult, train

__all__ = ["GradientEstimator", "make_optimizer", "OPTIMIZERS"]

#: Optimizer names accepted by the estimators' ``optimizer`` parameter (the keys
#: of :data:`gradwise.optim.ESTIMATOR_OPTIMIZERS`): "momentum" is heavy-ball SGD
#: with momentum 0.9 (Polyak 1964; the value of Sutskever et al. 2013); "adam"
#: uses Kingma & Ba (2015)'s defaults.
OPTIMIZERS = tuple(_optim.ESTIMATOR_OPTIMIZERS)


def make_optimizer(name: str, params, lr: float):
    """The optimizer an estimator's ``optimizer`` parameter names.

    Parameters
    ----------
    name : {"sgd", "momentum", "adam"}
        Plain SGD (``θ ← θ − lr·g``, no momentum), SGD with momentum 0.9, or Adam
        (β = (0.9, 0.999), ε = 1e-8).
    params : iterable of Parameter
    lr : float
        Learning rate.
    """
    if name not in _optim.ESTIMATOR_OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    canonical, momentum = _optim.ESTIMATOR_OPTIMIZERS[name]
    return _optim.make(canonical, params, lr, momentum=momentum)


class GradientEstimator(BaseEstimator):
    """Base class: a model trained by gradient descent through :func:`gradwise.train`.

    Subclasses define ``_build_model(n_features, n_outputs, dtype, rng)``,
    ``_loss()``, ``_encode_target(y, dtype)`` (returns the training target and the
    number of outputs) and may override ``_after_fit()``.

    Fitted attributes common to all estimators: ``model_`` (the
    :class:`gradwise.nn.Module`), ``result_`` (the :class:`gradwise.TrainResult`),
    ``loss_curve_``, ``n_iter_`` (epochs run), ``n_features_in_``,
    ``x_mean_``/``x_scale_`` (``None`` unless ``standardize``), and
    ``diagnosis_`` when the diagnostics layer is installed and ``diagnose=True``.
    """

    _parameter_constraints: dict = {
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "shuffle": ["boolean"],
        "standardize": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "diagnose": ["boolean"],
        "verbose": ["boolean"],
    }
    _regressor = True  # validate y as numeric

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, callbacks=()):
        """Train on ``X``, ``y`` with the estimator's settings.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Training inputs; float32 data is trained in float32, anything else
            in float64.
        y : array_like, shape (n_samples,) or (n_samples, n_targets)
        callbacks : sequence, default ()
            Extra :func:`gradwise.train` callbacks (``on_train_begin(state)`` ...),
            e.g. the CLI's gradient check at the initial parameters.

        Returns
        -------
        self

        Warns
        -----
        DivergenceWarning
            The loss (or gradient) became non-finite: training stopped there and
            the parameters of the last finite loss were kept.
        sklearn.exceptions.ConvergenceWarning
            The epoch budget ended before the loss stopped improving (see
            :func:`gradwise.training.loss_converged`).
        """
        self._validate_params()
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            y_numeric=self._regressor,
            multi_output=self.__sklearn_tags__().target_tags.multi_output,
        )
        dtype = X.dtype
        Xs = self._fit_scaler(self._expand(X, fit=True))
        target, n_out = self._encode_target(y, dtype)
        seeds = np.random.SeedSequence(check_random_state(self.random_state).randint(2**32))
        init_seed, shuffle_seed = seeds.spawn(2)
        model = self._build_model(Xs.shape[1], n_out, dtype, np.random.default_rng(init_seed))
        optimizer = make_optimizer(self.optimizer, model.parameters(), self.lr)
        result = train(
            model,
            self._loss(),
            optimizer,
            (Xs, target),
            self.epochs,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=np.random.default_rng(shuffle_seed),
            progress=self.verbose,
            callbacks=list(callbacks),
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change or 10,
            stop_when_converged=self.n_iter_no_change is not None,
        )
        model.eval()
        self.model_ = model
        self.result_ = result
        self.loss_curve_ = result.loss_curve.copy()
        self.n_iter_ = int(result.n_epochs)
        self._after_fit()
        self._warn(result)
        if self.diagnose:
            self._run_fit_hooks(result, X, y)
        return self

    def _after_fit(self) -> None:
        """Set model-specific fitted attributes (``coef_``...)."""

    def _warn(self, result: TrainResult) -> None:
        name = type(self).__name__
        if result.nonfinite_step is not None:
            finite = result.step_loss[np.isfinite(result.step_loss)]
            last = f"; last finite loss {finite[-1]:.6g}" if len(finite) else ""
            warnings.warn(
                f"{name}: training diverged — the {result.findings[0].evidence['what']} became "
                f"non-finite at step {result.nonfinite_step} (in epoch {result.n_epochs}); stopped "
                f"and kept the parameters of the last finite loss{last}. Lower lr (below the "
                "stability limit 2/λmax) or set standardize=True; gradwise.diagnose explains.",
                DivergenceWarning,
                stacklevel=3,
            )
        elif result.stopped_reason == "max_epochs" and not result.converged:
            hint = "" if getattr(self, "standardize", True) else ", or set standardize=True"
            warnings.warn(
                f"{name}: the epoch budget (epochs={self.epochs}) ended before convergence: the "
                f"loss still improved by more than tol={self.tol:g}·max(|loss|, 1) within the last "
                f"{result.n_iter_no_change} epochs. Increase epochs or lr{hint}.",
                ConvergenceWarning,
                stacklevel=3,
            )
        elif result.stopped_reason == "no_improvement":
            lc = result.loss_curve
            warnings.warn(
                f"{name}: training stopped early after {result.n_epochs} epochs: the loss did not "
                f"improve on its best ({np.min(lc):.6g}) for {result.n_iter_no_change} epochs and "
                f"ended at {lc[-1]:.6g}. The step is probably too large (lower lr); "
                "n_iter_no_change=None trains for the whole budget.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _run_fit_hooks(self, result, X, y) -> None:
        for hook in fit_hooks():
            try:
                hook(self, result, X, y)
            except Exception as e:  # a failing diagnosis must not lose the fitted model
                warnings.warn(
                    f"{type(self).__name__}: the fit hook {getattr(hook, '__name__', hook)!r} "
                    f"failed ({type(e).__name__}: {e}); the model is fitted, diagnosis_ is missing",
                    RuntimeWarning,
                    stacklevel=3,
                )

    # ------------------------------------------------------------------ scaling
    def _fit_scaler(self, X: np.ndarray) -> np.ndarray:
        if not self.standardize:
            self.x_mean_ = self.x_scale_ = None
            return X
        Z, self.x_mean_, self.x_scale_ = standardize(X)
        return Z

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X if self.x_mean_ is None else (X - self.x_mean_) / self.x_scale_

    # ------------------------------------------------------------------ predict
    def _forward(self, X) -> np.ndarray:
        """Raw model output (n_samples, n_outputs) for validated inputs."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = X.astype(self._dtype(), copy=False)
        with no_grad():
            return np.asarray(self.model_(self._transform(self._expand(X))).data)

    def _expand(self, X: np.ndarray, fit: bool = False) -> np.ndarray:
        """Feature expansion before scaling (identity; polynomial features override)."""
        return X

    def _dtype(self):
        return next(self.model_.parameters()).data.dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class _ClassifierOutputs:
    """Class encoding and output → prediction maps shared by the classifiers.

    Two classes use one output unit (logit of ``classes_[1]``); more use one
    logit per class (softmax).
    """

    _regressor = False

    def _encode_classes(self, y: np.ndarray) -> np.ndarray:
        check_classification_targets(y)
        self.classes_, idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; y has only one "
                f"class ({self.classes_[0].tolist()!r})"
            )
        return idx.reshape(-1)

    def decision_function(self, X) -> np.ndarray:
        """Logits: shape (n_samples,) for two classes (positive class ``classes_[1]``),
        (n_samples, n_classes) otherwise."""
        z = self._forward(X)
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_``
        order: the logistic sigmoid of the logit for two classes, the softmax of the
        logits otherwise."""
        z = self._forward(X).astype(np.float64)
        if z.shape[1] == 1:
            p = expit(z[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(z, axis=1)

    def predict(self, X) -> np.ndarray:
        """Most probable class of each sample, shape (n_samples,)."""
        z = self._forward(X)
        idx = (z[:, 0] > 0).astype(np.intp) if z.shape[1] == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]
