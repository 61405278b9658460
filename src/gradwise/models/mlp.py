"""Multi-layer perceptrons (fully connected networks) trained through :func:`gradwise.train`."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import StrOptions

import gradwise
from gradwise import nn
from gradwise.models._base import GradientEstimator, _ClassifierOutputs

__all__ = ["MLPRegressor", "MLPClassifier", "build_mlp"]

#: activation name -> (module class, default weight initialiser). Glorot & Bengio
#: (2010) for the saturating sigmoid/tanh, He et al. (2015) for ReLU.
ACTIVATIONS = {
    "sigmoid": (nn.Sigmoid, "glorot_uniform"),
    "tanh": (nn.Tanh, "glorot_uniform"),
    "relu": (nn.ReLU, "he_uniform"),
}
#: hidden-layer weight initialisers an MLP accepts as ``init`` (see
#: :data:`gradwise.nn.layers.LINEAR_INITS`); biases start at zero
INITS = ("he_uniform", "he_normal", "glorot_uniform", "glorot_normal")


def _check_hidden(hidden_layer_sizes) -> tuple[int, ...]:
    sizes = (
        (hidden_layer_sizes,) if isinstance(hidden_layer_sizes, Integral) else hidden_layer_sizes
    )
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if not sizes or any(isinstance(h, bool) or not isinstance(h, Integral) or h < 1 for h in sizes):
        raise ValueError(
            "hidden_layer_sizes must be a non-empty tuple of positive integers, e.g. (100,) or "
            f"(64, 32); got {hidden_layer_sizes!r}"
        )
    return tuple(int(h) for h in sizes)


def build_mlp(n_features, hidden_layer_sizes, n_outputs, activation, dtype, rng,
              init=None) -> nn.Sequential:
    """``Linear → activation → … → Linear`` with biases, initialised for ``activation``.

    Parameters
    ----------
    n_features, n_outputs : int
    hidden_layer_sizes : tuple of int
    activation : {"sigmoid", "tanh", "relu"}
    dtype : numpy floating dtype
    rng : numpy.random.Generator
    init : {"he_uniform", "he_normal", "glorot_uniform", "glorot_normal"} or None
        Initialiser of the hidden layers' weights; None: "he_uniform" before a
        ReLU, "glorot_uniform" otherwise. The output layer is always Glorot
        uniform.
    """
    act, default_init = ACTIVATIONS[activation]
    init = default_init if init is None else init
    sizes = (n_features, *_check_hidden(hidden_layer_sizes))
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, init=init, rng=rng, dtype=dtype), act()]
    layers.append(nn.Linear(sizes[-1], n_outputs, init="glorot_uniform", rng=rng, dtype=dtype))
    return nn.Sequential(*layers)


class _MLP(GradientEstimator):
    _parameter_constraints = {
        **GradientEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Integral],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "init": [StrOptions(set(INITS)), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        init=None,
        loss=None,
        optimizer="sgd",
        lr=0.1,
        epochs=1000,
        batch_size=None,
        shuffle=True,
        standardize=False,
        tol=1e-4,
        n_iter_no_change=10,
        random_state=None,
        diagnose=True,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.loss = loss
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
        return build_mlp(
            n_features, self.hidden_layer_sizes, n_outputs, self.activation, dtype, rng,
            init=self.init,
        )

    def _after_fit(self):
        linears = [m for m in self.model_ if isinstance(m, nn.Linear)]
        # scikit-learn's orientation: coefs_[i] has shape (fan_in, fan_out)
        self.coefs_ = [m.weight.data.T.copy() for m in linears]
        self.intercepts_ = [m.bias.data.copy() for m in linears]


class MLPRegressor(RegressorMixin, _MLP):
    """Fully connected network for regression, trained on the mean squared error.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Width of each hidden layer.
    activation : {"relu", "tanh", "sigmoid"}, default "relu"
        Hidden activation. The output layer is linear.
    init : {"he_uniform", "he_normal", "glorot_uniform", "glorot_normal"} or None, default None
        Initialiser of the hidden layers' weights (biases at zero). None: He
        uniform before a ReLU (He et al. 2015), Glorot uniform before sigmoid/tanh
        (Glorot & Bengio 2010). The fix of ``init.scale`` or
        ``activations.*`` findings (``{"init": "he_normal"}``) is applied here.
    loss : {"mse", "sse"} or None, default None
        None means "mse" (mean squared error, no ½).
    optimizer : {"sgd", "momentum", "adam"}, default "sgd"
        Plain gradient descent by default, the algorithm users write themselves
        (and the one gradwise's diagnosis has stability bounds for); "adam" is
        usually faster on networks.
    lr : float, default 0.1
    epochs : int, default 1000
    batch_size : int or None, default None
        ``None`` = full batch.
    shuffle, standardize, tol, random_state, diagnose, verbose
        As :class:`gradwise.models.LinearRegression`.
    n_iter_no_change : int or None, default 10
        Stop once the loss has not improved by ``tol`` (relative) for this many
        epochs (scikit-learn's rule); ``None`` runs the whole budget.

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Weights (shape (fan_in, fan_out), scikit-learn's orientation) and biases
        of each layer, in the standardised units when ``standardize``.
    loss_curve_, n_iter_, result_, model_, n_features_in_
        As :class:`gradwise.models.LinearRegression`.
    """

    _parameter_constraints = {
        **_MLP._parameter_constraints,
        "loss": [StrOptions({"mse", "sse"}), None],
    }

    def _loss(self):
        return nn.MSELoss(reduction="sum" if self.loss == "sse" else "mean")

    def _encode_target(self, y, dtype):
        self._single_output = y.ndim == 1
        y2 = y.reshape(len(y), -1).astype(dtype, copy=False)
        return y2, y2.shape[1]

    def predict(self, X) -> np.ndarray:
        """Predictions, shape (n_samples,) or (n_samples, n_targets)."""
        out = self._forward(X)
        return out[:, 0] if self._single_output else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class _SquaredErrorOnProbabilities:
    """Squared error between predicted probabilities and one-hot targets (the
    classic, if slow-learning, choice of scenario S1)."""

    def __init__(self, reduction: str, binary: bool):
        self.mse = nn.MSELoss(reduction=reduction)
        self.binary = binary

    def __call__(self, logits, target):
        p = gradwise.sigmoid(logits) if self.binary else gradwise.softmax(logits, axis=1)
        return self.mse(p, target)


class MLPClassifier(_ClassifierOutputs, ClassifierMixin, _MLP):
    """Fully connected network for classification.

    Two classes use one sigmoid output unit, more classes a softmax layer.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
    activation : {"relu", "tanh", "sigmoid"}, default "relu"
    init : {"he_uniform", "he_normal", "glorot_uniform", "glorot_normal"} or None, default None
        As :class:`MLPRegressor`.
    loss : {"log_loss", "mse", "sse"} or None, default None
        None means "log_loss": binary cross-entropy / cross-entropy on the
        logits (numerically stable). "mse"/"sse": mean/sum of squared errors
        between the probabilities and the one-hot targets.
    optimizer : {"sgd", "momentum", "adam"}, default "sgd"
        Plain gradient descent by default, the algorithm users write themselves
        (and the one gradwise's diagnosis has stability bounds for); "adam" is
        usually faster on networks.
    lr : float, default 0.1
    epochs : int, default 1000
    batch_size : int or None, default None
    shuffle, standardize, tol, n_iter_no_change, random_state, diagnose, verbose
        As :class:`MLPRegressor`.

    The defaults (plain full-batch gradient descent, lr 0.1) reach 95.6–97.1 %
    test accuracy on scikit-learn's digits (3 random splits) in about 2 s.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coefs_, intercepts_, loss_curve_, n_iter_, result_, model_, n_features_in_
        As :class:`MLPRegressor`.
    """

    _parameter_constraints = {
        **_MLP._parameter_constraints,
        "loss": [StrOptions({"log_loss", "mse", "sse"}), None],
    }

    def _loss(self):
        binary = len(self.classes_) == 2
        if self.loss in (None, "log_loss"):
            return nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
        return _SquaredErrorOnProbabilities("sum" if self.loss == "sse" else "mean", binary)

    def _encode_target(self, y, dtype):
        idx = self._encode_classes(y)
        k = len(self.classes_)
        if k == 2:
            return idx.astype(dtype)[:, None], 1
        if self.loss in (None, "log_loss"):
            return idx.astype(np.int64), k
        return np.eye(k, dtype=dtype)[idx], k
