"""gradwise.models — scikit-learn-style estimators trained by gradient descent.

:class:`LinearRegression`, :class:`PolynomialRegression`,
:class:`LogisticRegression`, :class:`MLPRegressor`, :class:`MLPClassifier`:
``fit``/``predict``/``predict_proba``/``score``/``get_params``/``set_params``,
fitted attributes with a trailing underscore, every fit through
:func:`gradwise.train` (``result_`` holds its history). :func:`save` /
:func:`load` store a fitted estimator without pickle.
"""

from sklearn.exceptions import ConvergenceWarning

from gradwise.models._base import OPTIMIZERS, GradientEstimator, make_optimizer
from gradwise.models._checks import expected_failed_checks
from gradwise.models._io import ModelFileError, load, save
from gradwise.models.linear import LinearRegression, LogisticRegression, PolynomialRegression
from gradwise.models.mlp import MLPClassifier, MLPRegressor, build_mlp
from gradwise.training import DivergenceWarning

__all__ = [
    "LinearRegression",
    "PolynomialRegression",
    "LogisticRegression",
    "MLPRegressor",
    "MLPClassifier",
    "GradientEstimator",
    "build_mlp",
    "make_optimizer",
    "OPTIMIZERS",
    "ConvergenceWarning",
    "DivergenceWarning",
    "save",
    "load",
    "ModelFileError",
    "expected_failed_checks",
]
