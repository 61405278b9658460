"""No false alarms: healthy runs of different models and optimizers come out clean."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, make_blobs

import gradwise
from gradwise import nn, optim
from gradwise.diagnostics.diagnosis import diagnose
from gradwise.diagnostics.monitor import Monitor
from gradwise.models import (
    LinearRegression,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    PolynomialRegression,
)


def _data(name):
    if name == "diabetes":
        d = load_diabetes()
        return d.data, d.target
    if name == "cancer":
        d = load_breast_cancer()
        return d.data, d.target
    if name == "sin":
        rng = np.random.default_rng(0)
        x = rng.uniform(-3, 3, size=(200, 1))
        return x, np.sin(x[:, 0]) + 0.05 * rng.normal(size=200)
    if name == "cubic":
        rng = np.random.default_rng(0)
        x = np.linspace(-3, 3, 100)
        return x[:, None], 0.5 * x**3 - 1.2 * x**2 - 2 * x + 1 + rng.normal(0, 1, 100)
    X, y = make_blobs(n_samples=150, centers=3, random_state=0)
    return X, y


HEALTHY = [
    (LinearRegression, dict(lr=0.1, epochs=300, standardize=True), "diabetes"),
    (LinearRegression, dict(lr=0.01, epochs=300, standardize=True, optimizer="momentum"), "diabetes"),
    (LinearRegression, dict(lr=0.05, epochs=150, standardize=True, batch_size=32, random_state=0),
     "diabetes"),
    (PolynomialRegression, dict(degree=3, lr=0.1, epochs=500, standardize=True), "cubic"),
    (LogisticRegression, dict(lr=0.5, epochs=300, standardize=True), "cancer"),
    (LogisticRegression, dict(lr=0.01, epochs=200, standardize=True, optimizer="adam"), "cancer"),
    (MLPRegressor, dict(hidden_layer_sizes=(16,), activation="tanh", lr=0.01, epochs=300,
                        optimizer="adam", standardize=True, random_state=0), "sin"),
    (MLPRegressor, dict(hidden_layer_sizes=(16,), activation="relu", lr=0.05, epochs=100,
                        batch_size=32, standardize=True, random_state=0), "sin"),
    (MLPClassifier, dict(hidden_layer_sizes=(8,), activation="relu", lr=0.01, epochs=50,
                         optimizer="adam", standardize=True, random_state=0), "cancer"),
    (MLPClassifier, dict(hidden_layer_sizes=(8,), activation="sigmoid", lr=0.1, epochs=200,
                         optimizer="momentum", standardize=True, random_state=0), "blobs"),
]


@pytest.mark.parametrize("cls, params, data", HEALTHY,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(HEALTHY)])
def test_healthy_estimator_fit_is_clean(cls, params, data):
    X, y = _data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(**params).fit(X, y)
    d = est.diagnosis_
    alarms = [f for f in d.findings if f.severity != "info"]
    assert d.ok and alarms == [], [str(f) for f in alarms]


def test_healthy_train_loop_with_monitor_is_clean():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    model = nn.Sequential(nn.Linear(4, 16, rng=rng), nn.Tanh(), nn.Linear(16, 1, rng=rng))
    opt = optim.SGD(model.parameters(), lr=0.5)
    mon = Monitor()
    loss_fn = nn.BCEWithLogitsLoss()
    res = gradwise.train(model, loss_fn, opt, (X, y), epochs=200, callbacks=[mon], progress=False)
    d = diagnose(res, model=model, loss_fn=loss_fn, X=X, y=y, monitor=mon, optimizer=opt)
    assert d.ok and d.codes() == []
    assert res.loss_curve[-1] < 0.5 * res.loss_curve[0]


def test_healthy_hand_written_loop_is_clean():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 + 0.1 * rng.normal(size=100)
    A = np.hstack([X, np.ones((100, 1))])
    th, hist = np.zeros(4), []
    for _ in range(200):
        r = A @ th - y
        hist.append(np.mean(r**2))
        th = th - 0.3 * 2 * A.T @ r / 100
    d = diagnose(loss=lambda t: ((A @ t - y) ** 2).mean(), params=th, lr=0.3, history=hist, X=X,
                 y=y, budget=0.2)
    assert d.ok and d.codes() == []
