import numpy as np
import pytest

from gradwise.data import DataError, list_datasets, load_dataset


def test_xor_matches_scenario_s1():
    d = load_dataset("xor")
    np.testing.assert_array_equal(d.X, [[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]])
    np.testing.assert_array_equal(d.y, [0, 0, 1, 1])
    assert d.task == "classification" and d.feature_names == ["x1", "x2", "bias"]
    np.testing.assert_array_equal(load_dataset("xor_plain").X, d.X[:, :2])


def test_diabetes_bmi_ols_matches_scenario_s2():
    d = load_dataset("diabetes_bmi")
    A = np.column_stack([d.X[:, 0], np.ones(d.n_samples)])
    (m, c), *_ = np.linalg.lstsq(A, d.y, rcond=None)
    assert m == pytest.approx(10.233128, abs=1e-6)
    assert c == pytest.approx(-117.773367, abs=1e-6)
    np.testing.assert_array_equal(load_dataset("diabetes_raw").X[:, 2], d.X[:, 0])


def test_cubic_ols_matches_scenario_s5():
    d = load_dataset("cubic")
    x = d.X[:, 0]
    A = np.column_stack([x**3, x**2, x, np.ones_like(x)])
    theta, *_ = np.linalg.lstsq(A, d.y, rcond=None)
    np.testing.assert_allclose(theta, [0.478966, -1.255555, -1.859872, 1.251128], atol=1e-6)
    assert np.mean((A @ theta - d.y) ** 2) == pytest.approx(0.892952, abs=1e-6)


def test_houses_least_squares_minimum_matches_scenario_s6():
    d = load_dataset("houses")
    A = np.column_stack([np.ones(5), d.X])
    theta, *_ = np.linalg.lstsq(A, d.y, rcond=None)
    assert np.sum((A @ theta - d.y) ** 2) == pytest.approx(1444.1444327, abs=1e-6)


def test_seven_points_ols_matches_p2():
    d = load_dataset("seven_points")
    A = np.column_stack([np.ones(7), d.X[:, 0]])
    theta, *_ = np.linalg.lstsq(A, d.y, rcond=None)
    np.testing.assert_allclose(theta, [-2.0593963, 1.00876339], atol=1e-7)


@pytest.mark.parametrize(
    "name, shape, task, n_classes",
    [
        ("digits", (1797, 64), "classification", 10),
        ("breast_cancer", (569, 30), "classification", 2),
        ("iris", (150, 4), "classification", 3),
        ("diabetes", (442, 10), "regression", None),
    ],
)
def test_bundled_real_datasets(name, shape, task, n_classes):
    d = load_dataset(name)
    assert d.X.shape == shape and d.X.dtype == np.float64 and len(d.y) == shape[0]
    assert d.task == task and len(d.feature_names) == shape[1] and d.description
    if n_classes:
        assert d.y.dtype == np.int64 and len(np.unique(d.y)) == n_classes


def test_list_and_unknown():
    names = list_datasets()
    assert {"xor", "digits", "diabetes_raw", "cubic", "houses"} <= set(names)
    with pytest.raises(DataError, match="unknown dataset 'mnist'; available: breast_cancer"):
        load_dataset("mnist")
