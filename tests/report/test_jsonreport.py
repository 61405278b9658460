"""The fit report's JSON Schema and the report builder."""

import json

import numpy as np
import pytest

from gradwise._result import Finding, Result
from gradwise.report.jsonreport import fit_report, load_schema, parameter_blocks

jsonschema = pytest.importorskip("jsonschema")


def _report(findings, gc_findings=()):
    diag = Result(findings=list(findings), lam_max=1432.3)
    return fit_report(
        data={"source": "d.csv", "n_samples": 3, "n_features": 1, "features": ["x"], "target": "y",
              "task": "regression"},
        model={"spec": "linear", "estimator": "LinearRegression", "params": {"lr": 1e-4}, "n_parameters": 2},
        training={"epochs_run": 2, "final_loss": float("nan"), "loss_curve": [3.0, float("inf")], "time_s": 0.1},
        metrics={"loss": 2.5, "r2": 0.3},
        parameters=parameter_blocks({"coef[x]": np.array([1.5]), "intercept": 0.5, "W": np.zeros((20, 20))}),
        optimum={"loss": 1.0, "parameters": [1.0, 2.0]},
        gradient_check={"ok": True, "max_abs_error": 1e-9, "findings": list(gc_findings)},
        diagnosis=diag,
        files={"report": "report.json", "loss_plot": "loss.png", "gradients_plot": "gradients.png"},
        version="0.1.0",
    )


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_report_with_a_fault_validates_and_exits_1():
    fault = Finding("lr.too_high", "fault", "step above the limit", {"bound": 1.396e-3}, {"lr": 1e-3})
    info = Finding("gradient.kink", "info", "kink at 0", {}, None, "W[0, 1]")
    rep = _report([fault], gc_findings=[info])
    jsonschema.validate(rep, load_schema())
    assert rep["ok"] is False and rep["exit_code"] == 1
    assert [f["code"] for f in rep["findings"]] == ["gradient.kink", "lr.too_high"]
    # non-finite numbers become strings; the report survives a JSON round trip unchanged
    assert rep["training"]["loss_curve"] == [3.0, "inf"] and rep["training"]["final_loss"] == "nan"
    assert json.loads(json.dumps(rep)) == rep
    # large blocks are listed by shape only
    big = rep["parameters"][2]
    assert big == {"name": "W", "shape": [20, 20], "values": None}
    assert rep["parameters"][0]["values"] == [1.5]


def test_info_and_warning_findings_keep_exit_0():
    rep = _report([Finding("sgd.noise_floor", "info", "noise floor"), Finding("lr.oscillation", "warning", "zig")])
    jsonschema.validate(rep, load_schema())
    assert rep["ok"] is True and rep["exit_code"] == 0


def test_schema_rejects_a_malformed_finding():
    rep = _report([Finding("lr.too_high", "fault", "x")])
    rep["findings"][0]["severity"] = "bad"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rep, load_schema())
    rep = _report([])
    del rep["files"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rep, load_schema())


def test_fix_as_fit_options():
    from gradwise.report.terminal import fit_options

    assert fit_options({"standardize": True, "lr": 0.9000000000000006}) == "--standardize --lr 0.9"
    assert fit_options({"lr": 0.0012567535912609933, "epochs": 100954}) == "--lr 0.00125675 --epochs 100954"
    assert fit_options({"init": "glorot"}) is None and fit_options(None) is None
