"""`gradwise check FILE.py` back end: run_check_file, exit_code, CheckFileError, TEMPLATE."""

import textwrap

import pytest

from gradwise.diagnostics.checkfile import (
    TEMPLATE,
    CheckFileError,
    FileCheck,
    exit_code,
    run_check_file,
)


def write(tmp_path, text, name="user_code.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_template_is_a_clean_program(tmp_path):
    r = run_check_file(write(tmp_path, TEMPLATE))
    assert isinstance(r, FileCheck)
    assert r.ok and r.findings == [] and exit_code(r) == 0
    assert r.gradient is not None and r.step is not None
    assert r.step.lr == 0.1


def test_faulty_gradient_and_step_exit_1(tmp_path):
    src = TEMPLATE.replace('"w": X.T @ err / len(y)', '"w": -X.T @ err / len(y)')
    r = run_check_file(write(tmp_path, src))
    assert exit_code(r) == 1
    assert ("gradient.sign", "w") in [(f.code, f.location) for f in r.findings]
    assert ("update.ascent", "w") in [(f.code, f.location) for f in r.findings]


def test_s6_file_with_only_a_step(tmp_path):
    p = write(tmp_path, """
        import numpy as np
        raw = np.array([[1, 2104, 3], [1, 1600, 3], [1, 2400, 3], [1, 1416, 2], [1, 3000, 4]], float)
        X = raw / raw.sum(axis=0)
        y = np.array([400., 330., 369., 232., 540.])
        params = np.array([0., 0.5, 0.5])
        lr = 0.1

        def loss(theta, X, y):
            return 0.5 * np.sum((X @ theta - y) ** 2)

        def step(theta, X, y):
            for i in range(len(X) - 1):
                theta = theta - lr * (X[i] @ theta - y[i]) * X[i]
            return theta
        """)
    r = run_check_file(p)
    assert r.gradient is None
    assert [(f.code, f.location) for f in r.findings] == [("update.skipped_samples", "X[4]")]
    assert exit_code(r) == 1


def test_main_block_not_run_and_matplotlib_is_agg(tmp_path):
    src = TEMPLATE.replace(
        'if __name__ == "__main__":',
        "import matplotlib\n"
        "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()\n"
        'if __name__ == "__main__":\n    raise SystemExit("main block ran")\nif False:')
    r = run_check_file(write(tmp_path, src))
    assert r.ok


def test_missing_file(tmp_path):
    with pytest.raises(CheckFileError, match="no such file"):
        run_check_file(tmp_path / "nope.py")


def test_missing_names(tmp_path):
    p = write(tmp_path, "import numpy as np\nparams = np.zeros(2)\n")
    with pytest.raises(CheckFileError, match="missing loss, grad or step"):
        run_check_file(p)
    p = write(tmp_path, """
        import numpy as np
        params = np.zeros(2)
        def loss(p, X, y):
            return np.sum((X @ p - y) ** 2)
        def step(p, X, y):
            return p
        """, name="no_x.py")
    with pytest.raises(CheckFileError, match="needs X and y"):
        run_check_file(p)


def test_user_exception_shows_user_traceback_not_gradwise(tmp_path):
    p = write(tmp_path, TEMPLATE.replace(
        '    return {"w": X.T @ err / len(y), "b": err.mean()}',
        '    return {"w": X.T @ err / len(y), "b": params["bias"]}'))
    with pytest.raises(CheckFileError) as e:
        run_check_file(p)
    msg = str(e.value)
    assert "KeyError" in msg and "user_code.py" in msg and 'params["bias"]' in msg
    assert "gradwise/diagnostics" not in msg


def test_error_while_importing_and_syntax_error(tmp_path):
    p = write(tmp_path, "import numpy as np\nparams = np.zeros(2)\n1 / 0\n")
    with pytest.raises(CheckFileError, match="ZeroDivisionError") as e:
        run_check_file(p)
    assert "line 3" in str(e.value) and "importlib" not in str(e.value)
    p = write(tmp_path, "def loss(:\n", name="syntax.py")
    with pytest.raises(CheckFileError, match="syntax error on line 1"):
        run_check_file(p)
