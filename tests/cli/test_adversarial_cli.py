"""`gradwise fit` on inputs a real user gives: each test is a bug found by trying
to break the command (or a guard against one). Exit 2 = bad input, one line on
stderr, nothing written."""

import json

import numpy as np
import pytest

from gradwise.cli import app
from gradwise.report import fitjob

OK = "x1,x2,y\n" + "".join(f"{i},{(i * 7) % 5},{2 * i - (i * 7) % 5 + 0.1 * (i % 3)}\n" for i in range(30))


def _bad(runner, workdir, listing, args, message):
    (workdir / "ok.csv").write_text(OK)
    before = listing(workdir)
    r = runner.invoke(app, ["fit", *args])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("gradwise: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr
    assert listing(workdir) == before


BAD = [
    # --features "" silently meant "all features"
    (["ok.csv", "--features", ""], "--features '': give distinct column names"),
    # a seed above 2**32-1 reached scikit-learn's check_random_state: traceback
    (["ok.csv", "--seed", "99999999999999999999"], "the seed must be a non-negative integer up to 4294967295"),
    # 1e9 epochs ran for hours with no output under --json
    (["ok.csv", "--epochs", "1000000000", "--json"], "--epochs 1000000000 would take about 17 hours"),
    # a huge hidden layer tried to allocate tens of GB
    (["ok.csv", "--model", "mlp:100000000"], "has 400,000,001 parameters and would need about 79 GB"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_options(runner, workdir, listing, args, message):
    _bad(runner, workdir, listing, args, message)


def test_huge_values_are_refused_before_an_overflow(runner, workdir, listing):
    # 1e300 features: the gradient check at the start crashed with a NonFiniteLoss traceback
    (workdir / "huge.csv").write_text("x,y\n" + "".join(f"{i}e300,{i}\n" for i in range(1, 12)))
    _bad(runner, workdir, listing, ["huge.csv"], "column 'x' has values as large as 1.1e+301")


def test_decimal_comma_and_thousands_separator_are_named(runner, workdir, listing):
    (workdir / "eu.csv").write_text("x;y\n1,5;2\n2,5;3\n3;4\n")
    _bad(runner, workdir, listing, ["eu.csv"], "(first: '1,5') (numbers need '.' as the decimal point")
    (workdir / "th.csv").write_text('x,y\n"1,000",2\n"2,000",3\n3,4\n')
    _bad(runner, workdir, listing, ["th.csv"], "no thousands separators")


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_files_are_read(runner, workdir, sep):
    # a ';' file was one column 'x1;x2;y': "has no feature column besides the target 'x1;x2;y'"
    (workdir / "d.csv").write_text(OK.replace(",", sep))
    r = runner.invoke(app, ["fit", "d.csv", "--out", "o", "--json"])
    assert r.exit_code in (0, 1), r.output
    rep = json.loads(r.stdout)
    assert rep["data"]["features"] == ["x1", "x2"] and rep["data"]["target"] == "y"
    # the same fit as the comma file: the OLS optimum of y on (x1, x2)
    data = np.loadtxt(workdir / "d.csv", delimiter=sep, skiprows=1)
    A = np.c_[data[:, :2], np.ones(len(data))]
    sol = np.linalg.lstsq(A, data[:, 2], rcond=None)[0]
    np.testing.assert_allclose(rep["optimum"]["parameters"], sol, rtol=1e-8)


def test_keyboard_interrupt_is_one_line_exit_130(runner, workdir, listing, monkeypatch):
    (workdir / "ok.csv").write_text(OK)
    before = listing(workdir)

    def interrupt(self, state):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitjob._StartCheck, "on_step_end", interrupt)
    r = runner.invoke(app, ["fit", "ok.csv", "--out", "o"])
    assert r.exit_code == 130
    assert r.stderr == "gradwise: interrupted; nothing written\n"
    assert listing(workdir) == before


@pytest.mark.parametrize(
    "expression, shown",
    [
        ("f = x + 2**10**10", "f = x + inf = inf"),  # Python float power: OverflowError traceback
        ("f = x + 1/0", "f = x + inf = inf"),  # ZeroDivisionError traceback
        ("f = x * 10**400", "df/dx = inf"),  # int too large to convert to float
    ],
)
def test_explain_constant_overflow_is_inf_not_a_traceback(runner, expression, shown):
    r = runner.invoke(app, ["explain", expression, "--values", "x=2"])
    assert r.exit_code == 0, r.output
    assert shown in r.stdout
    assert r.stderr == ""  # no NumPy RuntimeWarning lines either


def test_explain_nan_has_no_warning_on_stderr(runner):
    r = runner.invoke(app, ["explain", "f = sqrt(-x)", "--values", "x=2"])
    assert r.exit_code == 0 and r.stderr == ""
    assert "df/dx = nan" in r.stdout


@pytest.mark.parametrize(
    "expression, message",
    [
        ("+".join(["x"] * 2400), "nested too deeply"),  # RecursionError traceback in ast
        ("+".join(["x"] * 100_000), "at most 5,000 are accepted"),
    ],
)
def test_explain_huge_expressions_are_one_line_errors(runner, expression, message):
    r = runner.invoke(app, ["explain", expression, "--values", "x=2"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("gradwise: error: ") and r.stderr.count("\n") == 1
    assert message in r.stderr


def test_out_below_a_file_is_refused_before_training(runner, workdir, listing):
    # --out ok.csv/sub trained, then crashed with a NotADirectoryError traceback
    _bad(runner, workdir, listing, ["ok.csv", "--out", "ok.csv/sub"], "--out ok.csv/sub: ok.csv is a file, not a folder")


def test_unwritable_out_is_one_line_exit_2(runner, workdir, monkeypatch):
    # an output folder that cannot be created (read-only mount, /proc, ...) was a traceback
    (workdir / "ok.csv").write_text(OK)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fitjob.Path, "mkdir", refuse)
    r = runner.invoke(app, ["fit", "ok.csv", "--out", "o"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == "gradwise: error: cannot write the outputs to o: Permission denied; choose another --out\n"


@pytest.mark.parametrize("args", [["--model", "poly:²"], ["--model", "mlp:4,²"], ["--batch-size", "²"]])
def test_superscript_digits_are_not_numbers(runner, workdir, listing, args):
    # '²'.isdigit() is True but int('²') raises: a ValueError traceback
    _bad(runner, workdir, listing, ["ok.csv", *args], "positive integer")


def test_diverged_run_prints_no_numpy_warnings(runner, workdir):
    # mini-batch SGD at lr 0.1 on raw features diverges; the metrics overflowed with a
    # RuntimeWarning line on stderr
    (workdir / "ok.csv").write_text(OK)
    r = runner.invoke(app, ["fit", "ok.csv", "--batch-size", "3", "--out", "o", "--json"])
    assert r.exit_code == 1 and r.stderr == ""
    rep = json.loads(r.stdout)
    assert "lr.too_high" in [f["code"] for f in rep["diagnosis"]["findings"]]


# ----------------------------------------------------------------------------- CSV files as users have them


@pytest.mark.parametrize(
    "content, message",
    [
        # pandas renamed the second 'x' to 'x.1' silently (a second 'y' became a feature)
        ("x,x,y\n1,2,3\n2,1,4\n3,5,9\n4,4,8\n5,0,5\n", "column name 'x' appears twice in the header of d.csv (columns 1 and 2)"),
        # a file without a header lost its first row, which became the column names '1', '2'
        ("1,2\n3,4\n5,6\n7,9\n", "the first line of d.csv (1, 2) holds numbers, not column names"),
        # a comment line became a one-column header: "no feature column besides the target '# comment'"
        ("# exported\nx,y\n1,2\n2,3\n3,5\n", "line 1 of d.csv starts with '#'"),
        # Latin-1 text: "'utf-8' codec can't decode byte 0xe9 ..."
        (b"caf\xe9,y\n1,2\n2,3\n3,5\n", "it is not UTF-8 text"),
    ],
)
def test_csv_header_problems_are_named(runner, workdir, listing, content, message):
    path = workdir / "d.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    _bad(runner, workdir, listing, ["d.csv"], message)


def test_utf16_csv_and_padded_names_are_read(workdir):
    from gradwise.data import load_csv

    # UTF-16 (spreadsheet "Unicode text") was "'utf-8' codec can't decode byte 0xff";
    # 'x ' kept its trailing space, so --features x did not find it
    (workdir / "u.csv").write_bytes("x , y\n1 , 2\n2 , 3\n3 , 5\n".encode("utf-16"))
    X, y, names = load_csv(workdir / "u.csv", features=["x"])
    assert names == ["x"] and X.ravel().tolist() == [1.0, 2.0, 3.0] and y.tolist() == [2, 3, 5]


def test_pandas_index_column_is_not_a_feature(runner, workdir):
    # DataFrame.to_csv() writes the row index as an unnamed first column; it was fitted as
    # a feature 'Unnamed: 0'
    import pandas as pd

    df = pd.DataFrame({"x": np.arange(12.0), "y": 3 * np.arange(12.0) + 1 + 0.1 * (np.arange(12) % 2)})
    df.to_csv(workdir / "d.csv")
    r = runner.invoke(app, ["fit", "d.csv", "--out", "o", "--json"])
    rep = json.loads(r.stdout)
    assert rep["data"]["features"] == ["x"]
    A = np.c_[df.x, np.ones(12)]
    np.testing.assert_allclose(rep["optimum"]["parameters"], np.linalg.lstsq(A, df.y, rcond=None)[0], rtol=1e-9)


@pytest.mark.parametrize("features, message", [
    ("x1", "features must be a list of column names, got the string 'x1'"),  # was "column 'x' not found"
    (["x1", "x1"], "column 'x1' is listed twice in the features"),  # was a pandas TypeError
])
def test_load_csv_feature_lists(workdir, features, message):
    from gradwise.data import DataError, load_csv

    (workdir / "ok.csv").write_text(OK)
    with pytest.raises(DataError, match=message):
        load_csv(workdir / "ok.csv", features=features)


@pytest.mark.parametrize("expression, message", [
    ("f = exp(x, x)", "exp() takes 1 argument, got 'exp(x, x)'"),  # was a TypeError traceback
    ("f = maximum(x)", "maximum() takes 2 arguments"),
])
def test_explain_wrong_number_of_arguments(runner, expression, message):
    r = runner.invoke(app, ["explain", expression, "--values", "x=2"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("gradwise: error: ") and r.stderr.count("\n") == 1
    assert message in r.stderr


def test_explain_alias_keeps_the_input_name():
    # "f = x; g = f * 2" renamed the input x to f: the trace said dg/df = 2, not dg/dx
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["explain", "f = x; g = f * 2", "--values", "x=2"])
    assert r.exit_code == 0
    assert "dg/dx = 2" in r.stdout and "dg/df" not in r.stdout


def test_cost_model_does_not_refuse_ordinary_runs():
    # the first cost model (4 ns per row and parameter) refused a 1000-epoch MLP on
    # MNIST-sized data (estimated 7 hours; measured here 1.5 s per epoch at batch 128)
    spec = fitjob.parse_model_spec("mlp:128")
    est = type("Est", (), {"batch_size": None, "epochs": 1000, "hidden_layer_sizes": (100,)})()
    fitjob._check_cost(spec, est, 20_000, 784, 10)  # about 1000 x 0.5 s: allowed
    est.epochs = 100_000
    with pytest.raises(fitjob.BadInput, match="--epochs 100000 would take about"):
        fitjob._check_cost(spec, est, 20_000, 784, 10)


@pytest.mark.parametrize("model", [[], ["--model", "mlp:4"]])
def test_text_target_without_repeats_is_not_classes(runner, workdir, listing, model):
    # a date column as target: logistic was refused with "20 rows but ... 40 parameters",
    # an mlp trained a 20-class classifier on it
    (workdir / "dates.csv").write_text("x,y\n" + "".join(f"{i},2024-01-{i + 1:02d}\n" for i in range(20)))
    _bad(runner, workdir, listing, ["dates.csv", *model], "the target has 20 different text values in 20 rows (2024-01-01")
