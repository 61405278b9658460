"""Named datasets: the scenario data sets and scikit-learn's bundled real ones.

Nothing is downloaded: the real data sets ship with scikit-learn
(``sklearn.datasets.load_*``) and the scenario data sets are generated here
exactly as ``SCENARIOS.md`` describes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gradwise.data._errors import DataError

__all__ = ["Dataset", "load_dataset", "list_datasets"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named data set.

    Attributes
    ----------
    name : str
        The name :func:`load_dataset` knows it by.
    X : ndarray of float64, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,)
        float64 for regression, int64 class labels for classification.
    feature_names : list of str
    target_name : str
    task : {"regression", "classification"}
    description : str
        One paragraph: origin, size, and how it was prepared.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    task: str
    description: str = field(repr=False)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, task={self.task!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, target={self.target_name!r})"
        )


def _xor() -> Dataset:
    X = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
    y = np.array([0, 0, 1, 1], dtype=np.int64)
    return Dataset(
        "xor",
        X,
        y,
        ["x1", "x2", "bias"],
        "x1 xor x2",
        "classification",
        "XOR truth table in the order of scenario S1 (rows 00, 11, 10, 01), with a "
        "third, constant-1 column that acts as the bias input.",
    )


def _xor_plain() -> Dataset:
    d = _xor()
    return Dataset(
        "xor_plain",
        d.X[:, :2].copy(),
        d.y,
        ["x1", "x2"],
        d.target_name,
        "classification",
        "XOR truth table (rows 00, 11, 10, 01) with the two features only.",
    )


def _sklearn(loader: Callable, name: str, task: str, target: str, note: str = "", **kw) -> Dataset:
    b = loader(**kw)
    y = b.target.astype(np.int64 if task == "classification" else np.float64)
    first = next(ln for ln in b.DESCR.splitlines() if ln.strip() and not ln.startswith(".."))
    desc = f"{first.strip()} (scikit-learn's bundled copy, {b.data.shape[0]} samples){note}."
    return Dataset(
        name,
        np.asarray(b.data, dtype=np.float64),
        y,
        [str(f) for f in b.feature_names],
        target,
        task,
        desc,
    )


def _diabetes_bmi() -> Dataset:
    d = _sklearn_loader("diabetes_raw")()
    return Dataset(
        "diabetes_bmi",
        d.X[:, [2]].copy(),
        d.y,
        ["bmi"],
        d.target_name,
        "regression",
        "Scenario S2: scikit-learn's diabetes data unscaled, body-mass index (column 2) "
        "as the only feature, disease progression after one year as the target.",
    )


def _cubic() -> Dataset:
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 100)
    y = 0.5 * x**3 - 1.2 * x**2 - 2 * x + 1 + rng.normal(0, 1, 100)
    return Dataset(
        "cubic",
        x[:, None],
        y,
        ["x"],
        "y",
        "regression",
        "Scenario S5: x = linspace(-3, 3, 100), y = 0.5x^3 - 1.2x^2 - 2x + 1 + N(0, 1) noise "
        "from numpy.random.default_rng(0).",
    )


def _houses() -> Dataset:
    X = np.array([[2104, 3], [1600, 3], [2400, 3], [1416, 2], [3000, 4]], dtype=np.float64)
    y = np.array([400, 330, 369, 232, 540], dtype=np.float64)
    return Dataset(
        "houses",
        X,
        y,
        ["size", "bedrooms"],
        "price",
        "regression",
        "Scenario S6: the first five rows of a classic house-price set (size in square "
        "feet, bedrooms; price in thousands).",
    )


def _seven_points() -> Dataset:
    x = np.array([98, 94, 93, 88, 84, 82, 79], dtype=np.float64)
    y = np.array([97, 94, 94, 78, 85, 85, 76], dtype=np.float64)
    return Dataset(
        "seven_points",
        x[:, None],
        y,
        ["x"],
        "y",
        "regression",
        "Public case P2: seven (x, y) points for batch gradient descent on a line.",
    )


def _sklearn_loader(name: str) -> Callable[[], Dataset]:
    from sklearn import datasets as skd

    specs = {
        "diabetes": (skd.load_diabetes, "regression", "disease progression", "", {}),
        "diabetes_raw": (
            skd.load_diabetes,
            "regression",
            "disease progression",
            ", unscaled (original units)",
            {"scaled": False},
        ),
        "digits": (skd.load_digits, "classification", "digit", "", {}),
        "breast_cancer": (
            skd.load_breast_cancer,
            "classification",
            "diagnosis (1 = benign)",
            "",
            {},
        ),
        "iris": (skd.load_iris, "classification", "species", "", {}),
    }
    loader, task, target, note, kw = specs[name]
    return lambda: _sklearn(loader, name, task, target, note, **kw)


_SKLEARN = ("diabetes", "diabetes_raw", "digits", "breast_cancer", "iris")
_LOCAL: dict[str, Callable[[], Dataset]] = {
    "xor": _xor,
    "xor_plain": _xor_plain,
    "diabetes_bmi": _diabetes_bmi,
    "cubic": _cubic,
    "houses": _houses,
    "seven_points": _seven_points,
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted([*_LOCAL, *_SKLEARN])


def load_dataset(name: str) -> Dataset:
    """Load a named data set (no download).

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`:

        - ``"xor"`` — S1's XOR table with a constant-1 bias column (4×3);
          ``"xor_plain"`` — the same without the bias column (4×2).
        - ``"diabetes"`` (scikit-learn's scaled version), ``"diabetes_raw"``
          (``load_diabetes(scaled=False)``), ``"diabetes_bmi"`` (S2: raw BMI
          column only), ``"digits"``, ``"breast_cancer"``, ``"iris"`` —
          scikit-learn's bundled real data sets.
        - ``"cubic"`` (S5, 100 noisy points of a cubic), ``"houses"`` (S6, five
          houses), ``"seven_points"`` (P2).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        For an unknown name (the message lists the known ones).
    """
    if name in _LOCAL:
        return _LOCAL[name]()
    if name in _SKLEARN:
        return _sklearn_loader(name)()
    raise DataError(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
