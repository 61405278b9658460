"""Spec-driven gradient tests (see specs.py): every primitive of the rule table,
against central finite differences (float64), PyTorch (float64 and float32) and,
for second order, finite differences of gradients (``gradwise.hvp`` and
``backward(create_graph=True)``)."""

from __future__ import annotations

import numpy as np
import pytest
from specs import F32, F64, SPECS, cotangent, numeric_vjp, rel_err

import gradwise as gw
from gradwise.autodiff.engine import toposort
from gradwise.autodiff.rules import NONDIFF, PRIMITIVES

#: internal primitives, reached only through another public operation
INTERNAL = {
    "scatter_add": "getitem_",  # the VJP of getitem; differentiated by second-order getitem specs
    "setitem": "setitem_",  # t[idx] = v on a tensor in the graph
    "cast": "astype",  # Tensor.astype
}

CASES = [pytest.param(s, shapes, id=f"{s.name}-{'x'.join(map(str, shapes))}")
         for s in SPECS for shapes in s.shapes]
TORCH_CASES = [pytest.param(s, shapes, dt, id=f"{s.name}-{'x'.join(map(str, shapes))}-"
                            f"{np.dtype(dt).name}")
               for s in SPECS if s.torch is not None for shapes in s.shapes for dt in s.dtypes]
TWICE_CASES = [c for c in CASES if c.values[0].twice]


# ---------------------------------------------------------------- completeness
def test_every_primitive_in_the_rule_table_has_a_spec():
    covered = {p for s in SPECS for p in s.prims}
    missing = sorted(set(PRIMITIVES) - covered - NONDIFF)
    assert not missing, f"primitives without a gradient spec in tests/autodiff/specs.py: {missing}"
    unknown = sorted(covered - set(PRIMITIVES))
    assert not unknown, f"specs name primitives that are not in the rule table: {unknown}"


def test_internal_primitives_are_covered_by_the_public_operations_that_use_them():
    for prim, prefix in INTERNAL.items():
        assert prim in PRIMITIVES
        assert any(prim in s.prims and s.name.startswith(prefix) for s in SPECS), prim


def test_spec_names_are_unique_and_arity_matches_shapes():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    for s in SPECS:
        assert all(len(case) == s.arity for case in s.shapes), s.name
        assert s.arity >= 1 and len(s.shapes) >= 1


def _recorded(out):
    return {t._ctx[0].name for t in toposort([out]) if t._ctx is not None}


@pytest.mark.parametrize("s", SPECS, ids=lambda s: s.name)
def test_spec_really_exercises_its_primitives(s):
    """A spec must put the primitives it claims into the graph (scatter_add: into the
    graph of the gradient, built with create_graph=True)."""
    seen = set()
    for shapes in s.shapes:
        ts = [gw.tensor(x, requires_grad=True) for x in s.inputs(shapes)]
        out = s.gw(*ts)
        seen |= _recorded(out)
        if "scatter_add" in s.prims:
            (out * out).sum().backward(create_graph=True)
            for t in ts:
                seen |= _recorded(t.grad)
    assert set(s.prims) <= seen, f"{s.name} claims {sorted(set(s.prims) - seen)}, not recorded"


# ------------------------------------------------------------ first order: FD
def _plain(s):
    return lambda *xs: s.gw(*[gw.tensor(x) for x in xs]).data


@pytest.mark.parametrize("s,shapes", CASES)
def test_gradient_matches_central_finite_differences(s, shapes):
    xs = s.inputs(shapes)
    ts = [gw.tensor(x, requires_grad=True) for x in xs]
    out = s.gw(*ts)
    assert out.requires_grad and out.dtype == F64
    w = cotangent(out.shape)
    out.backward(w)
    fd = numeric_vjp(_plain(s), xs, w)
    for k, (t, g) in enumerate(zip(ts, fd)):
        assert t.grad is not None, f"argument {k} got no gradient"
        assert t.grad.shape == t.shape and t.grad.dtype == F64
        assert not t.grad.requires_grad
        err = rel_err(t.grad.data, g)
        assert err <= s.tol, f"argument {k}: relative error {err:.2e} > {s.tol:.0e}"


# --------------------------------------------------------- first order: torch
@pytest.mark.parametrize("s,shapes,dtype", TORCH_CASES)
def test_values_and_gradients_match_pytorch(s, shapes, dtype):
    torch = pytest.importorskip("torch")
    xs = [x.astype(dtype) for x in s.inputs(shapes)]
    ts = [gw.tensor(x, requires_grad=True) for x in xs]
    assert all(t.dtype == dtype for t in ts)
    tts = [torch.tensor(x, requires_grad=True) for x in xs]
    out, tout = s.gw(*ts), s.torch(torch, *tts)
    ref = tout.detach().numpy()
    assert out.shape == ref.shape
    assert out.dtype == ref.dtype, f"result dtype {out.dtype}, PyTorch {ref.dtype}"
    rtol = 1e-10 if dtype == F64 else s.tol32
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    np.testing.assert_allclose(out.data, ref, rtol=rtol, atol=rtol * 0.1 * scale)
    w = cotangent(out.shape, dtype=out.dtype)
    out.backward(w)
    tout.backward(torch.from_numpy(np.array(w)))
    for k, (t, tt) in enumerate(zip(ts, tts)):
        assert t.grad.dtype == dtype, f"argument {k}: gradient dtype {t.grad.dtype}"
        gref = tt.grad.numpy()
        gscale = max(1.0, float(np.max(np.abs(gref), initial=0.0)))
        np.testing.assert_allclose(t.grad.data, gref, rtol=rtol, atol=rtol * 0.1 * gscale,
                                   err_msg=f"argument {k}")


# ---------------------------------------------------------------- second order
def _scalarize(s, w):
    """A scalar whose Hessian involves the op's own second derivative and, through
    the square, its VJP under create_graph: sum(w * f(x)) + sum(u * f(x)**2) / 2."""
    u = cotangent(w.shape, salt="u")

    def f(args):
        out = s.gw(*args)
        return (w * out).sum() + (u * out * out).sum() * 0.5

    return f


def _second_order_setup(s, shapes):
    xs = s.inputs(shapes)
    vs = [np.random.default_rng(k).standard_normal(x.shape) for k, x in enumerate(xs)]
    w = cotangent(s.gw(*[gw.tensor(x) for x in xs]).shape)
    f = _scalarize(s, w)
    g = gw.grad(f)
    eps = 1e-5
    plus = g(tuple(x + eps * v for x, v in zip(xs, vs)))
    minus = g(tuple(x - eps * v for x, v in zip(xs, vs)))
    fd = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
    return xs, vs, f, fd


@pytest.mark.parametrize("s,shapes", TWICE_CASES)
def test_hvp_matches_finite_differences_of_gradients(s, shapes):
    xs, vs, f, fd = _second_order_setup(s, shapes)
    hv = gw.hvp(f, tuple(xs), tuple(vs))
    assert isinstance(hv, tuple) and len(hv) == len(xs)
    for k, (h, ref) in enumerate(zip(hv, fd)):
        assert h.shape == xs[k].shape
        err = rel_err(h, ref)
        assert err <= s.tol, f"argument {k}: relative error {err:.2e}"


@pytest.mark.parametrize("s,shapes", TWICE_CASES)
def test_double_backward_with_create_graph_matches_finite_differences(s, shapes):
    xs, vs, f, fd = _second_order_setup(s, shapes)
    ts = [gw.tensor(x, requires_grad=True) for x in xs]
    f(ts).backward(create_graph=True)
    grads = [t.grad for t in ts]
    gv = sum((g * v).sum() for g, v in zip(grads, vs) if g is not None)
    for t in ts:
        t.grad = None
    if gv.requires_grad:
        gv.backward()
    for k, (t, ref) in enumerate(zip(ts, fd)):
        h = np.zeros_like(xs[k]) if t.grad is None else t.grad.data
        err = rel_err(h, ref)
        assert err <= s.tol, f"argument {k}: relative error {err:.2e}"


@pytest.mark.parametrize("s,shapes", [c for c in TWICE_CASES if c.values[0].torch is not None])
def test_hvp_matches_pytorch_double_backward(s, shapes):
    torch = pytest.importorskip("torch")
    xs, vs, f, _ = _second_order_setup(s, shapes)
    hv = gw.hvp(f, tuple(xs), tuple(vs))
    tts = [torch.tensor(x, requires_grad=True) for x in xs]
    w = cotangent(s.gw(*[gw.tensor(x) for x in xs]).shape)
    out = s.torch(torch, *tts)
    u = cotangent(w.shape, salt="u")
    loss = (torch.from_numpy(np.array(w)) * out).sum() + (
        torch.from_numpy(np.array(u)) * out * out).sum() * 0.5
    grads = torch.autograd.grad(loss, tts, create_graph=True, allow_unused=True)
    gv = sum((g * torch.from_numpy(v)).sum() for g, v in zip(grads, vs) if g is not None)
    refs = torch.autograd.grad(gv, tts, allow_unused=True) if gv.requires_grad else [None] * len(tts)
    for k, (h, r) in enumerate(zip(hv, refs)):
        r = np.zeros_like(xs[k]) if r is None else r.numpy()
        np.testing.assert_allclose(h, r, rtol=1e-9, atol=1e-10, err_msg=f"argument {k}")


def test_float32_stays_float32_through_second_order():
    x = gw.tensor(np.array([0.3, -1.2, 2.0], dtype=F32), requires_grad=True)
    (gw.tanh(x) ** 3).sum().backward(create_graph=True)
    assert x.grad.dtype == F32 and x.grad.requires_grad
    hv = gw.hvp(lambda a: (gw.tanh(a) ** 3).sum(), np.array([0.3, -1.2, 2.0], dtype=F32),
                np.ones(3, dtype=F32))
    assert hv.dtype == F32


def test_value_only_primitives_have_no_vjp_and_are_not_recorded_eagerly():
    assert NONDIFF >= {"greater", "less", "equal", "logical_and", "isfinite", "floor"}
    x = gw.tensor([1.5, -2.0], requires_grad=True)
    for name in NONDIFF:
        prim = PRIMITIVES[name]
        assert all(v is None for v in prim.vjps), name
    m = x > 0
    assert not m.requires_grad and m._ctx is None and m.dtype == bool
    assert np.floor(x).data.tolist() == [1.0, -2.0] and not np.floor(x).requires_grad
