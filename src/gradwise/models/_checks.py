"""Declared scikit-learn check failures (``expected_failed_checks``).

scikit-learn's ``check_estimator`` / ``parametrize_with_checks`` accept a
mapping ``check name -> reason`` of checks an estimator is known to fail.
Each gradwise estimator declares its own here, with the reason.

Status (scikit-learn 1.9, ``tests/models/test_sklearn_api.py``): every
estimator passes every applicable check, so each table is empty. A check that
starts failing must either be fixed or be listed here with its reason.
"""

from __future__ import annotations

from gradwise.models._base import GradientEstimator

__all__ = ["expected_failed_checks"]

#: class name -> {check name: reason}
_EXPECTED: dict[str, dict[str, str]] = {
    "LinearRegression": {},
    "PolynomialRegression": {},
    "LogisticRegression": {},
    "MLPRegressor": {},
    "MLPClassifier": {},
}


def expected_failed_checks(estimator) -> dict[str, str]:
    """The scikit-learn checks ``estimator`` is declared to fail, with a reason each.

    Parameters
    ----------
    estimator : gradwise estimator
        An instance of one of the :mod:`gradwise.models` estimators.

    Returns
    -------
    dict of str -> str
        ``{check_name: reason}``; pass it (or this function) as
        ``expected_failed_checks`` to ``sklearn.utils.estimator_checks``.

    Raises
    ------
    TypeError
        For an object that is not a gradwise estimator.
    """
    if not isinstance(estimator, GradientEstimator):
        raise TypeError(
            f"expected a gradwise estimator (gradwise.models), got {type(estimator).__name__}"
        )
    return dict(_EXPECTED.get(type(estimator).__name__, {}))
