"""The one finite-difference implementation (Richardson-extrapolated central differences)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.diagnostics.finite_diff import (
    CountedFunction,
    directional_derivative,
    gradient_jvp,
    numeric_gradient,
)


def f_smooth(leaves):
    x, M = leaves
    return float(np.sum(np.exp(0.3 * x)) + np.sum(np.sin(M) * M[::-1]) + x @ M.sum(axis=1))


def grad_smooth(x, M):
    gM = np.cos(M) * M[::-1] + np.sin(M[::-1]) + x[:, None]
    return 0.3 * np.exp(0.3 * x) + M.sum(axis=1), gM


def test_matches_closed_form_and_error_estimate_bounds_the_error():
    r = np.random.default_rng(0)
    x, M = r.standard_normal(3), 3 * r.standard_normal((3, 2))
    fc = CountedFunction(f_smooth)
    ng = numeric_gradient(fc, [x, M])
    for num, exact, err in zip(ng.value, grad_smooth(x, M), ng.error):
        np.testing.assert_allclose(num, exact, rtol=1e-9, atol=1e-11)
        assert np.all(np.abs(num - exact) <= err + 1e-15)
    assert fc.calls == 4 * 9 + 1
    assert not any(k.any() for k in ng.kink)


def test_kink_at_abs_zero_gives_one_sided_bounds():
    ng = numeric_gradient(lambda lv: float(np.abs(lv[0]).sum()), [np.array([0.0, 0.5])])
    assert ng.kink[0].tolist() == [True, False]
    assert ng.lower[0][0] == pytest.approx(-1) and ng.upper[0][0] == pytest.approx(1)
    assert ng.value[0][0] == pytest.approx(0, abs=1e-12)
    assert ng.value[0][1] == pytest.approx(1, rel=1e-12)


def test_selected_entries_only_and_input_untouched():
    x = np.array([1.0, 2.0, 3.0])
    keep = x.copy()
    fc = CountedFunction(lambda lv: float(np.sum(lv[0] ** 3)))
    ng = numeric_gradient(fc, [x], entries=[(0, (1,))])
    assert np.isnan(ng.value[0][0]) and ng.value[0][1] == pytest.approx(12, rel=1e-10)
    assert fc.calls == 5
    np.testing.assert_array_equal(x, keep)


def test_directional_derivative():
    r = np.random.default_rng(1)
    x, M = r.standard_normal(3), r.standard_normal((3, 2))
    v = [r.standard_normal(3), r.standard_normal((3, 2))]
    d = directional_derivative(CountedFunction(f_smooth), [x, M], v)
    gx, gM = grad_smooth(x, M)
    assert d.value == pytest.approx(gx @ v[0] + np.sum(gM * v[1]), rel=1e-9)
    assert directional_derivative(f_smooth, [x, M], [0 * v[0], 0 * v[1]]).value == 0.0


def test_counted_function_checks_its_output():
    with pytest.raises(ValueError, match="scalar"):
        CountedFunction(lambda lv: lv[0])([np.ones(2)])
    with pytest.raises(FloatingPointError, match="nan"):
        CountedFunction(lambda lv: float("nan"))([np.ones(2)])
    fc = CountedFunction(lambda lv: np.float32(lv[0].sum()))
    fc([np.ones(2)])
    assert fc.eps == np.finfo(np.float32).eps


@settings(deadline=None, derandomize=True, max_examples=40)
@given(coef=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
       x0=st.floats(-20, 20))
def test_cubic_polynomials_exact_up_to_rounding(coef, x0):
    a, b, c, d = coef
    f = lambda lv: float(a * lv[0][0] ** 3 + b * lv[0][0] ** 2 + c * lv[0][0] + d)
    ng = numeric_gradient(f, [np.array([x0])])
    exact = 3 * a * x0**2 + 2 * b * x0 + c
    assert abs(ng.value[0][0] - exact) <= ng.error[0][0] + 1e-12 * (1 + abs(exact))


def test_gradient_jvp_is_the_hessian_vector_product_of_a_numeric_gradient():
    # f(x) = sum(exp(x)) + x0^2 x1: H v in closed form, gradient by Richardson differences
    def f(leaves):
        x = leaves[0]
        return float(np.sum(np.exp(x)) + x[0] ** 2 * x[1])

    calls = []

    def grad(x):
        calls.append(x.copy())
        return numeric_gradient(f, [x]).value[0]

    x, v = np.array([0.3, -0.7, 1.1]), np.array([1.0, 2.0, -0.5])
    H = np.diag(np.exp(x))
    H[0, 0] += 2 * x[1]
    H[0, 1] = H[1, 0] = 2 * x[0]
    np.testing.assert_allclose(gradient_jvp(grad, x, v), H @ v, rtol=1e-6)
    assert len(calls) == 2  # one central difference: two gradients
    np.testing.assert_array_equal(gradient_jvp(grad, x, np.zeros(3)), np.zeros(3))
    assert len(calls) == 2
