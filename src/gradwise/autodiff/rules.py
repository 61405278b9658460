"""THE rule table: every primitive with its forward function and its VJPs.

Each VJP has the signature ``vjp(g, ans, *args, **params)``: ``g`` is the
upstream gradient (same shape as the result ``ans``), ``args`` the primitive's
inputs. The rules are written with NumPy functions and operators only, so the
same rule runs on plain arrays (ordinary backward) and on Tensors (with
``create_graph=True`` the backward pass is recorded and can be differentiated
again — second derivatives and Hessian-vector products come for free).
Masks and other piecewise-constant factors are computed on the plain values
(:func:`_v`): they have zero derivative.

Broadcasting is undone by the engine (:func:`gradwise.autodiff.engine.unbroadcast`),
never here. Derivatives are the textbook ones (e.g. Magnus & Neudecker,
*Matrix Differential Calculus*, 3rd ed., 2019, for matmul/einsum; Griewank &
Walther 2008, ch. 3, for the reverse mode).
"""

from __future__ import annotations

import math
import string

import numpy as np
from scipy.special import expit

from gradwise.autodiff.tensor import P, Primitive, Tensor, apply

__all__ = ["PRIMITIVES", "NONDIFF", "defprim", "pass_through"]

#: name -> Primitive. One entry per differentiable primitive.
PRIMITIVES: dict[str, Primitive] = {}


def defprim(name, fwd, *vjps, nary=False, formulas=None, symbol=None, view=False,
            saves=False):
    """Register a primitive in the table and in the namespace ``P``.

    ``view=True`` marks primitives whose result may be a NumPy view of the first
    argument (it then shares that tensor's version counter). ``saves=True`` marks
    a forward that returns ``(result, saved)``: ``saved`` reaches the VJPs as the
    keyword ``saved`` (plain values; a VJP recording a second-order graph must
    recompute instead)."""
    prim = Primitive(name, fwd, vjps[0] if nary else vjps, nary=nary, formulas=formulas,
                     symbol=symbol, view=view, saves=saves)
    PRIMITIVES[name] = prim
    setattr(P, name, prim)
    return prim


def _v(x):
    """Plain values of an array or Tensor (for masks: derivative zero)."""
    return x.data if isinstance(x, Tensor) else x


def _as(mask, like):
    """A boolean/float mask in the dtype of ``like`` (keeps float32 float32)."""
    return np.asarray(mask, dtype=_v(like).dtype)


def _expand(g, shape, axis, keepdims):
    """Give a reduced gradient back the reduced axes (as length 1)."""
    if axis is None:
        return g.reshape((1,) * len(shape))
    if keepdims:
        return g
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    axes = sorted(a % len(shape) for a in axes)
    newshape = list(g.shape)
    for a in axes:
        newshape.insert(a, 1)
    return g.reshape(tuple(newshape))


def _count(shape, axis):
    if axis is None:
        return math.prod(shape)
    if isinstance(axis, (int, np.integer)):
        return shape[axis]
    return math.prod(shape[a] for a in axis)


# ----------------------------------------------------------------- elementwise
def pass_through(g, ans, x, y):
    """The VJP of an argument of a binary primitive whose local derivative is the
    identity: ``g`` itself (compiled code skips the call: :mod:`gradwise.autodiff.compile`)."""
    return g


defprim("add", np.add, pass_through, pass_through,
        formulas=("1", "1"), symbol="+")
defprim("sub", np.subtract, pass_through, lambda g, ans, x, y: -g,
        formulas=("1", "-1"), symbol="-")
defprim("mul", np.multiply, lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x,
        formulas=("{1}", "{0}"), symbol="*")
defprim("div", np.true_divide, lambda g, ans, x, y: g / y,
        lambda g, ans, x, y: -g * ans / y,
        formulas=("1/{1}", "-{0}/{1}²"), symbol="/")


def _pow_dy(g, ans, x, y):
    xv = _v(x)
    safe = np.where(xv > 0, x, np.ones_like(xv))
    return g * ans * np.log(safe) * _as(xv > 0, g)


def _pow_fwd(x, y):
    if type(y) in (int, float) and y == 2:
        return x * x  # much faster than np.power for the ubiquitous square
    return np.power(x, y)


def _pow_dx(g, ans, x, y):
    if type(y) in (int, float) and y == 2:
        return g * 2 * x
    yv = _v(y)
    if np.any(yv == 0):  # d(x**0)/dx = 0 also at x = 0 (y * x**(y-1) would be 0 * inf)
        return g * y * x ** np.where(yv == 0, 1, y - 1)
    return g * y * x ** (y - 1)


defprim("pow", _pow_fwd, _pow_dx, _pow_dy,
        formulas=("{1}·{0}^({1}-1)", "{0}^{1}·log({0})"), symbol="**")
defprim("neg", np.negative, lambda g, ans, x: -g, formulas=("-1",))
defprim("exp", np.exp, lambda g, ans, x: g * ans, formulas=("exp({0})",))
defprim("log", np.log, lambda g, ans, x: g / x, formulas=("1/{0}",))
defprim("log1p", np.log1p, lambda g, ans, x: g / (1 + x), formulas=("1/(1+{0})",))
defprim("expm1", np.expm1, lambda g, ans, x: g * (ans + 1), formulas=("exp({0})",))
defprim("sqrt", np.sqrt, lambda g, ans, x: g * 0.5 / ans, formulas=("1/(2·sqrt({0}))",))
defprim("square", np.square, lambda g, ans, x: g * 2 * x, formulas=("2·{0}",))
defprim("abs", np.abs, lambda g, ans, x: g * np.sign(_v(x)).astype(_v(g).dtype, copy=False),
        formulas=("sign({0})",))
defprim("sign", np.sign, lambda g, ans, x: g * 0, formulas=("0",))
defprim("sin", np.sin, lambda g, ans, x: g * np.cos(x), formulas=("cos({0})",))
defprim("cos", np.cos, lambda g, ans, x: -g * np.sin(x), formulas=("-sin({0})",))
defprim("tanh", np.tanh, lambda g, ans, x: g * (1 - ans * ans), formulas=("1-tanh²({0})",))
# expit = 1/(1+exp(-x)) evaluated without overflow for any |x|
defprim("sigmoid", expit, lambda g, ans, x: g * ans * (1 - ans),
        formulas=("σ({0})(1-σ({0}))",))
# (a bool mask never changes the dtype of g: float32 stays float32)
defprim("relu", lambda x: np.maximum(x, 0), lambda g, ans, x: g * (_v(x) > 0),
        formulas=("1[{0}>0]",))


def _leaky_fwd(x, negative_slope=0.01):
    return np.where(x > 0, x, x * negative_slope)


defprim("leaky_relu", _leaky_fwd,
        lambda g, ans, x, negative_slope=0.01: np.where(_v(x) > 0, g, g * negative_slope),
        formulas=("1[{0}>0] + slope·1[{0}≤0]",))
# softplus(x) = log(1 + e^x) = logaddexp(0, x), stable for any |x|
defprim("softplus", lambda x: np.logaddexp(0, x), lambda g, ans, x: g * expit(x),
        formulas=("σ({0})",))
defprim("cast", lambda x, dtype: x.astype(dtype),
        lambda g, ans, x, dtype: g.astype(_v(x).dtype), formulas=("1",))


def _pick(wins):
    """VJP of max/min of a pair: 1 where this argument wins, ½ at ties (as in PyTorch)."""

    def vjp(g, ans, x, y):
        xv, yv = _v(x), _v(y)
        return g * _as(wins(xv, yv), g) - g * _as(xv == yv, g) * 0.5

    return vjp


defprim("maximum", np.maximum, _pick(np.greater_equal), _pick(lambda a, b: b >= a),
        formulas=("1[{0}≥{1}]", "1[{1}≥{0}]"))
defprim("minimum", np.minimum, _pick(np.less_equal), _pick(lambda a, b: b <= a),
        formulas=("1[{0}≤{1}]", "1[{1}≤{0}]"))
defprim("where", np.where, None,
        lambda g, ans, c, x, y: np.where(_v(c), g, g * 0),
        lambda g, ans, c, x, y: np.where(_v(c), g * 0, g),
        formulas=(None, "1[cond]", "1[not cond]"))


def _clip_fwd(x, lo=None, hi=None):
    return np.clip(x, lo, hi)


def _clip_vjp(g, ans, x, lo=None, hi=None):
    xv = _v(x)
    m = np.ones(xv.shape, dtype=bool)
    if lo is not None:
        m &= xv >= lo
    if hi is not None:
        m &= xv <= hi
    return g * _as(m, g)


defprim("clip", _clip_fwd, _clip_vjp, formulas=("1[lo≤{0}≤hi]",))


# ------------------------------------------------- not differentiable: values only
# Comparisons, logical operations and rounding have no VJP. Eagerly they return plain
# tensors (no graph); while gradwise.compile traces a function they are recorded, so
# that a mask such as ``np.where(z > 0, z, 0.01 * z)`` is recomputed by every replay.
#: names of the primitives without any VJP (recorded only while tracing)
NONDIFF = set()
for _ufunc in (np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
               np.logical_and, np.logical_or, np.logical_xor, np.logical_not, np.isfinite,
               np.isnan, np.isinf, np.signbit, np.floor, np.ceil, np.rint, np.trunc):
    defprim(_ufunc.__name__, _ufunc, *(None,) * _ufunc.nin)
    NONDIFF.add(_ufunc.__name__)


# ----------------------------------------------------------------- reductions
def _bcast(g, shape):
    """``g`` broadcast to ``shape`` as a new writable array (or a Tensor op)."""
    if isinstance(g, Tensor):
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


def _sum_vjp(g, ans, x, axis=None, keepdims=False):
    return _bcast(_expand(g, x.shape, axis, keepdims), x.shape)


def _mean_vjp(g, ans, x, axis=None, keepdims=False):
    if axis is None and type(g) is np.ndarray:  # the mean of everything: fill with g / n
        out = np.empty(x.shape, dtype=g.dtype)
        out[...] = g / x.size
        return out
    return _bcast(_expand(g, x.shape, axis, keepdims) / _count(x.shape, axis), x.shape)


def _extreme_vjp(g, ans, x, axis=None, keepdims=False):
    xv = _v(x)
    mask = xv == _expand(_v(ans), xv.shape, axis, keepdims)
    mask = _as(mask, g)
    share = mask / mask.sum(axis=axis, keepdims=True)  # ties share the gradient
    return _expand(g, xv.shape, axis, keepdims) * share


def _prod_vjp(g, ans, x, axis=None, keepdims=False):
    xv = _v(x)
    ge = _expand(g, xv.shape, axis, keepdims)
    if np.all(xv != 0):
        return ge * _expand(ans, xv.shape, axis, keepdims) / x
    return ge * _others_prod(x, axis)  # exact with zeros (prod/x would be 0/0)


def _others_prod(x, axis):
    """For every entry, the product of the other entries over ``axis`` (exact with zeros).

    Plain arrays: exclusive cumulative products from both sides, O(n). Tensors
    (under ``create_graph``): the product of each row of an n×n matrix whose
    diagonal is replaced by 1, built from primitives so it is differentiable.
    """
    xv = _v(x)
    nd = xv.ndim
    axes = list(range(nd)) if axis is None else sorted(int(a) % nd for a in np.atleast_1d(axis))
    rest = [a for a in range(nd) if a not in axes]
    xt = np.transpose(x, rest + axes)
    tshape = _v(xt).shape
    n = int(np.prod([xv.shape[a] for a in axes], dtype=np.int64))
    flat = np.reshape(xt, tshape[:len(rest)] + (n,))
    if isinstance(x, Tensor):
        others = np.prod(np.where(np.eye(n, dtype=bool), 1.0, flat[..., None, :]), axis=-1)
    else:
        ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
        left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = left * right
    return np.transpose(np.reshape(others, tshape), tuple(np.argsort(rest + axes)))


def _reduce_fwd(fn):
    return lambda x, axis=None, keepdims=False: fn(x, axis=axis, keepdims=keepdims)


def _sum_fwd(x, axis=None, keepdims=False):
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


def _mean_fwd(x, axis=None, keepdims=False):
    if x.dtype.kind not in "fc":
        return np.mean(x, axis=axis, keepdims=keepdims)
    return np.add.reduce(x, axis=axis, keepdims=keepdims) / (
        x.size if axis is None else _count(x.shape, axis))


defprim("sum", _sum_fwd, _sum_vjp, formulas=("1",))
defprim("mean", _mean_fwd, _mean_vjp, formulas=("1/n",))
defprim("max", _reduce_fwd(np.max), _extreme_vjp, formulas=("1[{0}=max]",))
defprim("min", _reduce_fwd(np.min), _extreme_vjp, formulas=("1[{0}=min]",))
defprim("prod", _reduce_fwd(np.prod), _prod_vjp, formulas=("prod/{0}",))


def _logsumexp_fwd(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else _squeeze_axes(out, axis)


def _squeeze_axes(out, axis):
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _logsumexp_vjp(g, ans, x, axis=None, keepdims=False):
    shape = _v(x).shape
    return _expand(g, shape, axis, keepdims) * np.exp(x - _expand(ans, shape, axis, keepdims))


defprim("logsumexp", _logsumexp_fwd, _logsumexp_vjp, formulas=("softmax({0})",))


def _softmax_fwd(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_fwd(x, axis=-1):
    return x - _logsumexp_fwd(x, axis=axis, keepdims=True)


defprim("softmax", _softmax_fwd,
        lambda g, ans, x, axis=-1: ans * (g - (g * ans).sum(axis=axis, keepdims=True)),
        formulas=("diag(s)-s·sᵀ",))
defprim("log_softmax", _log_softmax_fwd,
        lambda g, ans, x, axis=-1: g - np.exp(ans) * g.sum(axis=axis, keepdims=True),
        formulas=("I-1·softmax({0})ᵀ",))


# -------------------------------------------------------------------- shapes
defprim("reshape", lambda x, shape: np.reshape(x, shape),
        lambda g, ans, x, shape: g.reshape(_v(x).shape), formulas=("1",), view=True)


def _inverse_axes(axes, ndim):
    if axes is None:
        return None
    return tuple(np.argsort([a % ndim for a in axes]))


defprim("transpose", lambda x, axes=None: np.transpose(x, axes),
        lambda g, ans, x, axes=None: np.transpose(g, _inverse_axes(axes, _v(x).ndim)),
        formulas=("1",), view=True)
# the engine sums the gradient back to the operand's shape
defprim("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
        lambda g, ans, x, shape: g, formulas=("1",), view=True)


def _basic_index(idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice))
               for p in parts)


def _scatter_fwd(g, shape, idx):
    z = np.zeros(shape, dtype=g.dtype)
    if _basic_index(idx):
        z[idx] = g
    else:
        np.add.at(z, idx, g)  # repeated indices accumulate
    return z


defprim("scatter_add", _scatter_fwd, lambda gg, ans, g, shape, idx: gg[idx],
        formulas=("1",))


def _getitem_vjp(g, ans, x, idx):
    if isinstance(g, Tensor):
        return apply(P.scatter_add, g, shape=x.shape, idx=idx)
    return _scatter_fwd(g, x.shape, idx)


defprim("getitem", lambda x, idx: x[idx], _getitem_vjp, formulas=("1",), view=True)


def _setitem_fwd(x, v, idx):
    if not _basic_index(idx):
        hit = np.arange(x.size).reshape(x.shape)[idx]
        if np.unique(hit).size != hit.size:
            raise ValueError(
                "t[idx] = v with an index that repeats a position: NumPy does not define "
                "which value is kept, so the gradient of v would be wrong; remove the "
                "repeated indices (e.g. np.unique) or use an out-of-place expression"
            )
    out = x.copy()
    out[idx] = v
    return out


def _setitem_dx(g, ans, x, v, idx):
    keep = np.ones(_v(x).shape, dtype=bool)
    keep[idx] = False
    return g * _as(keep, g)


defprim("setitem", _setitem_fwd, _setitem_dx,
        lambda g, ans, x, v, idx: g[idx], formulas=("1[not idx]", "1"))


def _concat_vjp(i, g, ans, *xs, axis=0):
    ax = axis % _v(ans).ndim
    start = sum(_v(x).shape[ax] for x in xs[:i])
    sl = [slice(None)] * _v(ans).ndim
    sl[ax] = slice(start, start + _v(xs[i]).shape[ax])
    return g[tuple(sl)]


def _stack_vjp(i, g, ans, *xs, axis=0):
    ax = axis % _v(ans).ndim
    sl = [slice(None)] * _v(ans).ndim
    sl[ax] = i
    return g[tuple(sl)]


defprim("concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis), _concat_vjp,
        nary=True)
defprim("stack", lambda *xs, axis=0: np.stack(xs, axis=axis), _stack_vjp, nary=True)


# ------------------------------------------------------------ linear algebra
def _mT(x):  # noqa: N802
    return x.swapaxes(-1, -2)


def _matmul_da(g, ans, a, b):
    if type(b) is np.ndarray and b.ndim == 2 and g.ndim == 2 and type(g) is np.ndarray:
        return g @ b.T  # the common case first: plain 2-D arrays
    an, bn = _v(a).ndim, _v(b).ndim
    if an == 1 and bn == 1:
        return g * b
    if an == 1:  # a (k,), b (..., k, n), g (..., n)
        return (b @ g.reshape(g.shape + (1,))).reshape(g.shape[:-1] + (_v(b).shape[-2],))
    if bn == 1:  # a (..., m, k), b (k,), g (..., m)
        return g.reshape(g.shape + (1,)) * b
    return g @ _mT(b)


def _matmul_db(g, ans, a, b):
    if type(a) is np.ndarray and a.ndim == 2 and g.ndim == 2 and type(g) is np.ndarray:
        return a.T @ g
    an, bn = _v(a).ndim, _v(b).ndim
    if an == 1 and bn == 1:
        return g * a
    if an == 1:  # g (..., n) -> (..., k, n)
        return a.reshape((-1, 1)) * g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    if bn == 1:  # a (..., m, k), g (..., m) -> (..., k)
        return (_mT(a) @ g.reshape(g.shape + (1,))).reshape(g.shape[:-1] + (_v(a).shape[-1],))
    return _mT(a) @ g


defprim("matmul", np.matmul, _matmul_da, _matmul_db, formulas=("{1}ᵀ", "{0}ᵀ"), symbol="@")


def _einsum_vjp(i, g, ans, *ops, subscripts):
    ins, out = subscripts.split("->")
    ins = ins.split(",")
    target = ins[i]
    uniq = "".join(dict.fromkeys(target))  # a repeated index (diagonal, trace) counts once
    others = [ins[j] for j in range(len(ops)) if j != i]
    present = set(out).union(*others) if others else set(out)
    kept = "".join(c for c in uniq if c in present)
    spec = ",".join([out] + others) + "->" + kept
    gi = np.einsum(spec, g, *[ops[j] for j in range(len(ops)) if j != i])
    shape = _v(ops[i]).shape
    dim = {c: shape[target.index(c)] for c in uniq}
    if kept != uniq:  # indices summed in this operand alone: broadcast back
        gi = np.broadcast_to(gi.reshape(tuple(dim[c] if c in present else 1 for c in uniq)),
                             tuple(dim[c] for c in uniq))
    if uniq != target:  # back onto the diagonal: one identity matrix per repeat
        free = iter(c for c in string.ascii_letters if c not in subscripts)
        renamed, deltas = [], []
        for c in target:
            if c in renamed:
                renamed.append(next(free))
                deltas.append(c + renamed[-1])
            else:
                renamed.append(c)
        eyes = [np.eye(dim[d[0]], dtype=_v(g).dtype) for d in deltas]
        gi = np.einsum(",".join([uniq] + deltas) + "->" + "".join(renamed), gi, *eyes)
    return gi


defprim("einsum", lambda *ops, subscripts: np.einsum(subscripts, *ops), _einsum_vjp,
        nary=True)


# ------------------------------------------------------- fused network blocks
# Fused so that a layer costs one node instead of three (matmul, transpose, add)
# and the weight gradient comes out C-contiguous like the weight.
def _linear_fwd(x, w, b=None):
    out = x @ w.T
    if b is not None:
        if out.ndim and np.result_type(out, b) == out.dtype:
            out += b  # out is a fresh array: add in place
        else:
            out = out + b
    return out


def _linear_dw(g, ans, x, w, b=None):
    n_out, n_in = _v(w).shape
    return g.reshape((-1, n_out)).T @ x.reshape((-1, n_in))


def _linear_db(g, ans, x, w, b=None):
    g2 = g.reshape((-1, _v(w).shape[0]))
    return g2.sum(axis=0) if isinstance(g2, Tensor) else np.add.reduce(g2, axis=0)


defprim("linear", _linear_fwd, lambda g, ans, x, w, b=None: g @ w, _linear_dw, _linear_db,
        formulas=("{1}", "gᵀ·{0}", "1"))


def _onehot(t, n_classes, dtype):
    out = np.zeros((len(t), n_classes), dtype=dtype)
    out[np.arange(len(t)), t] = 1
    return out


def _xent_scale(g, n, reduction):
    """Upstream gradient per sample, as a column: (n, 1), or a scalar for mean/sum."""
    if reduction == "none":
        return g.reshape((-1, 1))
    return g / n if reduction == "mean" else g


def _softmax_xent_fwd(z, t, reduction="none"):
    """Cross-entropy -Σ_c t_c log softmax(z)_c of logits z (n, C) per sample
    (``reduction="none"``) or its mean/sum; t is class indices (n,) or class
    probabilities (n, C). Also returns log softmax(z) for the VJP."""
    m = np.maximum.reduce(z, axis=1, keepdims=True)
    zs = z - np.where(np.isfinite(m), m, 0)
    logp = zs - np.log(np.add.reduce(np.exp(zs), axis=1, keepdims=True))
    if t.ndim == 1:
        c = z.shape[1]
        if t.size and (np.minimum.reduce(t) < 0 or np.maximum.reduce(t) >= c):
            raise ValueError(
                f"cross_entropy: class indices must lie in [0, {c - 1}] for {c} logits per "
                f"sample, got values in [{t.min()}, {t.max()}]"
            )
        per = -logp[np.arange(len(z)), t]
    else:
        per = -(t * logp).sum(axis=1)
    if reduction != "none":
        per = np.add.reduce(per) / len(per) if reduction == "mean" else np.add.reduce(per)
    return per, logp


def _softmax_xent_dz(g, ans, z, t, reduction="none", saved=None):
    tv = _v(t)
    scale = _xent_scale(g, len(tv), reduction)
    if isinstance(z, Tensor):  # second order: softmax as a recorded op
        p = apply(P.softmax, z, axis=1)
        if tv.ndim == 1:
            return (p - _onehot(tv, _v(z).shape[1], _v(p).dtype)) * scale
        return (p * t.sum(axis=1, keepdims=True) - t) * scale
    p = np.exp(saved)  # softmax(z) from the forward's log softmax
    if tv.ndim == 1:
        p[np.arange(len(tv)), tv] -= 1
    else:
        p *= tv.sum(axis=1, keepdims=True)
        p -= tv
    p *= scale
    return p


def _softmax_xent_dt(g, ans, z, t, reduction="none", saved=None):
    ls = apply(P.log_softmax, z, axis=1) if isinstance(z, Tensor) else saved
    return -ls * _xent_scale(g, len(_v(t)), reduction)


defprim("softmax_cross_entropy", _softmax_xent_fwd, _softmax_xent_dz, _softmax_xent_dt,
        formulas=("softmax({0}) - {1}", "-log_softmax({0})"), saves=True)
