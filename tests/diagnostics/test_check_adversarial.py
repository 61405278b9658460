"""Bad and unusual input to check_gradient / check_backward / check_step / check_file:
each gives one clear error naming the problem, or a correct result."""

from __future__ import annotations

import numpy as np
import pytest

from gradwise.diagnostics.check import check_backward, check_gradient
from gradwise.diagnostics.finite_diff import NonFiniteLoss
from gradwise.diagnostics.step import check_step


def sq(w):
    return float(np.sum(np.asarray(w) ** 2))


def dsq(w):
    return 2 * np.asarray(w)


# ----------------------------------------------------------------------------- check_gradient


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_gradient_with_nan_or_inf_is_a_fault_at_that_entry(bad):
    r = check_gradient(sq, lambda w: np.array([2 * w[0], bad, 2 * w[2]]), np.array([1.0, 2.0, 3.0]))
    assert not r.ok
    (f,) = r.findings
    assert f.code == "numeric.nonfinite"
    assert f.location == "params[1]"
    assert f.evidence["entries"][0]["numeric"] == pytest.approx(4.0, rel=1e-8)
    assert r.blocks[0]["verdict"] == "numeric.nonfinite"


def test_a_nonfinite_gradient_of_a_large_block_is_found_without_group_testing():
    w = np.linspace(-1, 1, 50)
    g = lambda w: np.where(np.arange(50) == 7, np.nan, 2 * w)  # noqa: E731
    r = check_gradient(sq, g, w, max_entries=10, autodiff=False)
    assert [f.code for f in r.findings] == ["numeric.nonfinite"]
    assert r.findings[0].location == "params[7]"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_params_with_nan_or_inf_are_rejected_naming_the_entry(bad):
    with pytest.raises(ValueError, match=r"W contains NaN or inf \(W\[0, 1\]"):
        check_gradient(lambda p: sq(p["W"]), lambda p: {"W": dsq(p["W"])},
                       {"W": np.array([[1.0, bad]])})


def test_a_loss_undefined_one_step_away_names_the_entry_and_the_step():
    # sqrt is finite at 0 but NaN at 0 - h: finite differences cannot work there
    with np.errstate(invalid="ignore", divide="ignore"), \
            pytest.raises(NonFiniteLoss, match=r"loss returned nan at params\[0\] = 0 ± 0\.00074"):
        check_gradient(lambda w: float(np.sum(np.sqrt(w))), lambda w: 0.5 / np.sqrt(w),
                       np.array([0.0, 1.0]), autodiff=False)


def test_a_loss_returning_none_or_text_is_a_clear_type_error():
    with pytest.raises(TypeError, match="loss returned None; it must return a number"):
        check_gradient(lambda w: None, dsq, np.ones(2))
    with pytest.raises(TypeError, match="loss returned str 'x', not a real number"):
        check_gradient(lambda w: "x", dsq, np.ones(2))


def test_a_grad_returning_none_or_text_is_a_clear_error():
    with pytest.raises(ValueError, match="grad returned None; it must return one array"):
        check_gradient(sq, lambda w: None, np.ones(2))
    with pytest.raises(ValueError, match=r"grad returned None for b; return an array"):
        check_gradient(lambda p: sq(p["a"]) + sq(p["b"]), lambda p: {"a": dsq(p["a"]), "b": None},
                       {"a": np.ones(2), "b": np.ones(2)})
    with pytest.raises(TypeError, match=r"grad returned 'abc' \(dtype <U3\) for params"):
        check_gradient(sq, lambda w: "abc", np.ones(2))


@pytest.mark.parametrize(
    "params, grad, message",
    [
        ({"a": np.ones(2)}, lambda p: (dsq(p["a"]),),
         r"grad returned a tuple of length 1, which has no entry 'a'; .*\(a dict with keys \['a'\]\)"),
        ((np.ones(2), np.ones(2)), lambda p: {"a": dsq(p[0]), "b": dsq(p[1])},
         r"grad returned a dict with keys \['a', 'b'\], which has no entry 0; .*tuple/list of length 2"),
        ({"a": np.ones(2), "b": np.ones(2)}, lambda p: {"a": dsq(p["a"])},
         r"which has no entry 'b'"),
    ],
)
def test_a_grad_of_another_structure_says_which_structure_is_expected(params, grad, message):
    def loss(p):
        return sum(sq(v) for v in (p.values() if isinstance(p, dict) else p))

    with pytest.raises(ValueError, match=message):
        check_gradient(loss, grad, params)


def test_extra_entries_returned_by_grad_are_noted_and_ignored():
    r = check_gradient(lambda p: sq(p["a"]), lambda p: {"a": dsq(p["a"]), "c": 1.0},
                       {"a": np.ones(2)})
    assert r.ok and r.findings == []
    assert any("('c')" in n and "ignored" in n for n in r.notes)


@pytest.mark.parametrize("params", [3.0, np.array(3.0), [1.0, 2.0], (np.ones(2), 2.0),
                                    {"a": {"W": np.ones((2, 2))}, "b": np.array(0.5)}])
def test_scalars_lists_and_nested_structures_check_clean(params):
    from gradwise._tree import tree_map

    def loss(p):
        from gradwise._tree import flatten
        return sum(float(np.sum(np.asarray(x) ** 3)) for x in flatten(p)[0])

    r = check_gradient(loss, lambda p: tree_map(lambda x: 3 * np.asarray(x) ** 2, p), params)
    assert r.ok and r.findings == [], r


def test_an_integer_parameter_is_reported_and_checked_with_real_perturbations():
    # truncated perturbations would make every finite difference 0 or wrong by O(1)
    r = check_gradient(lambda w: float(np.sum(w ** 3)), lambda w: 3 * w ** 2, np.array([1, 2, 3]))
    assert [f.code for f in r.findings] == ["input.integer_dtype"]
    np.testing.assert_allclose(r.numeric, [3.0, 12.0, 27.0], rtol=1e-9)


def test_user_arrays_are_not_mutated_by_functions_that_write_into_their_arguments():
    p = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    before = {k: v.copy() for k, v in p.items()}

    def loss(q):
        v = sq(q["W"]) + sq(q["b"])
        q["W"] += 1
        return v

    def grad(q):
        g = {"W": 2 * q["W"], "b": 2 * q["b"]}
        q["W"][:] = 7
        return g

    assert check_gradient(loss, grad, p).ok
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_parameter_scales_far_from_one_check_clean_and_find_a_factor_two(scale):
    w = scale * np.array([1.0, -3.0])
    assert check_gradient(sq, dsq, w).ok
    r = check_gradient(sq, lambda w: 4 * w, w)
    assert r.findings[0].code == "gradient.scale"
    assert r.findings[0].evidence["factor"] == pytest.approx(2.0, rel=1e-6)


def test_check_backward_rejects_a_nonfinite_input_gradient_as_a_finding():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    r = check_backward(lambda x, p: x @ p["W"],
                       lambda u, x, p: {"W": x.T @ u, "x": u @ p["W"].T * np.array([1.0, np.inf])},
                       np.ones((3, 2)), {"W": W})
    assert [(f.code, f.location) for f in r.findings] == [("numeric.nonfinite", "x")]


# ----------------------------------------------------------------------------- check_step

RNG = np.random.default_rng(0)
XS = RNG.standard_normal((6, 2))
YS = XS @ np.array([1.0, -2.0]) + 0.5


def lsq_loss(p, X, y):
    return 0.5 * float(np.mean((X @ p["w"] + p["b"] - y) ** 2))


def lsq_grad(p, X, y):
    e = X @ p["w"] + p["b"] - y
    return {"w": X.T @ e / len(y), "b": np.mean(e)}


def gd_step(p, X, y):
    g = lsq_grad(p, X, y)
    return {k: p[k] - 0.1 * g[k] for k in p}


P0 = {"w": np.zeros(2), "b": np.array(0.0)}


def test_a_step_that_updates_in_place_and_returns_none_is_checked():
    def inplace(p, X, y):
        g = lsq_grad(p, X, y)
        for k in p:
            p[k] -= 0.1 * g[k]

    r = check_step(inplace, lsq_loss, P0, XS, YS, lr=0.1)
    assert r.ok and r.findings == [], r
    assert any("returned None" in n for n in r.notes)
    # one that forgets to update is frozen, not a crash
    r = check_step(lambda p, X, y: None, lsq_loss, P0, XS, YS, lr=0.1)
    assert [f.code for f in r.findings] == ["update.frozen", "update.frozen"]


def test_a_step_returning_another_structure_says_which_is_expected():
    with pytest.raises(ValueError, match=r"step returned a tuple of length 2, which has no entry "
                                         r"'w'.*\(a dict with keys \['w', 'b'\]\)"):
        check_step(lambda p, X, y: (p["w"], p["b"]), lsq_loss, P0, XS, YS, lr=0.1)


def test_numpy_scalar_lr_is_accepted_and_bad_lr_rejected():
    assert check_step(gd_step, lsq_loss, P0, XS, YS, lr=np.float32(0.1)).ok
    for bad in (0, -0.1, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match="lr must be a positive number or None"):
            check_step(gd_step, lsq_loss, P0, XS, YS, lr=bad)


def test_no_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="X and y have no rows"):
        check_step(gd_step, lsq_loss, P0, XS[:0], YS[:0], lr=0.1)


def test_a_step_at_the_optimum_is_not_reported_frozen():
    A = np.column_stack([XS, np.ones(len(XS))])
    sol = np.linalg.lstsq(A, YS, rcond=None)[0]
    r = check_step(gd_step, lsq_loss, {"w": sol[:2], "b": np.array(sol[2])}, XS, YS, lr=0.1)
    assert r.ok and r.findings == [], r
    assert any("stationary point" in n for n in r.notes)


def test_a_random_step_is_named_as_random_not_as_momentum():
    rng = np.random.default_rng(1)

    def shuffled(p, X, y):  # per-sample SGD over a random order
        for i in rng.permutation(len(y)):
            e = X[i] @ p["w"] + p["b"] - y[i]
            p = {"w": p["w"] - 0.1 * e * X[i], "b": p["b"] - 0.1 * e}
        return p

    r = check_step(shuffled, lsq_loss, P0, XS, YS, lr=0.1)
    assert r.notes and "random" in r.notes[0] and "momentum" not in " ".join(r.notes[1:])
    assert not any(st["geometric"] for st in r.stateful.values())


def test_momentum_is_still_recognised_with_three_calls():
    state = {}

    def momentum(p, X, y):
        g = lsq_grad(p, X, y)
        for k in p:
            state[k] = 0.9 * state.get(k, 0.0) + g[k]
        return {k: p[k] - 0.1 * state[k] for k in p}

    r = check_step(momentum, lsq_loss, P0, XS, YS, lr=0.1)
    assert r.ok, r
    assert r.stateful["w"]["carried_fraction"] == pytest.approx(0.9)
    assert r.stateful["w"]["geometric"]
    assert r.n_step_calls == 3


def test_check_step_never_mutates_the_callers_arrays():
    X, y = XS.copy(), YS.copy()
    p = {k: np.array(v, copy=True) for k, v in P0.items()}

    def vandal(p, X, y):
        new = gd_step(p, X, y)
        X *= 2
        y[:] = 0
        p["w"][:] = 99
        return new

    check_step(vandal, lsq_loss, p, X, y, lr=0.1)
    np.testing.assert_array_equal(X, XS)
    np.testing.assert_array_equal(y, YS)
    np.testing.assert_array_equal(p["w"], P0["w"])


# ----------------------------------------------------------------------------- check_file

GOOD = """
import numpy as np
params = np.array([1.0, 2.0])
def loss(p): return float(np.sum(p ** 2))
def grad(p): return 2 * p
"""


def _file(tmp_path, text, name="user_file.py"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_check_file_sys_exit_inside_the_loss_is_a_usage_error_with_the_users_line(tmp_path):
    from gradwise.diagnostics.checkfile import CheckFileError, run_check_file

    src = GOOD.replace("def loss(p): return float(np.sum(p ** 2))",
                       "import sys\ndef loss(p): sys.exit(0)")
    with pytest.raises(CheckFileError, match=r"raised SystemExit during the check") as e:
        run_check_file(_file(tmp_path, src))
    assert "sys.exit(0)" in str(e.value) and "gradwise/" not in str(e.value)


def test_check_file_input_at_import_fails_at_once_naming_main_guard(tmp_path, monkeypatch):
    import io

    from gradwise.diagnostics.checkfile import CheckFileError, run_check_file

    monkeypatch.setattr("sys.stdin", io.StringIO("5\n"))  # even with input available
    with pytest.raises(CheckFileError, match=r"input\('n\? '\) called.*__name__ == "):
        run_check_file(_file(tmp_path, "n = input('n? ')\n" + GOOD))
    import builtins
    assert builtins.input.__module__ == "builtins"  # restored


def test_check_file_captures_what_the_file_prints(tmp_path, capsys):
    from gradwise.diagnostics.checkfile import run_check_file

    src = "for i in range(500):\n    print('epoch', i)\n" + GOOD.replace(
        "def grad(p): return 2 * p", "def grad(p):\n    print('grad!')\n    return 2 * p")
    r = run_check_file(_file(tmp_path, src))
    assert r.ok
    assert capsys.readouterr().out == ""
    assert r.notes == ["your file printed 501 line(s) while being checked (not shown)"]
    assert "note: your file printed 501 line(s)" in str(r)


@pytest.mark.parametrize(
    "src, message",
    [
        (GOOD.replace("def grad(p): return 2 * p", "grad = 'abc'"),
         r"`grad` is str 'abc', not a function; define `def grad\(params\)"),
        (GOOD.replace("def loss(p): return float(np.sum(p ** 2))", "loss = 3"),
         r"`loss` is int 3, not a function"),
        (GOOD + "lr = 'fast'\n", r"lr = 'fast'; it must be a positive number"),
        (GOOD + "lr = -0.1\n", r"lr = -0.1; it must be a positive number"),
    ],
)
def test_check_file_names_of_the_wrong_type(tmp_path, src, message):
    from gradwise.diagnostics.checkfile import CheckFileError, run_check_file

    with pytest.raises(CheckFileError, match=message):
        run_check_file(_file(tmp_path, src))


def test_check_file_on_a_directory_says_so(tmp_path):
    from gradwise.diagnostics.checkfile import CheckFileError, run_check_file

    with pytest.raises(CheckFileError, match="is a directory; give a .py file"):
        run_check_file(tmp_path)


def test_check_file_plt_show_does_not_block(tmp_path):
    from gradwise.diagnostics.checkfile import run_check_file

    src = "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()\n" + GOOD
    assert run_check_file(_file(tmp_path, src)).ok


def test_check_file_with_an_in_place_step_returning_none(tmp_path):
    from gradwise.diagnostics.checkfile import run_check_file

    src = """
import numpy as np
X = np.arange(10.0).reshape(5, 2); y = X @ np.array([1.0, 2.0])
params = np.zeros(2)
lr = 0.01
def loss(p, X, y): return 0.5 * float(np.mean((X @ p - y) ** 2))
def step(p, X, y): p -= lr * X.T @ (X @ p - y) / len(y)
"""
    r = run_check_file(_file(tmp_path, src))
    assert r.ok and r.findings == [], r


# ----------------------------------------------------------------------------- check_backward

XB = np.random.default_rng(0).standard_normal((4, 3))
PB = {"W": np.random.default_rng(1).standard_normal((3, 2)), "b": np.zeros(2)}


def lin_forward(x, p):
    return x @ p["W"] + p["b"]


def lin_backward(u, x, p):
    return {"W": x.T @ u, "b": u.sum(0), "x": u @ p["W"].T}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"x": XB * np.nan}, ValueError, "x contains NaN or inf"),
        ({"forward": lambda x, p: None}, ValueError, "forward returned None"),
        ({"upstream": np.ones(3)}, ValueError,
         r"upstream has shape \(3,\) but forward's output has shape \(4, 2\)"),
        ({"backward": lambda u, x, p: {**lin_backward(u, x, p), "b": None}}, ValueError,
         "backward returned None for 'b'"),
        ({"backward": lambda u, x, p: (x.T @ u, u.sum(0))}, ValueError,
         "backward must return a dict"),
    ],
)
def test_check_backward_bad_input_is_one_clear_error(kwargs, error, message):
    args = {"forward": lin_forward, "backward": lin_backward, "x": XB, "params": PB, **kwargs}
    with pytest.raises(error, match=message):
        check_backward(**args)


def test_check_backward_notes_unknown_keys_and_checks_the_rest():
    r = check_backward(lin_forward, lambda u, x, p: {**lin_backward(u, x, p), "dW": 1.0}, XB, PB)
    assert r.ok and r.findings == []
    assert r.notes == ["backward returned keys ['dW'] that are neither parameter names "
                       "(['W', 'b']) nor 'x'; ignored"]


def test_a_loss_computing_in_float32_is_clean_and_still_finds_a_factor():
    # float32 parameters: the loss casts and computes in float32 although it is given float64
    # copies; float64-sized steps made its rounding look like kinks (gradient.kink info)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 20)).astype(np.float32)
    y = rng.standard_normal(50).astype(np.float32)

    def loss(w):
        return float(np.mean((X @ w.astype(np.float32) - y) ** 2))

    def grad(w):
        return 2 * X.T @ (X @ w.astype(np.float32) - y) / 50

    w = rng.standard_normal(20).astype(np.float32)
    r = check_gradient(loss, grad, w)
    assert r.ok and r.findings == [], r
    r = check_gradient(loss, lambda w: 0.5 * grad(w), w)
    assert r.codes() == ["gradient.scale"]
    assert r.findings[0].evidence["factor"] == pytest.approx(0.5, rel=1e-4)


def test_a_float32_step_is_judged_at_float32_rounding():
    # the update of a float32 step is known to ~1e-7·|θ|/|Δ| only: a correct full-batch
    # float32 step was update.mismatch (residual 2e-4 > rtol 1e-4) with an untraceable loss
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal(8).astype(np.float32)
    w = rng.standard_normal(3).astype(np.float32)

    def loss(w, X, y):
        return float(np.mean((X @ w.astype(np.float32) - y) ** 2))

    def step(w, X, y):
        w = w.astype(np.float32)
        return w - np.float32(0.1) * 2 * X.T @ (X @ w - y) / len(y)

    def sgd_skip_last(w, X, y):
        w = w.astype(np.float32)
        for i in range(len(y) - 1):
            w = w - np.float32(0.1) * 2 * X[i] * (X[i] @ w - y[i])
        return w

    r = check_step(step, loss, w, X, y, lr=0.1)
    assert r.ok and r.findings == [], r
    r = check_step(sgd_skip_last, loss, w, X, y, lr=0.1)
    assert [(f.code, f.evidence["samples"]) for f in r.findings] == [("update.skipped_samples", [7])]


def test_tensors_that_require_grad_are_accepted_as_params_and_gradients():
    import gradwise as gw

    torch = pytest.importorskip("torch")
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    r = check_gradient(lambda w: (w * w).sum(), lambda w: 2 * gw.tensor(w, requires_grad=True), w)
    assert r.ok and r.findings == []
    r = check_gradient(lambda w: float((w ** 2).sum()), lambda w: 2 * w,
                       torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True))
    assert r.ok and r.findings == []


def test_numpy_integers_and_floats_are_valid_options():
    r = check_gradient(sq, dsq, np.ones(30), max_entries=np.int64(5), directions=np.int64(2),
                       rtol=np.float64(1e-5))
    assert r.ok and r.method.startswith("random directions")
    with pytest.raises(ValueError, match="max_sequential must be a non-negative int"):
        check_step(gd_step, lsq_loss, P0, XS, YS, max_sequential=-1)


def test_check_step_gives_pandas_data_to_code_written_for_pandas():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(XS, columns=["a", "b"])
    y = pd.Series(YS, name="t")

    def loss(w, X, y):
        return float(np.mean((X.values @ w - y.values) ** 2))

    def sgd(w, X, y):  # per-sample loop written with .iloc
        for i in range(len(y)):
            xi = X.iloc[i].values
            w = w - 0.1 * 2 * xi * (xi @ w - y.iloc[i])
        return w

    r = check_step(sgd, loss, np.zeros(2), X, y, lr=0.1)
    assert r.ok and r.findings == [] and r.loss_reduction == "mean", r
    pd.testing.assert_frame_equal(X, pd.DataFrame(XS, columns=["a", "b"]))


def test_a_per_sample_sgd_epoch_over_more_than_64_rows_is_replayed_not_a_mismatch():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + 0.1 * rng.standard_normal(100)

    def loss(w, X, y):
        return 0.5 * np.mean((X @ w - y) ** 2)

    def sgd(w, X, y):
        for i in range(len(y)):
            w = w - 0.01 * X[i] * (X[i] @ w - y[i])
        return w

    r = check_step(sgd, loss, np.zeros(3), X, y)
    assert r.ok and r.findings == [], r
    assert r.lr == pytest.approx(0.01, rel=1e-6)
    assert r.blocks[0]["explained_by"] == "sequential per-sample SGD in sample order"


def _minibatch_epoch(size, stop=0, divide=True):
    def step(w, X, y):
        for s in range(0, len(y) - stop, size):
            Xb, yb = X[s:s + size], y[s:s + size]
            w = w - 0.1 * Xb.T @ (Xb @ w - yb) / (len(yb) if divide else 1)
        return w
    return step


MB_RNG = np.random.default_rng(0)
XM = MB_RNG.standard_normal((20, 3))
YM = XM @ np.array([1.0, 2.0, 3.0]) + 0.1 * MB_RNG.standard_normal(20)


def mean_sq(w, X, y):
    return 0.5 * np.mean((X @ w - y) ** 2)


@pytest.mark.parametrize("size", [5, 7])
def test_a_correct_mini_batch_sgd_epoch_is_clean(size):
    # was update.mismatch: only per-sample SGD and full-batch steps were replayed
    r = check_step(_minibatch_epoch(size), mean_sq, np.zeros(3), XM, YM, lr=0.1)
    assert r.ok and r.findings == [], r
    assert r.blocks[0]["explained_by"] == f"mini-batch SGD epoch in row order (batch size {size})"


def test_mini_batch_epoch_faults_are_named():
    r = check_step(_minibatch_epoch(5, stop=5), mean_sq, np.zeros(3), XM, YM, lr=0.1)
    assert [(f.code, f.evidence["samples"]) for f in r.findings] == [
        ("update.skipped_samples", [15, 16, 17, 18, 19])]
    r = check_step(_minibatch_epoch(5, divide=False), mean_sq, np.zeros(3), XM, YM, lr=0.1)
    assert r.codes() == ["update.scale"]
    assert r.findings[0].evidence["factor"] == pytest.approx(5.0)
    assert "5 (batch size) times" in r.findings[0].message


def _momentum_epoch(lr, beta=0.9):
    def step(w, X, y):
        v = np.zeros_like(w)
        for i in range(len(y)):
            v = beta * v + X[i] * (X[i] @ w - y[i])
            w = w - lr * v
        return w
    return step


def test_per_sample_sgd_with_momentum_within_the_epoch_is_clean():
    # velocity starting at 0 inside the epoch (also the first call of a stateful step):
    # was update.mismatch
    X, y = XM[:10, :], YM[:10]
    A = np.column_stack([X, X[:, :1] ** 2])
    r = check_step(_momentum_epoch(0.01), mean_sq, np.zeros(4), A, y, lr=0.01)
    assert r.ok and r.findings == [], r
    assert "momentum β = 0.9 " in r.blocks[0]["explained_by"]
    r = check_step(_momentum_epoch(0.02), mean_sq, np.zeros(4), A, y, lr=0.01)
    assert r.codes() == ["update.scale"]
    assert r.findings[0].evidence["factor"] == pytest.approx(2.0, rel=1e-5)


def test_weight_decay_missing_from_the_loss_is_a_mismatch_with_the_decay_named():
    def step(w, X, y):
        return w - 0.1 * (X.T @ (X @ w - y) / len(y) + 0.01 * w)

    r = check_step(step, mean_sq, np.ones(3), XM, YM, lr=0.1)
    (f,) = r.findings
    assert f.code == "update.mismatch"
    assert f.evidence["weight_decay_hint"]["weight_decay"] == pytest.approx(0.01, rel=1e-6)
    assert "λ = 0.01" in f.message


def test_a_random_loss_is_an_error_not_a_pass():
    # its finite differences are noise with huge error estimates: the check passed any
    # gradient (max abs error 1e4, "ok")
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    rng = np.random.default_rng(1)

    def loss(w):
        idx = rng.choice(20, 10)
        return float(np.mean((X[idx] @ w - y[idx]) ** 2))

    with pytest.raises(ValueError, match=r"loss returned .* and then .* at the same point: it is "
                                         r"random"):
        check_gradient(loss, lambda w: 2 * X.T @ (X @ w - y) / 20, np.zeros(3))
    with pytest.raises(ValueError, match=r"forward returned .* it is random"):
        check_backward(lambda x, p: (x @ p["W"]) * (rng.random((4, 2)) > 0.5),
                       lambda u, x, p: {"W": x.T @ u}, np.ones((4, 3)), {"W": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"loss returned .* it is random"):
        check_step(lambda w, X, y: w, lambda w, X, y: float(rng.random()), np.zeros(3), X, y)


W3 = np.array([0.3, -0.7, 1.1])


def quantised(w):
    return float(np.sum(np.round(w * 1000) / 1000) ** 2)


@pytest.mark.parametrize("factor", [2.0, 5.0])  # 2 is right, 5 is wrong: neither can be judged
def test_a_quantised_loss_is_unverified_not_ok(factor):
    r = check_gradient(quantised, lambda w: factor * np.sum(w) * np.ones(3), W3)
    assert r.codes() == ["gradient.unverified"]
    assert r.findings[0].severity == "warning"
    assert r.blocks[0]["verdict"] == "gradient.unverified"


def test_a_jump_within_the_step_is_unverified_and_a_smooth_float32_loss_is_clean():
    r = check_gradient(lambda w: float(np.sum(w ** 2) + (w[0] > 0.3002)), lambda w: 2 * w, W3)
    assert r.codes() == ["gradient.unverified"] and r.findings[0].location == "params[0]"
    r = check_gradient(lambda w: np.float32(np.sum(w ** 4)), lambda w: 4 * w ** 3, W3)
    assert r.ok and r.findings == []


def test_a_quantised_loss_is_unverified_in_the_large_model_method():
    w = np.random.default_rng(0).standard_normal(50)

    def q(w):
        return float(np.sum(np.round(w * 100) / 100) ** 2)

    r = check_gradient(q, lambda w: 5 * np.sum(w) * np.ones(50), w, max_entries=5)
    assert r.codes() == ["gradient.unverified"]


def test_gradients_from_update_accepts_an_in_place_update_and_names_a_bad_return():
    from gradwise.diagnostics.check import gradients_from_update

    def update(u, x, p):
        dx = u @ p["W"].T
        p["W"] -= 0.5 * x.T @ u
        p["b"] -= 0.5 * u.sum(0)
        return None, dx

    r = check_backward(lin_forward, gradients_from_update(update, 0.5), XB, PB)
    assert r.ok and r.findings == [], r
    with pytest.raises(ValueError, match=r"update must return \(new_params, dx\), got a dict"):
        check_backward(lin_forward, gradients_from_update(lambda u, x, p: dict(p), 0.5), XB, PB)


def test_a_learning_rate_schedule_inside_the_step_is_named_not_called_random():
    calls = {"k": 0}

    def decaying(p, X, y):
        lr = 0.1 * 0.9 ** calls["k"]
        calls["k"] += 1
        g = lsq_grad(p, X, y)
        return {k: p[k] - lr * g[k] for k in p}

    r = check_step(decaying, lsq_loss, P0, XS, YS, lr=0.1)
    assert r.ok and r.findings == [], r
    assert r.stateful["w"]["schedule_factor"] == pytest.approx(0.9)
    assert any("scale the update of w by 0.9" in n for n in r.notes)
    assert not any("random" in n for n in r.notes)


def test_check_step_names_the_entry_where_the_loss_is_undefined_a_step_away():
    X = np.abs(XS[:4])
    y = np.ones(4)

    def loss(p, X, y):  # float(): untraceable, so finite differences
        return float(np.sum(np.sqrt(p["a"])) + np.mean((X @ p["a"] - y) ** 2))

    with np.errstate(invalid="ignore"), pytest.raises(NonFiniteLoss,
                                                      match=r"loss returned nan at a\[0\] = 0"):
        check_step(lambda p, X, y: p, loss, {"a": np.array([0.0, 1.0])}, X, y, lr=0.1)
