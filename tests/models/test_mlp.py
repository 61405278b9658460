"""MLPs: digits and breast cancer accuracy, XOR from several seeds, regression."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from gradwise import nn
from gradwise.data import load_dataset
from gradwise.models import MLPClassifier, MLPRegressor


def split(name):
    d = load_dataset(name)
    return train_test_split(d.X, d.y, test_size=0.25, random_state=0, stratify=d.y)


def test_default_mlp_classifier_on_digits_at_least_95_percent():
    Xtr, Xte, ytr, yte = split("digits")
    m = MLPClassifier(random_state=0, diagnose=False).fit(Xtr, ytr)
    assert m.score(Xte, yte) >= 0.95
    assert m.result_.stopped_reason in ("converged", "max_epochs")
    assert [c.shape for c in m.coefs_] == [(64, 100), (100, 10)]
    assert m.predict_proba(Xte).shape == (len(Xte), 10)


def test_s4_architecture_breast_cancer():
    Xtr, Xte, ytr, yte = split("breast_cancer")
    m = MLPClassifier((16,), "sigmoid", standardize=True, random_state=0, diagnose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(Xtr, ytr)
    assert [tuple(p.shape) for p in m.model_.parameters()] == [(16, 30), (16,), (1, 16), (1,)]
    assert isinstance(m.model_[1], nn.Sigmoid)
    assert m.score(Xte, yte) >= 0.95


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_xor_learned_from_other_seeds(seed):
    d = load_dataset("xor_plain")
    # plain full-batch GD (the default); no early stop on the plateaus XOR passes through
    m = MLPClassifier((3,), "sigmoid", lr=1.0, epochs=5000, n_iter_no_change=None,
                      random_state=seed, diagnose=False)
    m.fit(d.X, d.y)
    np.testing.assert_array_equal(m.predict(d.X), d.y)
    assert m.loss_curve_[-1] < 0.01


def test_xor_with_sum_of_squared_errors_like_s1():
    d = load_dataset("xor")
    m = MLPClassifier(
        (3,),
        "sigmoid",
        loss="sse",
        optimizer="sgd",
        lr=1.0,
        epochs=5000,
        batch_size=None,
        random_state=0,
        diagnose=False,
    ).fit(d.X, d.y)
    np.testing.assert_array_equal(m.predict(d.X), d.y)
    p = m.predict_proba(d.X)[:, 1]
    assert m.loss_curve_[-1] == pytest.approx(np.sum((p - d.y) ** 2), rel=0.05)


def test_random_state_reproducible():
    d = load_dataset("iris")
    a = MLPClassifier((8,), epochs=20, random_state=5, diagnose=False)
    b = MLPClassifier((8,), epochs=20, random_state=5, diagnose=False)
    c = MLPClassifier((8,), epochs=20, random_state=6, diagnose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for m in (a, b, c):
            m.fit(d.X, d.y)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert not np.array_equal(a.loss_curve_, c.loss_curve_)


def test_mlp_regressor_fits_a_smooth_function_in_float32():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(300, 1)).astype(np.float32)
    y = np.sin(2 * X[:, 0]).astype(np.float32)
    m = MLPRegressor((32,), "tanh", optimizer="adam", lr=0.01, epochs=300, batch_size=32,
                     random_state=0, diagnose=False)
    m.fit(X, y)
    assert m.score(X, y) > 0.97
    assert m.predict(X).dtype == np.float32 and m.coefs_[0].dtype == np.float32


@pytest.mark.parametrize("bad", [(), (0,), (3, -1), "relu", (2.5,)])
def test_bad_hidden_layer_sizes(bad):
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(bad, diagnose=False).fit(np.eye(4), [0, 1, 0, 1])


def test_multiclass_squared_error_loss_uses_one_hot_probabilities():
    from scipy.special import softmax

    d = load_dataset("iris")
    m = MLPClassifier(
        (8,),
        "tanh",
        loss="mse",
        lr=1e-15,
        epochs=1,
        batch_size=None,
        random_state=0,
        diagnose=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(d.X, d.y)
    # the step is negligible, so the fitted network gives the first loss:
    # mean over all n·C entries of (softmax(logits) − one-hot)²
    P = softmax(m.decision_function(d.X), axis=1)
    expected = np.mean((P - np.eye(3)[d.y]) ** 2)
    assert m.result_.step_loss[0] == pytest.approx(expected, rel=1e-9)
    assert MLPClassifier().get_params()["loss"] is None
