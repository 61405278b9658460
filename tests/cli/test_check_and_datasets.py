"""`gradwise check FILE.py` (+ --template) and `gradwise datasets`."""

from gradwise.cli import app


def test_template_is_clean_and_a_sign_error_is_found(runner, workdir):
    r = runner.invoke(app, ["check", "--template"])
    assert r.exit_code == 0 and "def grad(params, X, y):" in r.stdout
    (workdir / "mine.py").write_text(r.stdout)
    r = runner.invoke(app, ["check", "mine.py"])
    assert r.exit_code == 0, r.output
    assert "no findings" in r.stdout
    src = (workdir / "mine.py").read_text().replace('return {"w": X.T @ err / len(y)', 'return {"w": -X.T @ err / len(y)')
    (workdir / "bad.py").write_text(src)
    r = runner.invoke(app, ["check", "bad.py"])
    assert r.exit_code == 1, r.output
    assert "gradient.sign" in r.stdout and "at w" in r.stdout


def test_check_bad_usage_exit_2(runner, workdir):
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 2 and "give a FILE.py to check, or --template" in r.stderr
    r = runner.invoke(app, ["check", "nope.py"])
    assert r.exit_code == 2 and r.stderr.startswith("gradwise: error: ") and "nope.py" in r.stderr
    (workdir / "raises.py").write_text("import numpy as np\nparams = np.zeros(2)\n\ndef loss(p):\n    return 1 / 0\n\ndef grad(p):\n    return p\n")
    r = runner.invoke(app, ["check", "raises.py"])
    assert r.exit_code == 2
    assert "ZeroDivisionError" in r.stderr and "raises.py" in r.stderr  # the user's own traceback lines


def test_datasets_lists_the_bundled_sets(runner):
    r = runner.invoke(app, ["datasets"])
    assert r.exit_code == 0
    for line in ("diabetes_bmi", "breast_cancer", "xor", "iris"):
        assert line in r.stdout
    assert "442" in r.stdout and "569" in r.stdout
