"""`gradwise fit` with each model kind: defaults, classification, polynomial (S5), MLP."""

import json

import numpy as np
import pytest

from gradwise.cli import app

jsonschema = pytest.importorskip("jsonschema")

# S5 (SCENARIOS.md): OLS (a, b, c, d) = (0.478966, -1.255555, -1.859872, 1.251128), MSE 0.892952
S5_OLS = {"x": -1.859872, "x^2": -1.255555, "x^3": 0.478966}


def _report(path):
    from gradwise.report.jsonreport import load_schema

    rep = json.loads((path / "report.json").read_text())
    jsonschema.validate(rep, load_schema())
    return rep


def _codes(rep):
    return [f["code"] for f in rep["findings"]]


@pytest.fixture
def binary_csv(workdir):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    p = 1 / (1 + np.exp(-(1.5 * X[:, 0] - 2 * X[:, 1] + 0.3)))
    y = (rng.random(300) < p).astype(int)
    lines = [f"{a:.6f},{b:.6f},{t}" for (a, b), t in zip(X, y)]
    (workdir / "bin.csv").write_text("a,b,label\n" + "\n".join(lines) + "\n")
    return workdir / "bin.csv"


def test_01_target_defaults_to_logistic_and_reaches_the_lbfgs_optimum(runner, binary_csv, workdir):
    r = runner.invoke(app, ["fit", str(binary_csv), "--lr", "1", "--epochs", "2000", "--out", "o"])
    assert r.exit_code == 0, r.output
    rep = _report(workdir / "o")
    assert rep["model"]["estimator"] == "LogisticRegression" and rep["data"]["task"] == "binary"
    assert rep["data"]["classes"] == [0, 1] and rep["model"]["terms"] == ["a", "b"]
    coef, intercept = (np.ravel(b["values"]) for b in rep["parameters"])
    assert np.r_[coef, intercept] == pytest.approx(rep["optimum"]["parameters"], abs=1e-6)
    assert rep["optimum"]["loss_gap"] == pytest.approx(0, abs=1e-9)
    assert rep["gradient_check"]["ok"] and rep["gradient_check"]["max_abs_error"] < 1e-8
    assert "coef[a]" in r.stdout and "coef[b]" in r.stdout


def test_s5_cubic_lr_above_the_limit_through_the_cli(runner, workdir):
    r = runner.invoke(app, ["fit", "cubic", "--model", "poly:3", "--lr", "0.01", "--epochs", "100", "--out", "o"])
    assert r.exit_code == 1, r.output
    rep = _report(workdir / "o")
    assert rep["model"]["terms"] == ["x", "x^2", "x^3"]
    (f,) = [f for f in rep["findings"] if f["code"] == "lr.too_high"]
    assert f["evidence"]["bound"] == pytest.approx(8.84e-3, rel=1e-3)
    assert f["verified"] is not None


def test_s5_cubic_standardized_reaches_ols(runner, workdir):
    r = runner.invoke(app, ["fit", "cubic", "--model", "poly:3", "--standardize", "--lr", "0.3", "--epochs", "3000",
                            "--out", "o"])
    assert r.exit_code == 0, r.output
    rep = _report(workdir / "o")
    coef, intercept = (b["values"] for b in rep["parameters"])
    assert dict(zip(rep["model"]["terms"], coef)) == pytest.approx(S5_OLS, abs=1e-6)
    assert intercept == pytest.approx(1.251128, abs=1e-6)
    assert rep["metrics"]["mse"] == pytest.approx(0.892952, abs=1e-6)


def test_mlp_classifier_on_iris_multiclass(runner, workdir):
    r = runner.invoke(app, ["fit", "iris", "--model", "mlp:8", "--loss", "ce", "--optimizer", "adam", "--lr", "0.01",
                            "--epochs", "300", "--seed", "1", "--out", "o"])
    assert r.exit_code in (0, 1), r.output
    rep = _report(workdir / "o")
    assert rep["model"]["estimator"] == "MLPClassifier" and rep["data"]["task"] == "multiclass"
    assert rep["model"]["n_parameters"] == 4 * 8 + 8 + 8 * 3 + 3
    assert rep["metrics"]["accuracy"] > 0.9
    assert rep["model"]["params"]["hidden_layer_sizes"] == [8] and rep["model"]["params"]["random_state"] == 1
    assert {b["name"] for b in rep["parameters"]} >= {"0.weight", "0.bias"}


def test_mlp_regressor_on_a_numeric_target(runner, workdir):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 80)
    (workdir / "r.csv").write_text("x,y\n" + "".join(f"{a:.6f},{np.sin(a):.6f}\n" for a in x))
    r = runner.invoke(app, ["fit", "r.csv", "--model", "mlp:16", "--activation", "tanh", "--optimizer", "adam",
                            "--lr", "0.01", "--epochs", "300", "--batch-size", "16", "--out", "o", "--json"])
    assert r.exit_code in (0, 1), r.output
    rep = json.loads(r.stdout)
    assert rep["model"]["estimator"] == "MLPRegressor" and rep["model"]["params"]["activation"] == "tanh"
    assert rep["model"]["params"]["batch_size"] == 16
    assert rep["metrics"]["r2"] > 0.9
    assert rep["gradient_check"]["ok"]


def test_a_few_integer_codes_fitted_as_regression_get_a_note(runner, workdir):
    import pandas as pd

    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    pd.DataFrame({"x": x, "kind": (x > 0).astype(int) + (x > 1).astype(int)}).to_csv("k.csv", index=False)
    res = runner.invoke(app, ["fit", "k.csv", "--out", "o1", "--epochs", "20"])
    assert "has 3 integer values and is fitted as a regression" in res.stderr
    assert "--loss ce" in res.stderr
    res = runner.invoke(app, ["fit", "k.csv", "--out", "o2", "--epochs", "20", "--model", "linear"])
    assert "note:" not in res.stderr  # asked for explicitly
