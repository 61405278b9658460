"""scikit-learn estimator API: check_estimator through parametrize_with_checks,
with the declared expected failures; clone/pipeline/grid-search interplay."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradwise.data import load_dataset
from gradwise.models import (
    LinearRegression,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    PolynomialRegression,
    expected_failed_checks,
)

# small budgets keep the ~270 checks fast; every check still trains for real
ESTIMATORS = [
    LinearRegression(epochs=100, diagnose=False),
    PolynomialRegression(2, epochs=100, diagnose=False),
    LogisticRegression(epochs=100, diagnose=False),
    MLPRegressor((10,), lr=0.01, epochs=200, diagnose=False),
    MLPClassifier((10,), epochs=50, diagnose=False),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::gradwise.training.DivergenceWarning")
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_expected_failed_checks_is_a_dict_of_reasons():
    for est in ESTIMATORS:
        table = expected_failed_checks(est)
        assert isinstance(table, dict)
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in table.items())
    with pytest.raises(TypeError, match="gradwise estimator"):
        expected_failed_checks(StandardScaler())


def test_pipeline_and_grid_search():
    d = load_dataset("breast_cancer")
    pipe = make_pipeline(StandardScaler(), LogisticRegression(epochs=50, diagnose=False))
    grid = GridSearchCV(pipe, {"logisticregression__lr": [0.01, 0.5]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(d.X, d.y)
    assert grid.best_params_ == {"logisticregression__lr": 0.5}
    assert grid.best_score_ > 0.95
    c = clone(grid.best_estimator_[-1])
    assert c.get_params()["lr"] == 0.5 and not hasattr(c, "coef_")


def test_get_set_params_roundtrip():
    m = MLPClassifier(hidden_layer_sizes=(4, 3), activation="tanh")
    p = m.get_params()
    # issue 3: plain full-batch gradient descent is every estimator's default
    assert p["hidden_layer_sizes"] == (4, 3) and p["optimizer"] == "sgd"
    assert p["batch_size"] is None and p["standardize"] is False and p["diagnose"] is True
    assert m.set_params(lr=0.5).lr == 0.5
    lin = LinearRegression().get_params()
    assert lin["optimizer"] == "sgd" and lin["batch_size"] is None and lin["standardize"] is False
    np.testing.assert_equal(sorted(lin), sorted(LinearRegression(**lin).get_params()))
