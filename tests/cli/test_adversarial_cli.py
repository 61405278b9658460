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
