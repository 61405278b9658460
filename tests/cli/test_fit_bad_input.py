"""`gradwise fit` on bad input: exit 2, one clear line on stderr, nothing written."""

import pytest

from gradwise.cli import app

CSV = "x1,x2,y\n1,2,3.5\n2,1,4.0\n3,5,9.1\n4,4,8.2\n5,0,5.3\n"


def _files(workdir):
    (workdir / "ok.csv").write_text(CSV)
    (workdir / "text.csv").write_text("x1,x2,y\n1,2,3.5\n2,abc,4.0\n3,5,9.1\n")
    (workdir / "holes.csv").write_text("x1,x2,y\n1,2,3.5\n2,,4.0\n3,5,9.1\n4,4,\n5,0,5.3\n")
    (workdir / "const.csv").write_text("x1,y\n1,7\n2,7\n3,7\n")
    (workdir / "tiny.csv").write_text("x1,x2,y\n1,2,3\n2,1,4\n")
    (workdir / "empty.csv").write_text("")
    (workdir / "header.csv").write_text("x1,y\n")
    (workdir / "binary.csv").write_bytes(b"\xff\xfe\x00\x81\x82" * 50)
    (workdir / "classes.csv").write_text("x1,y\n" + "".join(f"{i},{i % 3}\n" for i in range(12)))
    (workdir / "labels.csv").write_text("x1,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(12)))
    (workdir / "many.csv").write_text("x1,y\n" + "".join(f"{i},{i}\n" for i in range(60)))
    (workdir / "existing").mkdir()


CASES = [
    # file problems
    (["missing.csv"], "cannot read missing.csv: no such file"),
    (["nodataset"], "'nodataset' is neither a file nor a bundled dataset"),
    (["binary.csv"], "cannot read binary.csv as CSV"),
    (["existing"], "is a directory"),
    (["empty.csv"], "empty.csv is empty"),
    (["header.csv"], "has a header but no data rows"),
    # columns and values
    (["ok.csv", "--target", "price"], "column 'price' not found in ok.csv; available columns: x1, x2, y"),
    (["ok.csv", "--features", "x1,zz"], "column 'zz' not found"),
    (["ok.csv", "--features", "x1,,x2"], "give distinct column names"),
    (["text.csv"], "column 'x2' of text.csv has non-numeric values at line 3 (first: 'abc')"),
    (["holes.csv"], "missing values in column 'x2' of holes.csv at line 3 (2 incomplete rows in total)"),
    (["holes.csv"], "or use --dropna to drop those rows"),
    (["const.csv"], "target column 'y' of const.csv is constant"),
    (["tiny.csv"], "2 rows but --model linear has 3 parameters"),
    (["ok.csv", "--model", "poly:3"], "5 rows but --model poly:3 has 10 parameters"),
    # impossible combinations
    (["ok.csv", "--model", "linear", "--loss", "ce"], "--loss ce is a classification loss but --model linear"),
    (["classes.csv", "--model", "logistic", "--loss", "mse"], "--loss mse does not go with --model logistic"),
    (["ok.csv", "--model", "logistic"], "classification needs class labels, but the target has non-integer values (e.g. 3.5)"),
    (["classes.csv", "--loss", "bce"], "--loss bce needs two classes but the target has 3"),
    (["many.csv", "--loss", "ce"], "the target has 60 distinct numeric values, which look like a quantity"),
    (["labels.csv", "--model", "linear"], "the target has text labels (a, b, ...)"),
    (["ok.csv", "--activation", "relu"], "--activation applies to the hidden layers of an mlp"),
    # option values
    (["ok.csv", "--model", "tree"], "unknown --model 'tree'"),
    (["ok.csv", "--model", "poly:0"], "the degree must be a positive integer"),
    (["ok.csv", "--model", "mlp:8,x"], "hidden layer sizes must be positive integers"),
    (["ok.csv", "--lr", "-0.1"], "--lr -0.1: the learning rate must be a positive number"),
    (["ok.csv", "--lr", "nan"], "the learning rate must be a positive number"),
    (["ok.csv", "--epochs", "0"], "--epochs 0: give at least 1 epoch"),
    (["ok.csv", "--batch-size", "half"], "--batch-size 'half': give a positive integer or 'full'"),
    (["ok.csv", "--batch-size", "6"], "--batch-size 6 is larger than the 5 rows"),
    (["ok.csv", "--seed", "-1"], "the seed must be a non-negative integer"),
    # output folder
    (["ok.csv", "--out", "existing"], "output folder existing already exists; use --force"),
    (["ok.csv", "--out", "ok.csv"], "exists and is not a folder"),
    # bundled datasets
    (["diabetes", "--target", "y"], "the bundled dataset 'diabetes' has the target 'disease progression'"),
    (["diabetes", "--features", "bmi,height"], "feature 'height' not found in dataset 'diabetes'"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[m[:40] for _, m in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(runner, workdir, listing, args, message):
    _files(workdir)
    before = listing(workdir)
    r = runner.invoke(app, ["fit", *args])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("gradwise: error: ") and r.stderr.count("\n") == 1
    assert message in r.stderr
    assert listing(workdir) == before


def test_a_failing_diagnosis_is_an_internal_error_not_a_clean_run(runner, workdir, listing, monkeypatch):
    import gradwise.models._base as base

    def broken(estimator, result, X, y):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(base, "fit_hooks", lambda: [broken])  # the name the estimators call
    (workdir / "ok.csv").write_text(CSV)
    r = runner.invoke(app, ["fit", "ok.csv", "--out", "o"])
    assert r.exit_code == 3
    assert "internal error: the diagnosis of the run failed" in r.stderr and "boom" in r.stderr
    assert listing(workdir) == ["ok.csv"]
