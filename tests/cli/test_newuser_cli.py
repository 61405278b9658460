"""Regressions from a new user's report on `gradwise fit` (README commands)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from rich.console import Console
from sklearn.datasets import load_breast_cancer, load_digits

from gradwise.cli import app
from gradwise.report.terminal import finding_panel, fit_options, missing_options


def _fit(runner, *args):
    r = runner.invoke(app, ["fit", *args])
    assert r.exit_code in (0, 1), r.output
    return r


def _report(out):
    return json.loads((out / "report.json").read_text())


def _flat(text: str) -> str:
    """Terminal text without the panel borders and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def digits_csv(workdir):
    load_digits(as_frame=True).frame.to_csv("digits.csv", index=False)
    return workdir / "digits.csv"


# ----------------------------------------------------------------------------- issue 1
def test_digits_regression_mlp_blow_up_is_lr_too_high_and_the_printed_fix_works(runner, digits_csv):
    r = _fit(runner, "digits.csv", "--model", "mlp:32", "--out", "o1")
    rep = _report(digits_csv.parent / "o1")
    curve = rep["training"]["loss_curve"]
    assert rep["training"]["epochs_run"] == 11 and curve[1] / curve[0] > 1e7
    f = {x["code"]: x for x in rep["findings"]}
    hi = f["lr.too_high"]
    assert hi["evidence"]["jump_at_step"] == 1
    assert hi["evidence"]["observed_growth"] == pytest.approx(curve[1] / curve[0], rel=1e-9)
    assert hi["evidence"]["lambda_max"] > 1000  # at the start; the dead end point has ~2
    assert rep["diagnosis"]["lambda_max_end"] < 10
    assert hi["fix"]["lr"] < hi["evidence"]["bound"] == pytest.approx(2 / hi["evidence"]["lambda_max"])
    assert hi["verified"]["ok"] is True
    assert f["activations.dead_relu"]["fix"] == hi["fix"]
    line = f"rerun with: --lr {hi['fix']['lr']:.6g}"
    assert line in _flat(r.output)
    # following the printed line: no explosion, no dead units, a far lower loss
    _fit(runner, "digits.csv", "--model", "mlp:32", "--lr", f"{hi['fix']['lr']:.6g}", "--out", "o2")
    rep2 = _report(digits_csv.parent / "o2")
    codes2 = {x["code"] for x in rep2["findings"]}
    assert not codes2 & {"lr.too_high", "activations.dead_relu"}
    assert rep2["training"]["final_loss"] < 0.1 * curve[0]


# ----------------------------------------------------------------------------- issue 2
def test_every_fix_is_printed_whole_or_says_it_has_no_fit_option():
    assert fit_options({"lr": 0.00125, "epochs": 101580}) == "--lr 0.00125 --epochs 101580"
    assert fit_options({"init": "he_normal"}) == "--init he_normal"
    assert fit_options({"init": "glorot_normal", "activation": "relu"}) == "--init glorot_normal --activation relu"
    assert fit_options({"drop_columns": [0, 2]}, ["a", "b", "c", "d"]) == "--features b,d"
    assert fit_options({"init": "glorot_normal", "clip_grad_norm": 1.0}) is None
    assert missing_options({"init": "glorot_normal", "clip_grad_norm": 1.0}) == ["clip_grad_norm=1"]
    console = Console(record=True, width=200)
    console.print(finding_panel({"code": "sgd.noise_floor", "severity": "info", "message": "m",
                                 "fix": {"lr_schedule": "decay"}}, cli_fix=True))
    text = console.export_text()
    assert "rerun with" not in text
    assert "apply in Python: no `gradwise fit` option for lr_schedule=decay" in text


def test_default_run_rerun_lines_hold_every_part_of_each_fix(runner, workdir):
    r = _fit(runner, "--out", "o")
    rep = _report(workdir / "o")
    text = _flat(r.output)
    fixes = [x["fix"] for x in rep["findings"] if x.get("fix")]
    assert {"lr", "epochs"} <= set(next(fx for fx in fixes if "epochs" in fx))
    for fx in fixes:
        assert f"rerun with: {fit_options(fx)}" in text


def test_init_option_reaches_the_mlp_and_is_refused_elsewhere(runner, workdir):
    _fit(runner, "xor_plain", "--model", "mlp:4", "--init", "he_normal", "--epochs", "5", "--out", "o")
    assert _report(workdir / "o")["model"]["params"]["init"] == "he_normal"
    r = runner.invoke(app, ["fit", "xor_plain", "--init", "he_normal", "--out", "o2"])
    assert r.exit_code == 2 and "--init applies to the hidden layers of an mlp" in r.stderr


# ----------------------------------------------------------------------------- issue 3
def test_early_stop_is_reported_with_its_reason_and_how_to_change_it(runner, workdir):
    r = _fit(runner, "xor_plain", "--model", "mlp:3", "--activation", "sigmoid", "--out", "o")
    tr = _report(workdir / "o")["training"]
    assert tr["epochs_run"] < 1000
    assert tr["stopped_reason"] in ("converged", "no_improvement")
    assert f"stopped early after {tr['epochs_run']} of 1000 epochs" in tr["stop"]
    assert "--patience none" in tr["stop"] and "n_iter_no_change=None" in tr["stop"]
    assert tr["stop"] in _flat(r.output)
    _fit(runner, "xor_plain", "--model", "mlp:3", "--activation", "sigmoid", "--patience", "none", "--out", "o2")
    rep2 = _report(workdir / "o2")
    assert rep2["training"]["epochs_run"] == 1000 and rep2["training"]["stopped_reason"] == "max_epochs"
    assert rep2["model"]["params"]["n_iter_no_change"] is None
    _fit(runner, "xor_plain", "--model", "mlp:3", "--patience", "3", "--epochs", "20", "--out", "o3")
    assert _report(workdir / "o3")["model"]["params"]["n_iter_no_change"] == 3


@pytest.mark.parametrize("bad", ["0", "-2", "ten"])
def test_bad_patience_is_one_line_exit_2(runner, workdir, bad):
    r = runner.invoke(app, ["fit", "xor_plain", "--patience", bad, "--out", "o"])
    assert r.exit_code == 2 and "--patience" in r.stderr and not (workdir / "o").exists()


# ----------------------------------------------------------------------------- issue 4
def test_separable_logistic_has_no_fake_optimum_and_one_final_loss(runner, workdir):
    r = _fit(runner, "breast_cancer", "--out", "o")
    rep = _report(workdir / "o")
    opt = rep["optimum"]
    assert opt["separable"] is True and opt["loss"] == 0.0
    assert "parameters" not in opt and "distance" not in opt
    # the mean log-loss per sample at the final parameters, from the coefficients
    X, y = load_breast_cancer(return_X_y=True)
    coef = np.array(rep["parameters"][0]["values"], dtype=float).ravel()
    b = float(np.ravel(rep["parameters"][1]["values"])[0])
    z = X @ coef + b
    pos = rep["data"]["classes"][1]
    truth = float(np.mean(np.logaddexp(0, z) - (y == pos) * z))
    assert rep["metrics"]["log_loss"] == pytest.approx(truth, rel=1e-9)
    assert rep["training"]["final_loss"] == rep["metrics"]["log_loss"]
    assert rep["training"]["loss"].startswith("log_loss: mean log-loss")
    assert truth > 34.6  # above what a clipped log_loss (1e-15) could ever report
    for f in rep["findings"]:
        m = re.search(r"the run ended at ([0-9.e+-]+)", (f.get("verified") or {}).get("summary", ""))
        if m:
            assert float(m.group(1)) == pytest.approx(truth, rel=1e-5)
    assert "linearly separable" in _flat(r.output)


def test_overlapping_classes_keep_the_logistic_optimum(runner, workdir):
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = (x + rng.normal(size=200) > 0).astype(int)
    (workdir / "o.csv").write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y)))
    _fit(runner, "o.csv", "--lr", "1", "--epochs", "2000", "--out", "o")
    opt = _report(workdir / "o")["optimum"]
    assert "separable" not in opt and len(opt["parameters"]) == 2 and opt["distance"] < 1e-2
