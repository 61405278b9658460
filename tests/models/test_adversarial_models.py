"""Adversarial model files and inputs for gradwise.models: each test is a bug found
by trying to break save/load and the estimators (or a guard against one)."""

import io
import json
import zipfile

import numpy as np
import pytest

from gradwise import models
from gradwise.models import ModelFileError, load, save

# the models here are fitted for a few epochs only to have something to save
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return X, X @ [1.0, 2.0, 3.0] + 1.0


def _rewrite(src, dst, meta_update=None, **arrays):
    """Copy a saved model file with some metadata fields or arrays replaced."""
    z = dict(np.load(src))
    if meta_update:
        meta = json.loads(bytes(z["__meta__"]).decode())
        for key, value in meta_update.items():
            if key == "params":
                meta["params"].update(value)
            else:
                meta[key] = value
        z["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    z.update(arrays)
    np.savez(dst, **z)


def test_round_trip_predicts_the_same(tmp_path, data):
    X, y = data
    est = models.LinearRegression(epochs=50, diagnose=False).fit(X, y)
    save(est, tmp_path / "m.npz")
    np.testing.assert_array_equal(load(tmp_path / "m.npz").predict(X), est.predict(X))


def test_nan_parameters_are_refused(tmp_path, data):
    # a file with NaN weights loaded fine and predicted NaN for every row
    X, y = data
    save(models.LinearRegression(epochs=5, diagnose=False).fit(X, y), tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "nan.npz", **{"model/weight": np.full((1, 3), np.nan)})
    with pytest.raises(ModelFileError, match="'model/weight' holds NaN or infinite values"):
        load(tmp_path / "nan.npz")


@pytest.mark.parametrize(
    "cls, meta, message",
    [
        # n_features_in_ = 1e12 in the metadata: load() tried to allocate 7 TiB (MemoryError)
        (models.LinearRegression, {"n_features_in_": 10**12}, r"n_features_in_ \(1000000000000\) does not fit the 4"),
        # hidden_layer_sizes = [1e9]: load() built the network and was killed by the OOM killer
        (models.MLPRegressor, {"params": {"hidden_layer_sizes": [10**9]}}, r"hidden_layer_sizes \(1000000000\)"),
        (models.PolynomialRegression, {"params": {"degree": 60}}, "the polynomial terms"),
    ],
)
def test_forged_sizes_are_refused_before_allocating(tmp_path, data, cls, meta, message):
    X, y = data
    est = cls(epochs=5, diagnose=False, **({"hidden_layer_sizes": (4,)} if cls is models.MLPRegressor else {}))
    save(est.fit(X, y), tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "forged.npz", meta)
    with pytest.raises(ModelFileError, match=message):
        load(tmp_path / "forged.npz")


def test_archive_declaring_a_huge_array_is_refused_without_reading_it(tmp_path):
    # a few bytes that declare a 745 GB array: NumPy allocates the declared shape
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as zf:
        zf.writestr("__meta__.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(ModelFileError, match="its arrays would take 745 GB once loaded"):
        load(tmp_path / "bomb.npz")


def test_directories_are_named_as_such(tmp_path, data):
    # save() said "already exists; pass overwrite=True", load() said "no such model file"
    X, y = data
    est = models.LinearRegression(epochs=5, diagnose=False).fit(X, y)
    with pytest.raises(IsADirectoryError, match="is a directory; give a file path"):
        save(est, tmp_path, overwrite=True)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load(tmp_path)


def test_nan_standardisation_is_refused(tmp_path, data):
    X, y = data
    save(models.LinearRegression(epochs=5, standardize=True, diagnose=False).fit(X, y), tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "nan.npz", x_mean=np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ModelFileError, match="'x_mean' and 'x_scale' hold NaN or infinite values"):
        load(tmp_path / "nan.npz")


# ----------------------------------------------------------------------------- gradwise.train


def _linear_setup():
    import gradwise
    from gradwise import nn, optim

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = X @ [1.0, 2.0, 3.0]
    model = nn.Linear(3, 1, rng=np.random.default_rng(1))
    mse = nn.MSELoss()
    return gradwise, nn, optim, X, y, model, (lambda out, yb: mse(out.reshape(-1), yb))


@pytest.mark.parametrize(
    "bad_loss, error, message",
    [
        # was "TypeError: only 0-dimensional arrays can be converted to Python scalars"
        (lambda out, yb: (out.reshape(-1) - yb) ** 2, ValueError, r"must return a scalar, got shape \(20,\)"),
        # were AttributeError: 'float' / 'NoneType' object has no attribute 'data'
        (lambda out, yb: 1.0, TypeError, "must return a scalar gradwise Tensor, got float"),
        (lambda out, yb: None, TypeError, "got NoneType"),
    ],
)
def test_train_names_a_loss_that_is_not_a_scalar_tensor(bad_loss, error, message):
    gradwise, nn, optim, X, y, model, _ = _linear_setup()
    with pytest.raises(error, match=message):
        gradwise.train(model, bad_loss, optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=2)


def test_train_refuses_an_optimizer_over_other_parameters():
    # the loss stayed constant: the optimizer updated another model's weights
    gradwise, nn, optim, X, y, model, loss = _linear_setup()
    other = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="the optimizer holds none of the parameters of Linear"):
        gradwise.train(model, loss, optim.SGD(other.parameters(), lr=0.1), (X, y), epochs=2)


def test_train_refuses_a_plain_function_as_callback():
    # a function has no on_step_end: it was silently never called
    gradwise, nn, optim, X, y, model, loss = _linear_setup()
    calls = []
    with pytest.raises(TypeError, match="has none of the methods on_train_begin"):
        gradwise.train(model, loss, optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=2,
                       callbacks=[calls.append])


def test_train_names_a_bare_array_as_data():
    # was "ValueError: too many values to unpack (expected 2)"
    gradwise, nn, optim, X, y, model, loss = _linear_setup()
    with pytest.raises(TypeError, match=r"data is a single array of shape \(20, 3\); give the pair"):
        gradwise.train(model, loss, optim.SGD(model.parameters(), lr=0.1), X, epochs=2)


def test_train_size_one_loss_is_accepted_and_exact():
    # a loss of shape (1,) is a scalar for backward (as in PyTorch): one GD step by hand
    gradwise, nn, optim, X, y, model, _ = _linear_setup()
    w0, b0 = model.weight.data.copy(), model.bias.data.copy()
    res = gradwise.train(model, lambda out, yb: ((out.reshape(-1) - yb) ** 2).mean().reshape(1),
                         optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=1)
    r = X @ w0.ravel() + b0[0] - y
    assert res.loss_curve[0] == pytest.approx(np.mean(r**2), rel=1e-12)
    np.testing.assert_allclose(model.weight.data.ravel(), w0.ravel() - 0.1 * 2 / len(y) * X.T @ r, rtol=1e-12)


def test_polynomial_degree_too_large_for_memory_is_a_clear_error():
    # degree 20 on 10 features: C(30, 20) - 1 = 30,045,014 monomials x 40 rows (9 GB);
    # PolynomialFeatures.transform raised a bare MemoryError (or the process was killed)
    X = np.random.default_rng(0).normal(size=(40, 10))
    with pytest.raises(ValueError, match="makes 30,045,014 monomials: the expanded X would take 8.95 GB"):
        models.PolynomialRegression(degree=20, epochs=2, diagnose=False).fit(X, X.sum(axis=1))
