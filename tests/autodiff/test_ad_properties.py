"""Hypothesis property tests: broadcasting and indexing gradients on random shapes.

The oracles are independent of the engine: a broadcast operand's gradient is
computed by mapping every output position to the operand entry it read
(``np.bincount`` over broadcast index arrays); an indexing gradient by
``np.add.at`` (repeated indices accumulate).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise as gw

# op: (forward on Tensors, partial derivatives on broadcast arrays (xb, yb) -> (dx, dy))
BINARY = {
    "add": (lambda x, y: x + y, lambda a, b: (np.ones_like(a), np.ones_like(b))),
    "sub": (lambda x, y: x - y, lambda a, b: (np.ones_like(a), -np.ones_like(b))),
    "mul": (lambda x, y: x * y, lambda a, b: (b, a)),
    "div": (lambda x, y: x / y, lambda a, b: (1 / b, -a / b ** 2)),
    "pow": (lambda x, y: x ** y, lambda a, b: (b * a ** (b - 1), a ** b * np.log(a))),
    "maximum": (gw.maximum, lambda a, b: ((a > b) * 1.0, (b > a) * 1.0)),
    "minimum": (gw.minimum, lambda a, b: ((a < b) * 1.0, (b < a) * 1.0)),
    "where": (lambda x, y: gw.where(_pattern(x, y), x, y),
              lambda a, b: (_pattern(a, b) * 1.0, (~_pattern(a, b)) * 1.0)),
}


def _pattern(x, y):
    shape = np.broadcast_shapes(x.shape, y.shape)
    return np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape) % 2 == 0


def reduce_to(full, shape):
    """Sum ``full`` onto the operand of ``shape`` that was broadcast to ``full.shape``."""
    owner = np.broadcast_to(np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape),
                            full.shape)
    n = int(np.prod(shape, dtype=np.int64))
    return np.bincount(owner.ravel(), weights=full.ravel(), minlength=n).reshape(shape)


@given(op=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                max_side=4),
       seed=st.integers(0, 2 ** 32 - 1))
def test_broadcast_binary_gradient_is_summed_over_broadcast_axes(op, shapes, seed):
    (sx, sy), out_shape = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0.5, 2.0, sx)
    y0 = rng.uniform(0.5, 2.0, sy)
    if op in ("maximum", "minimum"):  # keep away from ties
        y0 = y0 + 0.05 * np.sign(rng.uniform(-1, 1, sy)) + 0.013
    x, y = gw.tensor(x0, requires_grad=True), gw.tensor(y0, requires_grad=True)
    fwd, partials = BINARY[op]
    out = fwd(x, y)
    assert out.shape == out_shape
    w = rng.normal(size=out_shape)
    out.backward(w)
    xb, yb = np.broadcast_to(x0, out_shape), np.broadcast_to(y0, out_shape)
    dx, dy = partials(xb, yb)
    assert x.grad.shape == sx and y.grad.shape == sy
    np.testing.assert_allclose(x.grad.data, reduce_to(w * dx, sx), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.grad.data, reduce_to(w * dy, sy), rtol=1e-12, atol=1e-12)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=1, min_dims=0, max_dims=3,
                                                max_side=3),
       extra=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
       seed=st.integers(0, 2 ** 32 - 1))
def test_broadcast_to_gradient_sums_back(shapes, extra, seed):
    (sx,) = shapes.input_shapes
    target = tuple(extra) + tuple(shapes.result_shape)
    rng = np.random.default_rng(seed)
    x = gw.tensor(rng.normal(size=sx), requires_grad=True)
    w = rng.normal(size=target)
    gw.broadcast_to(x, target).backward(w)
    np.testing.assert_allclose(x.grad.data, reduce_to(w, sx), rtol=1e-12, atol=1e-12)


@st.composite
def fancy_index(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    kind = draw(st.sampled_from(["int_array", "int_arrays", "bool_mask", "mixed"]))
    n = draw(st.integers(1, 8))
    if kind == "int_array":
        idx = np.array(draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=n,
                                     max_size=n)))
    elif kind == "int_arrays":
        idx = tuple(np.array(draw(st.lists(st.integers(0, s - 1), min_size=n, max_size=n)))
                    for s in shape)
    elif kind == "bool_mask":
        idx = draw(hnp.arrays(np.bool_, shape))
    else:  # an int array on the first axis, a slice on the second (if any)
        rows = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=n, max_size=n)))
        step = draw(st.sampled_from([1, -1, 2]))
        idx = (rows, slice(None, None, step)) if len(shape) > 1 else (rows,)
    return shape, idx


@given(case=fancy_index(), seed=st.integers(0, 2 ** 32 - 1))
def test_indexing_gradient_accumulates_repeated_indices(case, seed):
    shape, idx = case
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=shape)
    x = gw.tensor(x0, requires_grad=True)
    out = x[idx]
    np.testing.assert_array_equal(out.data, x0[idx])
    w = rng.normal(size=out.shape)
    out.backward(w)
    ref = np.zeros(shape)
    np.add.at(ref, idx, w)
    np.testing.assert_allclose(x.grad.data, ref, rtol=1e-12, atol=1e-12)


@given(case=fancy_index(), seed=st.integers(0, 2 ** 32 - 1))
def test_second_order_through_indexing_matches_the_closed_form(case, seed):
    """L = sum(w * x[idx]**2): H v = scatter-add(2 w v[idx]) at the indexed positions."""
    shape, idx = case
    rng = np.random.default_rng(seed)
    x0, v = rng.normal(size=shape), rng.normal(size=shape)
    w = rng.normal(size=x0[idx].shape)
    hv = gw.hvp(lambda x: (w * x[idx] * x[idx]).sum(), x0, v)
    ref = np.zeros(shape)
    np.add.at(ref, idx, 2 * w * v[idx])
    np.testing.assert_allclose(hv, ref, rtol=1e-12, atol=1e-12)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       data=st.data(), keepdims=st.booleans(), op=st.sampled_from(["sum", "mean"]))
def test_reduction_gradient_broadcasts_back(shape, data, keepdims, op):
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    axis = tuple(axes) if axes else None
    x0 = np.arange(np.prod(shape), dtype=float).reshape(shape)
    x = gw.tensor(x0, requires_grad=True)
    out = getattr(gw, op)(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, getattr(np, op)(x0, axis=axis, keepdims=keepdims))
    w = np.arange(1.0, out.size + 1).reshape(out.shape)
    out.backward(w)
    wk = w if keepdims else np.expand_dims(w, axis if axis is not None else tuple(range(len(shape))))
    count = x0.size / max(out.size, 1) if op == "mean" else 1.0
    np.testing.assert_allclose(x.grad.data, np.broadcast_to(wk / count, shape), rtol=1e-12)
