"""gradwise.grad / value_and_grad / hvp over arrays, tuples/lists and dicts."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

A = np.array([[3.0, 1.0], [1.0, 2.0]])


def quad(x):
    """0.5 x^T A x: gradient A x, Hessian A."""
    return 0.5 * (x @ (A @ x))


def test_grad_of_an_array_parameter_is_an_array():
    x = np.array([1.0, -2.0])
    g = gw.grad(quad)(x)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64
    np.testing.assert_allclose(g, A @ x)
    np.testing.assert_array_equal(x, [1.0, -2.0])  # input untouched


def test_value_and_grad_returns_the_value_as_float():
    x = np.array([1.0, -2.0])
    v, g = gw.value_and_grad(quad)(x)
    assert isinstance(v, float) and v == pytest.approx(0.5 * x @ A @ x)
    np.testing.assert_allclose(g, A @ x)


def _mlp_loss(params, X, y):
    W, b = params["W"], params["b"]
    return gw.mean((gw.tanh(X @ W + b) - y) ** 2)


def test_grad_over_dict_tuple_and_list_parameters_keeps_the_structure():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    params = {"W": rng.normal(size=(3, 2)), "b": np.zeros(2)}
    g = gw.grad(_mlp_loss)(params, X, y)
    assert set(g) == {"W", "b"} and g["W"].shape == (3, 2) and g["b"].shape == (2,)
    # closed form: dL/dZ = 2 (h - y) (1 - h^2) / n, dW = X^T dZ, db = sum dZ
    h = np.tanh(X @ params["W"] + params["b"])
    dz = 2 * (h - y) * (1 - h ** 2) / h.size
    np.testing.assert_allclose(g["W"], X.T @ dz, rtol=1e-12)
    np.testing.assert_allclose(g["b"], dz.sum(0), rtol=1e-12)
    gt = gw.grad(lambda p, X, y: _mlp_loss({"W": p[0], "b": p[1]}, X, y))(
        (params["W"], params["b"]), X, y)
    assert isinstance(gt, tuple)
    np.testing.assert_allclose(gt[0], g["W"])
    gl = gw.grad(lambda p, X, y: _mlp_loss({"W": p[0], "b": p[1]}, X, y))(
        [params["W"], params["b"]], X, y)
    assert isinstance(gl, list)
    np.testing.assert_allclose(gl[1], g["b"])
    nested = gw.grad(lambda p: p["layer"][0].sum() * p["layer"][1].sum() + p["s"] ** 2)(
        {"layer": (np.ones(2), np.full(3, 2.0)), "s": np.array(1.5)})
    np.testing.assert_allclose(nested["layer"][0], [6.0, 6.0])
    np.testing.assert_allclose(nested["layer"][1], [2.0, 2.0, 2.0])
    assert nested["s"] == pytest.approx(3.0)


def test_argnums_tuple_gives_a_tuple_of_gradients():
    def f(a, b, c):
        return (a * b).sum() + (c ** 2).sum()

    a, b, c = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0])
    ga, gc = gw.grad(f, argnums=(0, 2))(a, b, c)
    np.testing.assert_array_equal(ga, b)
    np.testing.assert_array_equal(gc, 2 * c)
    gb = gw.grad(f, argnums=1)(a, b, c)
    np.testing.assert_array_equal(gb, a)
    v, (gb2,) = gw.value_and_grad(f, argnums=(1,))(a, b, c)
    assert v == 11.0 + 25.0
    np.testing.assert_array_equal(gb2, a)


def test_grad_keeps_float32_and_converts_ints():
    g32 = gw.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0], dtype=np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_array_equal(g32, [2.0, 4.0])
    gi = gw.grad(lambda x: (x * 0.5).sum())(np.array([1, 2]))
    assert gi.dtype == np.float64
    np.testing.assert_array_equal(gi, [0.5, 0.5])


def test_unused_parameter_gets_a_zero_gradient():
    g = gw.grad(lambda p: (p["a"] ** 2).sum())({"a": np.ones(2), "b": np.ones(3)})
    np.testing.assert_array_equal(g["b"], np.zeros(3))


def test_hvp_of_a_quadratic_is_the_matrix_times_v():
    v = np.array([0.5, -1.0])
    np.testing.assert_allclose(gw.hvp(quad, np.array([1.0, -2.0]), v), A @ v)


def test_hvp_rosenbrock_matches_the_analytic_hessian():
    def rosen(p):
        x, y = p[0], p[1]
        return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2

    x, y = 0.7, -0.4
    H = np.array([[2 - 400 * (y - x ** 2) + 800 * x ** 2, -400 * x], [-400 * x, 200.0]])
    for v in (np.array([1.0, 0.0]), np.array([0.3, -2.0])):
        np.testing.assert_allclose(gw.hvp(rosen, np.array([x, y]), v), H @ v, rtol=1e-12)


def test_hvp_over_a_dict_against_finite_differences_of_grad():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    p = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    v = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}

    def f(q):
        return _mlp_loss(q, X, y)

    hv = gw.hvp(f, p, v)
    assert set(hv) == {"W", "b"}
    eps = 1e-5
    gp = gw.grad(f)({k: p[k] + eps * v[k] for k in p})
    gm = gw.grad(f)({k: p[k] - eps * v[k] for k in p})
    for k in p:
        np.testing.assert_allclose(hv[k], (gp[k] - gm[k]) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_hvp_rejects_a_direction_of_another_structure_or_shape():
    with pytest.raises(ValueError, match="structure"):
        gw.hvp(lambda p: (p[0] * p[1]).sum(), (np.ones(2), np.ones(2)), (np.ones(2),))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        gw.hvp(quad, np.ones(2), np.ones(3))


def test_a_function_returning_a_python_float_gives_a_clear_type_error():
    with pytest.raises(TypeError, match=r"float\(\)"):
        gw.grad(lambda x: (x * x).sum().item())(np.ones(2))


def test_a_function_that_calls_float_gives_a_clear_type_error():
    with pytest.raises(TypeError, match=r"detach"):
        gw.grad(lambda x: gw.tensor(float((x * x).sum())))(np.ones(2))


def test_a_function_that_calls_float_fails_loudly_naming_detach():
    with pytest.raises((TypeError, RuntimeError), match=r"float\(\).*detach"):
        gw.grad(lambda x: gw.tensor(float((x * x).sum())))(np.ones(2))


def test_a_non_scalar_output_is_refused():
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        gw.grad(lambda x: x * 2)(np.ones(2))
