"""`gradwise fit` end to end on real data (scikit-learn's diabetes data written to CSV).

Numbers from SCENARIOS.md S2: OLS slope 10.233128, intercept -117.773367,
MSE 3890.4566; Hessian λmax 1432.3, so lr < 2/1432.3 = 1.396e-3 is stable.
"""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from gradwise.cli import app

jsonschema = pytest.importorskip("jsonschema")

OLS = (10.233128, -117.773367)
OLS_MSE = 3890.4566
S2 = ["--target", "target", "--features", "bmi", "--model", "linear"]


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory):
    from sklearn.datasets import load_diabetes

    path = tmp_path_factory.mktemp("data") / "diabetes.csv"
    load_diabetes(scaled=False, as_frame=True).frame.to_csv(path, index=False)
    return path


def _png_ok(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    assert 600 <= w <= 2000 and 300 <= h <= 1500 and path.stat().st_size > 10_000


def _load_report(out):
    from gradwise.report.jsonreport import load_schema

    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, load_schema())
    _png_ok(out / "loss.png")
    _png_ok(out / "gradients.png")
    return report


def _finding(report, code):
    hits = [f for f in report["findings"] if f["code"] == code]
    assert hits, f"{code} not in {[f['code'] for f in report['findings']]}"
    return hits[0]


def test_raw_bmi_not_converged_ill_conditioned_with_verified_fix(runner, workdir, diabetes_csv):
    out = workdir / "raw"
    r = runner.invoke(app, ["fit", str(diabetes_csv), *S2, "--lr", "1e-4", "--epochs", "1000", "--out", str(out)])
    assert r.exit_code == 1, r.output
    rep = _load_report(out)
    assert rep["exit_code"] == 1 and rep["ok"] is False
    assert rep["gradient_check"]["ok"] is True
    # the user's run: slope 5.90496, intercept -0.42310, MSE 4265.48 (SCENARIOS.md S2)
    coef, intercept = (b["values"] for b in rep["parameters"])
    assert coef == pytest.approx([5.90496], abs=1e-5) and intercept == pytest.approx(-0.42310, abs=1e-5)
    assert rep["metrics"]["mse"] == pytest.approx(4265.48, abs=0.01)
    assert rep["optimum"]["parameters"] == pytest.approx(list(OLS), abs=1e-6)
    assert rep["optimum"]["loss"] == pytest.approx(OLS_MSE, abs=1e-4)
    _finding(rep, "convergence.not_reached")
    _finding(rep, "data.ill_conditioned")
    assert any(f["fix"] and f["verified"] for f in rep["findings"]), "no verified fix"
    text = r.stdout
    assert "convergence.not_reached" in text and "data.ill_conditioned" in text and "verified" in text


def test_standardized_reaches_the_optimum_exit_0(runner, workdir, diabetes_csv):
    out = workdir / "std"
    r = runner.invoke(app, ["fit", str(diabetes_csv), *S2, "--standardize", "--lr", "0.1", "--epochs", "1000",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = _load_report(out)
    coef, intercept = (b["values"] for b in rep["parameters"])
    assert [coef[0], intercept] == pytest.approx(list(OLS), rel=1e-6)
    assert rep["metrics"]["mse"] == pytest.approx(OLS_MSE, abs=1e-4)
    assert not [f for f in rep["findings"] if f["severity"] == "fault"]


def test_lr_above_the_stability_limit(runner, workdir, diabetes_csv):
    out = workdir / "high"
    r = runner.invoke(app, ["fit", str(diabetes_csv), *S2, "--lr", "0.01", "--epochs", "1000", "--out", str(out)])
    assert r.exit_code == 1, r.output
    rep = _load_report(out)
    f = _finding(rep, "lr.too_high")
    assert f["evidence"]["bound"] == pytest.approx(1.396e-3, rel=1e-3)


def test_json_stdout_is_pure_json_equal_to_the_file(runner, workdir, diabetes_csv):
    out = workdir / "j"
    r = runner.invoke(app, ["fit", str(diabetes_csv), *S2, "--lr", "1e-4", "--epochs", "200", "--out", str(out),
                            "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout) == json.loads((out / "report.json").read_text())


def test_existing_folder_needs_force(runner, workdir, diabetes_csv):
    args = ["fit", str(diabetes_csv), *S2, "--standardize", "--lr", "0.1", "--epochs", "300", "--out", "o"]
    assert runner.invoke(app, args).exit_code == 0
    first = (workdir / "o" / "report.json").read_text()
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "already exists; use --force" in r.stderr
    assert (workdir / "o" / "report.json").read_text() == first
    (workdir / "o" / "report.json").write_text("{}")
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert json.loads((workdir / "o" / "report.json").read_text())["exit_code"] == 0


def test_no_data_runs_the_bundled_s2_showcase_into_the_default_folder(runner, workdir):
    r = runner.invoke(app, ["fit"])
    assert r.exit_code == 1, r.output
    (out,) = list((workdir / "gradwise-out").iterdir())
    rep = _load_report(out)
    assert rep["data"]["source"] == "dataset:diabetes_bmi" and rep["data"]["features"] == ["bmi"]
    assert rep["optimum"]["parameters"] == pytest.approx(list(OLS), abs=1e-6)
    _finding(rep, "convergence.not_reached")


def test_dropna_drops_incomplete_rows(runner, workdir):
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    rows = [f"{a:.6f},{2 * a + 1:.6f}" for a in x]
    rows[4] = f"{x[4]:.6f},"
    (workdir / "h.csv").write_text("x,y\n" + "\n".join(rows) + "\n")
    r = runner.invoke(app, ["fit", "h.csv", "--lr", "0.1", "--epochs", "500", "--out", "o"])
    assert r.exit_code == 2 and "line 6" in r.stderr
    r = runner.invoke(app, ["fit", "h.csv", "--lr", "0.1", "--epochs", "500", "--out", "o", "--dropna"])
    assert r.exit_code == 0, r.output
    rep = _load_report(workdir / "o")
    assert rep["data"]["n_samples"] == 29
    coef, intercept = (b["values"] for b in rep["parameters"])
    assert [coef[0], intercept] == pytest.approx([2.0, 1.0], abs=1e-5)


def test_real_subprocess_json(diabetes_csv, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "gradwise.cli", "fit", str(diabetes_csv), *S2, "--lr", "1e-4", "--epochs", "1000",
         "--out", str(tmp_path / "o"), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert "convergence.not_reached" in [f["code"] for f in rep["findings"]]
