"""Gradient specs: one (or more) per primitive of ``gradwise.autodiff.rules.PRIMITIVES``,
plus the composite functions, in the style of JAX's ``tests/lax_autodiff_test.py``.

A :class:`Spec` names the gradwise callable, the PyTorch callable (the oracle;
it receives the ``torch`` module first, so this file does not import torch),
the argument shapes it is tested on, the input domain of every argument (kept
away from kinks and singularities so that central finite differences are
valid), the dtypes, the tolerances and whether second-order tests apply.
``test_ad_specs.py`` drives every spec through finite differences, PyTorch and
Hessian-vector products.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import gradwise as gw

F32, F64 = np.float32, np.float64


# --------------------------------------------------------------------- domains
# sample(rng, shape, argnum) -> float64 array
def real(rng, shape, i):
    """Anywhere in [-2, 2]."""
    return rng.uniform(-2.0, 2.0, shape)


def positive(rng, shape, i):
    """In [0.5, 2]: inside the domain of log, sqrt, x**y with real y, and away from 0."""
    return rng.uniform(0.5, 2.0, shape)


def away(*kinks, gap=0.2):
    """In [-2, 2] but at least ``gap`` from every kink (abs, relu, clip bounds, 1/x)."""

    def sample(rng, shape, i):
        x = rng.uniform(-2.0, 2.0, shape)
        for _ in range(1000):
            bad = np.zeros(np.shape(x), dtype=bool)
            for k in kinks:
                bad |= np.abs(x - k) < gap
            if not bad.any():
                return x
            x = np.where(bad, rng.uniform(-2.0, 2.0, shape), x)
        raise AssertionError("could not sample away from the kinks")

    sample.__name__ = f"away{kinks}"
    return sample


def distinct(rng, shape, i):
    """Entries >= 0.45 apart within an argument and >= 0.15 apart between arguments
    (no ties in max/min reductions, maximum/minimum, sorting-like ops)."""
    n = int(np.prod(shape, dtype=np.int64))
    k = rng.permutation(n) - n // 2
    return (k * 0.5 + 0.1 + 0.2 * i + rng.uniform(0.0, 0.05, n)).reshape(shape)


def nonzero(rng, shape, i):
    """Magnitudes in [0.5, 1.5] with random signs (prod without zeros)."""
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def with_zeros(rng, shape, i):
    """Like :func:`nonzero`, but about a third of the entries exactly 0 (prod is a
    polynomial: smooth there, yet x / prod-style formulas break)."""
    x = nonzero(rng, shape, i)
    return np.where(rng.uniform(size=shape) < 0.35, 0.0, x)


# ------------------------------------------------------------------------ spec
@dataclass(frozen=True)
class Spec:
    """One gradient test case family.

    Attributes
    ----------
    name : str
        Unique id.
    prims : tuple of str
        The primitives of the rule table this spec exercises.
    gw : callable
        ``gw(*tensors) -> Tensor``.
    torch : callable or None
        ``torch(torch_module, *tensors) -> torch.Tensor``; same mathematics.
    shapes : tuple of tuples of shapes
        One tuple of argument shapes per case; broadcasting pairs included
        where the op allows them.
    domain : callable or tuple of callables
        Sampler for all arguments, or one per argument.
    arity : int
        Number of differentiable arguments.
    dtypes : tuple of dtypes
        Dtypes compared against PyTorch (float32 is kept through forward and
        backward).
    tol : float
        Relative error (2-norm) allowed against central finite differences in
        float64; also for Hessian-vector products.
    tol32 : float
        rtol against PyTorch in float32 (float64 uses 1e-10).
    twice : bool
        Twice differentiable on its domain: second-order tests apply.
    """

    name: str
    prims: tuple
    gw: Callable
    torch: Callable | None
    shapes: tuple
    domain: Callable | tuple = real
    arity: int = 1
    dtypes: tuple = (F64, F32)
    tol: float = 1e-6
    tol32: float = 1e-4
    twice: bool = True

    def sampler(self, i):
        return self.domain[i] if isinstance(self.domain, tuple) else self.domain

    def inputs(self, shapes, salt=""):
        """Deterministic float64 inputs for one case (seeded by name and shapes)."""
        rng = np.random.default_rng(zlib.crc32(f"{self.name}{shapes}{salt}".encode()))
        return [np.asarray(self.sampler(i)(rng, s, i), dtype=F64) for i, s in enumerate(shapes)]


U = (((),), ((3,),), ((3, 4),))
B = (((), ()), ((3,), (3,)), ((3, 4), (3, 4)), ((3, 1), (1, 4)), ((4,), (3, 4)),
     ((3, 4), ()))
M34 = (((3, 4),),)

SPECS: list[Spec] = []


def spec(name, prims, gwf, tf, shapes, domain=real, **kw):
    arity = len(shapes[0])
    s = Spec(name, tuple(prims.split()), gwf, tf, shapes, domain, arity=arity, **kw)
    assert all(len(c) == arity for c in shapes), name
    SPECS.append(s)
    return s


# ----------------------------------------------------------------- elementwise
spec("exp", "exp", gw.exp, lambda T, x: T.exp(x), U)
spec("log", "log", gw.log, lambda T, x: T.log(x), U, positive)
spec("log1p", "log1p", gw.log1p, lambda T, x: T.log1p(x), U, positive)
spec("expm1", "expm1", gw.expm1, lambda T, x: T.expm1(x), U)
spec("sqrt", "sqrt", gw.sqrt, lambda T, x: T.sqrt(x), U, positive)
spec("square", "square", gw.square, lambda T, x: T.square(x), U)
spec("abs", "abs", gw.abs, lambda T, x: T.abs(x), U, away(0.0))
spec("abs_operator", "abs", lambda x: abs(x), lambda T, x: abs(x), U, away(0.0))
spec("sign", "sign", gw.sign, lambda T, x: T.sign(x), U, away(0.0))
spec("sin", "sin", gw.sin, lambda T, x: T.sin(x), U)
spec("cos", "cos", gw.cos, lambda T, x: T.cos(x), U)
spec("tanh", "tanh", gw.tanh, lambda T, x: T.tanh(x), U)
spec("sigmoid", "sigmoid", gw.sigmoid, lambda T, x: T.sigmoid(x), U)
spec("relu", "relu", gw.relu, lambda T, x: T.relu(x), U, away(0.0))
spec("leaky_relu", "leaky_relu", lambda x: gw.leaky_relu(x, 0.1),
     lambda T, x: T.nn.functional.leaky_relu(x, 0.1), U, away(0.0))
spec("leaky_relu_default", "leaky_relu", gw.leaky_relu,
     lambda T, x: T.nn.functional.leaky_relu(x), U, away(0.0))
spec("softplus", "softplus", gw.softplus, lambda T, x: T.nn.functional.softplus(x), U)
spec("neg", "neg", lambda x: -x, lambda T, x: -x, U)
spec("astype", "cast",
     lambda x: x.astype(F64) * x.astype(F64),
     lambda T, x: x.to(T.float64) * x.to(T.float64), U)

# --------------------------------------------------------------------- binary
spec("add", "add", lambda x, y: x + y, lambda T, x, y: x + y, B)
spec("sub", "sub", lambda x, y: x - y, lambda T, x, y: x - y, B)
spec("mul", "mul", lambda x, y: x * y, lambda T, x, y: x * y, B)
spec("div", "div", lambda x, y: x / y, lambda T, x, y: x / y, B, (real, away(0.0, gap=0.5)))
spec("pow", "pow", lambda x, y: x ** y, lambda T, x, y: x ** y, B, (positive, real))
spec("pow_const_exponent", "pow", lambda x: x ** 3, lambda T, x: x ** 3, U)
spec("pow_half", "pow", lambda x: x ** 0.5, lambda T, x: x ** 0.5, U, positive)
spec("rpow", "pow", lambda x: 2.0 ** x, lambda T, x: 2.0 ** x, U)
spec("radd_rsub_rmul_rdiv", "add sub mul div",
     lambda x: (1.5 + x) * (2.0 - x) * 3.0 / (x + 3.0),
     lambda T, x: (1.5 + x) * (2.0 - x) * 3.0 / (x + 3.0), U, (away(-3.0),))
spec("array_left_operands", "sub mul div add pow",
     lambda x: (np.full(x.shape, 2.0, x.dtype) - x) * np.full(x.shape, 3.0, x.dtype)
     / (np.full(x.shape, 4.0, x.dtype) + x ** 2),
     lambda T, x: (T.full(x.shape, 2.0, dtype=x.dtype) - x) * T.full(x.shape, 3.0, dtype=x.dtype)
     / (T.full(x.shape, 4.0, dtype=x.dtype) + x ** 2), U)
spec("rtruediv", "div", lambda x: 2.0 / x, lambda T, x: 2.0 / x, U, away(0.0, gap=0.5))
spec("maximum", "maximum", gw.maximum, lambda T, x, y: T.maximum(x, y), B, distinct)
spec("minimum", "minimum", gw.minimum, lambda T, x, y: T.minimum(x, y), B, distinct)


def _mask(x, y):
    shape = np.broadcast_shapes(tuple(x.shape), tuple(y.shape))
    return np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape) % 3 != 1


spec("where", "where", lambda x, y: gw.where(_mask(x, y), x, y),
     lambda T, x, y: T.where(T.as_tensor(_mask(x, y)), x, y), B)
_COND34 = np.arange(12).reshape(3, 4) % 5 < 2
spec("where_condition_broadcasts_both", "where", lambda x, y: gw.where(_COND34, x, y),
     lambda T, x, y: T.where(T.as_tensor(_COND34), x, y),
     (((), (4,)), ((3, 1), ()), ((1, 4), (3, 1))))
spec("clip", "clip", lambda x: gw.clip(x, -0.5, 0.5), lambda T, x: T.clamp(x, -0.5, 0.5), U,
     away(-0.5, 0.5))
spec("clip_lower_method", "clip", lambda x: x.clip(-0.5), lambda T, x: T.clamp(x, min=-0.5), U,
     away(-0.5))
spec("clip_upper", "clip", lambda x: gw.clip(x, None, 0.5), lambda T, x: T.clamp(x, max=0.5), U,
     away(0.5))

# ----------------------------------------------------------------- reductions
REDUCE_CASES = (  # (axis, keepdims, shapes)
    (None, False, U),
    (None, True, M34),
    (0, False, M34),
    (1, True, M34),
    (-1, False, M34),
    ((0, 1), False, M34),
    ((0, 2), True, (((2, 3, 4),),)),
)


def _dims(x, axis):
    if axis is None:
        return tuple(range(x.dim()))
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _t_prod(T, x, axis, keepdims):
    for d in sorted((d % max(x.dim(), 1) for d in _dims(x, axis)), reverse=True):
        x = T.prod(x, dim=d, keepdim=keepdims)
    return x


_TORCH_REDUCE = {
    "sum": lambda T, x, a, k: T.sum(x, dim=_dims(x, a), keepdim=k),
    "mean": lambda T, x, a, k: T.mean(x, dim=_dims(x, a), keepdim=k),
    "max": lambda T, x, a, k: T.amax(x, dim=_dims(x, a), keepdim=k),
    "min": lambda T, x, a, k: T.amin(x, dim=_dims(x, a), keepdim=k),
    "prod": _t_prod,
    "logsumexp": lambda T, x, a, k: T.logsumexp(x, dim=_dims(x, a), keepdim=k),
}
_REDUCE_DOMAIN = {"max": distinct, "min": distinct, "prod": nonzero}


def _reduce_specs():
    for op, tf in _TORCH_REDUCE.items():
        for axis, keepdims, shapes in REDUCE_CASES:
            spec(f"{op}[axis={axis},keepdims={keepdims}]", op,
                 lambda x, op=op, a=axis, k=keepdims: getattr(gw, op)(x, axis=a, keepdims=k),
                 lambda T, x, tf=tf, a=axis, k=keepdims: tf(T, x, a, k),
                 shapes, _REDUCE_DOMAIN.get(op, real))
    # the Tensor methods take the same route
    spec("sum_method", "sum", lambda x: x.sum(axis=0), lambda T, x: x.sum(0), M34)
    spec("mean_method", "mean", lambda x: x.mean(1, True), lambda T, x: x.mean(1, True), M34)
    spec("max_method", "max", lambda x: x.max(), lambda T, x: x.max(), M34, distinct)
    spec("min_method", "min", lambda x: x.min(axis=1), lambda T, x: x.amin(1), M34, distinct)
    spec("prod_method", "prod", lambda x: x.prod(axis=0), lambda T, x: x.prod(0), M34, nonzero)
    for axis, keepdims, shapes in REDUCE_CASES[2:]:
        spec(f"prod_with_zeros[axis={axis},keepdims={keepdims}]", "prod",
             lambda x, a=axis, k=keepdims: gw.prod(x, axis=a, keepdims=k),
             lambda T, x, a=axis, k=keepdims: _t_prod(T, x, a, k), shapes, with_zeros)
    spec("prod_with_zeros[all]", "prod", gw.prod, lambda T, x: x.prod(),
         (((3,),), ((3, 4),), ((2, 3, 4),)), with_zeros)
    spec("logsumexp_method", "logsumexp", lambda x: x.logsumexp(axis=1),
         lambda T, x: x.logsumexp(1), M34)


_reduce_specs()

for _axis, _ddof, _keep in ((None, 0, False), (0, 0, False), (1, 1, True), ((0, 1), 1, False)):
    spec(f"var[axis={_axis},ddof={_ddof},keepdims={_keep}]", "mean sub mul sum div",
         lambda x, a=_axis, d=_ddof, k=_keep: gw.var(x, axis=a, ddof=d, keepdims=k),
         lambda T, x, a=_axis, d=_ddof, k=_keep: T.var(x, dim=_dims(x, a), correction=d,
                                                       keepdim=k),
         M34 if _axis is not None else ((((3,),),) + M34))
    spec(f"std[axis={_axis},ddof={_ddof},keepdims={_keep}]", "mean sub mul sum div sqrt",
         lambda x, a=_axis, d=_ddof, k=_keep: gw.std(x, axis=a, ddof=d, keepdims=k),
         lambda T, x, a=_axis, d=_ddof, k=_keep: T.std(x, dim=_dims(x, a), correction=d,
                                                       keepdim=k),
         M34 if _axis is not None else ((((3,),),) + M34))
spec("var_method", "mean sub mul sum div", lambda x: x.var(axis=0),
     lambda T, x: x.var(0, correction=0), M34)
spec("std_method", "mean sub mul sum div sqrt", lambda x: x.std(ddof=1),
     lambda T, x: x.std(correction=1), M34)

for _axis in (-1, 0):
    spec(f"softmax[axis={_axis}]", "softmax", lambda x, a=_axis: gw.softmax(x, axis=a),
         lambda T, x, a=_axis: T.softmax(x, dim=a), (((3,),), ((3, 4),)))
    spec(f"log_softmax[axis={_axis}]", "log_softmax",
         lambda x, a=_axis: gw.log_softmax(x, axis=a),
         lambda T, x, a=_axis: T.log_softmax(x, dim=a), (((3,),), ((3, 4),)))
spec("softmax_method", "softmax", lambda x: x.softmax(), lambda T, x: x.softmax(-1), M34)
spec("log_softmax_method", "log_softmax", lambda x: x.log_softmax(0),
     lambda T, x: x.log_softmax(0), M34)

# --------------------------------------------------------------------- shapes
spec("reshape", "reshape", lambda x: gw.reshape(x, (4, 3)), lambda T, x: x.reshape(4, 3), M34)
spec("reshape_minus1", "reshape", lambda x: x.reshape(2, -1), lambda T, x: x.reshape(2, -1),
     M34)
spec("flatten", "reshape", lambda x: x.flatten(), lambda T, x: x.flatten(), M34)
spec("reshape_scalar", "reshape", lambda x: x.reshape(1, 1), lambda T, x: x.reshape(1, 1),
     (((),),))
spec("transpose_T", "transpose", lambda x: x.T, lambda T, x: x.permute(*range(x.dim() - 1, -1, -1)),
     U[1:] + (((2, 3, 4),),))
spec("transpose_axes", "transpose", lambda x: gw.transpose(x, (1, 2, 0)),
     lambda T, x: x.permute(1, 2, 0), (((2, 3, 4),),))
spec("swapaxes", "transpose", lambda x: x.swapaxes(0, 2), lambda T, x: x.transpose(0, 2),
     (((2, 3, 4),),))
spec("moveaxis", "transpose", lambda x: gw.moveaxis(x, 0, -1),
     lambda T, x: T.movedim(x, 0, -1), (((2, 3, 4),),))
spec("moveaxis_multi", "transpose", lambda x: gw.moveaxis(x, (0, 1), (2, 0)),
     lambda T, x: T.movedim(x, (0, 1), (2, 0)), (((2, 3, 4),),))
spec("expand_dims_0", "reshape", lambda x: gw.expand_dims(x, 0),
     lambda T, x: x.unsqueeze(0), U)
spec("expand_dims_last", "reshape", lambda x: gw.expand_dims(x, -1),
     lambda T, x: x.unsqueeze(-1), U[1:])
spec("squeeze_axis", "reshape", lambda x: gw.squeeze(x, axis=1), lambda T, x: x.squeeze(1),
     (((3, 1, 4),),))
spec("squeeze_all", "reshape", lambda x: gw.squeeze(x), lambda T, x: x.squeeze(),
     (((1, 3, 1),),))
spec("broadcast_to", "broadcast_to", lambda x: gw.broadcast_to(x, (2, 3, 4)),
     lambda T, x: T.broadcast_to(x, (2, 3, 4)), (((),), ((4,),), ((3, 1),), ((1, 3, 4),)))
spec("concatenate_axis0", "concatenate", lambda x, y: gw.concatenate([x, y]),
     lambda T, x, y: T.cat([x, y]), (((2, 4), (3, 4)), ((3,), (2,))))
spec("concatenate_axis1", "concatenate", lambda x, y: gw.concatenate([x, y], axis=1),
     lambda T, x, y: T.cat([x, y], dim=1), (((3, 2), (3, 4)),))
spec("concatenate_three_neg_axis", "concatenate",
     lambda x, y, z: gw.concatenate((x, y, z), axis=-1),
     lambda T, x, y, z: T.cat([x, y, z], dim=-1), (((3, 1), (3, 2), (3, 4)),))
spec("concatenate_axis_none", "concatenate reshape",
     lambda x, y: gw.concatenate([x, y], axis=None),
     lambda T, x, y: T.cat([x.reshape(-1), y.reshape(-1)]), (((3, 4), (2,)),))
for _axis in (0, 1, -1):
    spec(f"stack[axis={_axis}]", "stack", lambda x, y, a=_axis: gw.stack([x, y], axis=a),
         lambda T, x, y, a=_axis: T.stack([x, y], dim=a), (((3, 4), (3, 4)),))
spec("stack_three_scalars", "stack", lambda x, y, z: gw.stack([x, y, z]),
     lambda T, x, y, z: T.stack([x, y, z]), (((), (), ()),))

# ------------------------------------------------------------------- indexing
_MASK = np.array([[True, False, True, False], [False, False, True, True],
                  [True, True, False, False]])
_INDEX_CASES = {
    "int": (1, M34),
    "negative_int": (-1, M34),
    "int_pair": ((2, 3), M34),
    "slices": ((slice(1, None), slice(None, None, 2)), M34),
    "ellipsis_int": ((Ellipsis, 1), M34),
    "newaxis": ((None, slice(None)), M34),
    "int_array_repeats": (np.array([0, 2, 0, 0]), M34),
    "int_array_2d_repeats": ((np.array([0, 0, 2, 2]), np.array([1, 1, 3, 1])), M34),
    "int_array_and_slice": ((np.array([2, 2, 0]), slice(1, 3)), M34),
    "int_array_matrix": (np.array([[0, 1], [1, 1]]), M34),
    "bool_mask": (_MASK, M34),
    "bool_rows": (np.array([True, False, True]), M34),
    "vector_repeats": (np.array([0, 0, 1, 2, 2, 2]), (((3,),),)),
}


def _torch_index(T, idx):
    if isinstance(idx, np.ndarray):
        return T.as_tensor(idx)
    if isinstance(idx, tuple):
        return tuple(_torch_index(T, i) for i in idx)
    return idx


for _name, (_idx, _shapes) in _INDEX_CASES.items():
    spec(f"getitem_{_name}", "getitem scatter_add", lambda x, i=_idx: x[i],
         lambda T, x, i=_idx: x[_torch_index(T, i)], _shapes)
spec("getitem_list_index", "getitem scatter_add", lambda x: x[[2, 0, 2]],
     lambda T, x: x[[2, 0, 2]], M34)
spec("iterate_rows", "getitem stack", lambda x: gw.stack(list(x)) * gw.stack([r for r in x]),
     lambda T, x: T.stack(list(x)) * T.stack(list(x)), M34)

# setitem on a non-leaf: the graph goes through the overwritten tensor and the value
_SET_CASES = {
    "int": (1, ((3, 4), (4,))),
    "broadcast_value": (1, ((3, 4), ())),
    "slice": ((slice(None), slice(1, 3)), ((3, 4), (3, 2))),
    "int_array": (np.array([0, 2]), ((3, 4), (2, 4))),
    "bool_mask": (_MASK, ((3, 4), (6,))),
}


def _gw_set(x, v, idx):
    y = x * 1.0
    y[idx] = v * 2.0
    return y * y


def _torch_set(T, x, v, idx):
    y = x * 1.0
    y[_torch_index(T, idx)] = v * 2.0
    return y * y


for _name, (_idx, _shapes) in _SET_CASES.items():
    spec(f"setitem_{_name}", "setitem", lambda x, v, i=_idx: _gw_set(x, v, i),
         lambda T, x, v, i=_idx: _torch_set(T, x, v, i), (_shapes,))


def _gw_inplace(x, v):
    y = x * 1.0
    y += v
    y *= v
    y -= x
    y /= 2.0
    return y


spec("inplace_ops_non_leaf", "add mul sub div", _gw_inplace, lambda T, x, v: _gw_inplace(x, v),
     (((3, 4), (3, 4)), ((3, 4), (4,)), ((3,), ())))

# ------------------------------------------------------------ linear algebra
spec("matmul", "matmul", lambda a, b: a @ b, lambda T, a, b: a @ b,
     (((3,), (3,)), ((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 2, 3), (3, 4)),
      ((2, 3), (2, 3, 4)), ((3,), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 2, 3), (3, 3, 2))))
spec("matmul_fn", "matmul", gw.matmul, lambda T, a, b: T.matmul(a, b), (((2, 3), (3, 4)),))
spec("rmatmul_array", "matmul", lambda b: np.ones((2, 3), dtype=b.dtype) @ b,
     lambda T, b: T.ones((2, 3), dtype=b.dtype) @ b, (((3, 4),), ((3,),)))
spec("dot", "matmul mul einsum",
     gw.dot, lambda T, a, b: _t_dot(T, a, b),
     (((3,), (3,)), ((2, 3), (3, 4)), ((2, 3), (3,)), ((), (3,)), ((2, 3, 4), (4, 5)),
      ((2, 3, 4), (5, 4, 2))))


def _t_dot(T, a, b):
    if a.dim() == 0 or b.dim() == 0:
        return a * b
    if a.dim() <= 2 and b.dim() <= 2:
        return a @ b
    return T.tensordot(a, b, dims=([a.dim() - 1], [b.dim() - 2]))


spec("outer", "reshape mul", gw.outer, lambda T, a, b: T.outer(a.reshape(-1), b.reshape(-1)),
     (((3,), (4,)), ((2, 3), (4,))))
for _axes, _shapes in ((2, ((2, 3, 4), (3, 4, 5))), (1, ((3, 4), (4, 2))), (0, ((3,), (4,))),
                       (([1], [0]), ((2, 3), (3, 4))), (([0, 2], [2, 0]), ((2, 3, 4), (4, 5, 2)))):
    spec(f"tensordot[axes={_axes}]", "einsum",
         lambda a, b, ax=_axes: gw.tensordot(a, b, axes=ax),
         lambda T, a, b, ax=_axes: T.tensordot(a, b, dims=ax), (_shapes,))

_EINSUM = {
    "ij,jk->ik": ((3, 4), (4, 2)),
    "ij,jk": ((3, 4), (4, 2)),
    "ij->": ((3, 4),),
    "ij->j": ((3, 4),),
    "ij->ji": ((3, 4),),
    "i,i->": ((3,), (3,)),
    "i,j->ij": ((3,), (4,)),
    "ij,ij->i": ((3, 4), (3, 4)),
    "bij,bjk->bik": ((2, 3, 4), (2, 4, 2)),
    "...ij,jk->...ik": ((2, 3, 4), (4, 5)),
    "...ij,jk": ((2, 3, 4), (4, 5)),
    "...i,...i->...": ((2, 3), (3,)),
    "ij,k->i": ((3, 4), (2,)),
    "ij,jk,kl->il": ((2, 3), (3, 4), (4, 2)),
    "ii->": ((3, 3),),
    "ii": ((3, 3),),
    "ii->i": ((3, 3),),
    "bii->bi": ((2, 3, 3),),
    "iji->j": ((3, 2, 3),),
    "ij,ii->j": ((3, 4), (3, 3)),
}
for _sub, _shapes in _EINSUM.items():
    spec(f"einsum[{_sub}]", "einsum", lambda *ops, s=_sub: gw.einsum(s, *ops),
         lambda T, *ops, s=_sub: T.einsum(s, *ops), (_shapes,))


# --------------------------------------------------------------------- helpers
def cotangent(shape, dtype=F64, salt="w"):
    """A fixed random upstream gradient (so every output entry is weighted differently)."""
    rng = np.random.default_rng(zlib.crc32(f"{shape}{salt}".encode()))
    return (rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)


def numeric_vjp(fn, xs, w, eps=1e-5):
    """Central finite differences of ``<w, fn(*xs)>`` with respect to every entry of every x."""
    grads = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            hi = [a.copy() for a in xs]
            lo = [a.copy() for a in xs]
            hi[i][j] += eps
            lo[i][j] -= eps
            g[j] = (np.sum(w * fn(*hi)) - np.sum(w * fn(*lo))) / (2 * eps)
        grads.append(g)
    return grads


def rel_err(a, b):
    """Relative error in the 2-norm, ``|a - b| / max(|a|, |b|, 1)``: an absolute error
    for results of norm below 1, where an exact 0 meets finite-difference noise
    (e.g. the Hessian of a product with three zero factors)."""
    a, b = np.asarray(a, dtype=F64), np.asarray(b, dtype=F64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1.0))


# -------------------------------------------------------- fused network blocks
spec("linear", "linear", gw.linear, lambda T, x, w, b: T.nn.functional.linear(x, w, b),
     (((5, 3), (4, 3), (4,)), ((3,), (4, 3), (4,)), ((2, 5, 3), (4, 3), (4,))))
spec("linear_no_bias", "linear", lambda x, w: gw.linear(x, w),
     lambda T, x, w: T.nn.functional.linear(x, w), (((5, 3), (4, 3)),))
_XENT_T = np.array([0, 3, 1, 1, 2])
spec("softmax_cross_entropy_index", "softmax_cross_entropy",
     lambda z: gw.softmax_cross_entropy(z, _XENT_T) ** 2,
     lambda T, z: T.nn.functional.cross_entropy(
         z, T.tensor(_XENT_T), reduction="none") ** 2, (((5, 4),),))
spec("softmax_cross_entropy_probs", "softmax_cross_entropy",
     lambda z, t: gw.softmax_cross_entropy(z, t) ** 2,
     lambda T, z, t: T.nn.functional.cross_entropy(z, t, reduction="none") ** 2,
     (((5, 4), (5, 4)),), (real, positive))
spec("softmax_cross_entropy_mean", "softmax_cross_entropy",
     lambda z: gw.softmax_cross_entropy(z, _XENT_T, reduction="mean") ** 2,
     lambda T, z: T.nn.functional.cross_entropy(z, T.tensor(_XENT_T)) ** 2, (((5, 4),),))
spec("softmax_cross_entropy_sum_probs", "softmax_cross_entropy",
     lambda z, t: gw.softmax_cross_entropy(z, t, reduction="sum") ** 2,
     lambda T, z, t: T.nn.functional.cross_entropy(z, t, reduction="sum") ** 2,
     (((5, 4), (5, 4)),), (real, positive))
