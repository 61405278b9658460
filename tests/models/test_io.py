"""save/load without pickle: round trips, no overwrite, and malformed files rejected."""

import io
import json
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gradwise.data import load_dataset
from gradwise.models import (
    LinearRegression,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    ModelFileError,
    PolynomialRegression,
    load,
    save,
)


def fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.set_params(diagnose=False).fit(X, y)


IRIS = load_dataset("iris")
CASES = {
    "linear": (LinearRegression(lr=0.01, epochs=50), IRIS.X[:, :3], IRIS.X[:, 3]),
    "linear2d": (
        LinearRegression(lr=0.01, epochs=20, standardize=True),
        IRIS.X[:, :2],
        IRIS.X[:, 2:],
    ),
    "poly": (
        PolynomialRegression(3, lr=0.05, epochs=50, standardize=True),
        IRIS.X[:, :2],
        IRIS.X[:, 3],
    ),
    "logistic": (LogisticRegression(epochs=30), IRIS.X, IRIS.y),
    "mlp_reg32": (
        MLPRegressor((6, 4), "tanh", epochs=5, random_state=0),
        IRIS.X.astype(np.float32),
        IRIS.X[:, 0].astype(np.float32),
    ),
    "mlp_clf_text": (
        MLPClassifier((5,), epochs=5, standardize=True, random_state=0),
        IRIS.X,
        np.array(["setosa", "versicolor", "virginica"])[IRIS.y],
    ),
    "mlp_binary": (MLPClassifier((5,), "sigmoid", epochs=5, random_state=0), IRIS.X, IRIS.y > 0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_predicts_identically(name, tmp_path):
    est, X, y = CASES[name]
    est = fitted(est, X, y)
    path = tmp_path / "model.npz"
    save(est, path)
    back = load(path)
    assert type(back) is type(est) and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(back.classes_, est.classes_)
    for attr in ("coef_", "intercept_", "coefs_", "intercepts_"):
        if hasattr(est, attr):
            np.testing.assert_equal(getattr(back, attr), getattr(est, attr))
    np.testing.assert_array_equal(back.loss_curve_, est.loss_curve_)
    assert back.n_iter_ == est.n_iter_ and back.n_features_in_ == est.n_features_in_
    assert back.result_ is None
    assert next(back.model_.parameters()).data.dtype == next(est.model_.parameters()).data.dtype


def test_feature_names_survive(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(IRIS.X[:, :2], columns=["a", "b"])
    est = fitted(LinearRegression(epochs=5), X, IRIS.X[:, 3])
    save(est, tmp_path / "m.npz")
    back = load(tmp_path / "m.npz")
    assert list(back.feature_names_in_) == ["a", "b"]


def test_never_overwrites_unless_asked(tmp_path):
    est = fitted(*CASES["linear"])
    path = tmp_path / "m.npz"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(est, path)
    assert path.read_text() == "precious"
    save(est, path, overwrite=True)
    assert isinstance(load(path), LinearRegression)


def test_save_refuses_unfitted_and_foreign(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import Ridge

    with pytest.raises(NotFittedError):
        save(LinearRegression(), tmp_path / "a.npz")
    with pytest.raises(TypeError, match="gradwise.models estimators only"):
        save(Ridge().fit(np.eye(3), [1, 2, 3]), tmp_path / "b.npz")
    est = fitted(LinearRegression(epochs=5), IRIS.X, IRIS.y)
    est.random_state = np.random.RandomState(0)
    with pytest.raises(TypeError, match="random_state"):
        save(est, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists() and not (tmp_path / "b.npz").exists()


# ----------------------------------------------------------------- malformed files
@pytest.fixture
def good(tmp_path):
    """Entries of a valid file, to be tampered with."""
    est = fitted(*CASES["mlp_clf_text"])
    path = tmp_path / "good.npz"
    save(est, path)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write(tmp_path, entries, name="bad.npz"):
    path = tmp_path / name
    np.savez(path, **entries)
    return path


def meta(entries):
    return json.loads(entries["__meta__"].tobytes())


def with_meta(entries, **changes):
    m = meta(entries)
    m.update(changes)
    return {**entries, "__meta__": np.frombuffer(json.dumps(m).encode(), dtype=np.uint8)}


def expect(path, match):
    with pytest.raises(ModelFileError, match=match) as e:
        load(path)
    assert "\n" not in str(e.value) and "not a valid gradwise model file" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load(tmp_path / "none.npz")


def test_not_an_npz(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("hello")
    expect(p, "cannot read it as an .npz archive")
    q = tmp_path / "arr.npy"
    np.save(q, np.arange(3))
    expect(q, "single .npy array")


def test_pickled_object_arrays_are_never_loaded(tmp_path, good):
    p = write(tmp_path, {**good, "evil": np.array([{"a": 1}], dtype=object)})
    expect(p, "pickled")


def test_pickle_file_rejected(tmp_path):
    import pickle

    p = tmp_path / "model.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    expect(p, "pickled|cannot read")


def test_meta_problems(tmp_path, good):
    expect(
        write(tmp_path, {k: v for k, v in good.items() if k != "__meta__"}),
        "'__meta__' entry is missing",
    )
    expect(
        write(tmp_path, {**good, "__meta__": np.frombuffer(b"{not json", np.uint8)}),
        "not UTF-8 JSON",
    )
    expect(write(tmp_path, with_meta(good, format="other")), "does not declare format")
    expect(write(tmp_path, with_meta(good, version=99)), "version 99 is not supported")
    expect(
        write(tmp_path, with_meta(good, **{"class": "os.system"})),
        "unknown estimator class 'os.system'",
    )
    params = {**meta(good)["params"], "evil": 1}
    expect(write(tmp_path, with_meta(good, params=params)), r"unknown parameters \['evil'\]")
    params = {**meta(good)["params"], "lr": -3}
    expect(write(tmp_path, with_meta(good, params=params)), "invalid parameters")
    expect(
        write(tmp_path, with_meta(good, n_features_in_=0)), "'n_features_in_' must be a positive"
    )
    expect(write(tmp_path, with_meta(good, feature_names_in_=["a"])), "one name per feature")
    params = {**meta(good)["params"], "hidden_layer_sizes": [0]}
    expect(write(tmp_path, with_meta(good, params=params)), "does not match the parameters")


def test_array_problems(tmp_path, good):
    bad = {**good, "model/0.weight": good["model/0.weight"][:, :2]}
    expect(write(tmp_path, bad), "size mismatch")
    expect(write(tmp_path, {k: v for k, v in good.items() if k != "model/2.bias"}), "missing keys")
    expect(
        write(tmp_path, {**good, "model/0.weight": good["model/0.weight"].astype(int)}),
        "float32 or float64",
    )
    expect(write(tmp_path, {k: v for k, v in good.items() if k != "x_mean"}), "'x_mean' is missing")
    expect(write(tmp_path, {**good, "x_scale": -good["x_scale"]}), "'x_scale' must be positive")
    expect(write(tmp_path, {**good, "classes": good["classes"][:2]}), "2 classes do not fit")
    expect(write(tmp_path, {**good, "extra": np.zeros(2)}), r"unexpected entries \['extra'\]")


def test_file_object_not_left_behind_on_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not an array")
    p = tmp_path / "zip.npz"
    p.write_bytes(buf.getvalue())
    expect(p, "cannot read|'__meta__'")
