"""NumPy interoperability: ``np.exp(t)``, ``np.matmul(W, x)``, ``np.sum(t, axis=0)`` ...

``Tensor.__array_ufunc__`` and ``Tensor.__array_function__`` (NEP 13 / NEP 18)
route NumPy calls on Tensors to the differentiable functions. A NumPy function
without a rule raises ``TypeError`` naming it — it never silently turns the
Tensor into a plain array and drops the graph. Functions whose result carries
no gradient (shapes, comparisons, ``isfinite``, ``argmax`` ...) run on the
values.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from gradwise.autodiff import functions as F
from gradwise.autodiff.tensor import P, Tensor, _Mode, _trace_break, _wrap, apply

__all__ = ["supported"]


def _ufunc_map():
    return {
        np.add: P.add, np.subtract: P.sub, np.multiply: P.mul, np.true_divide: P.div,
        np.power: P.pow, np.float_power: P.pow, np.negative: P.neg, np.exp: P.exp,
        np.log: P.log, np.log1p: P.log1p, np.expm1: P.expm1, np.sqrt: P.sqrt,
        np.square: P.square, np.absolute: P.abs, np.sign: P.sign, np.sin: P.sin,
        np.cos: P.cos, np.tanh: P.tanh, np.maximum: P.maximum, np.minimum: P.minimum,
        np.matmul: P.matmul, expit: P.sigmoid, np.logaddexp: None,
    }


_UFUNCS = None

#: ufuncs whose result has zero or no derivative: computed on the values.
_NONDIFF_UFUNCS = {
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isfinite, np.isnan, np.isinf, np.floor, np.ceil, np.rint, np.trunc,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor, np.signbit,
}


def _values(x):
    if isinstance(x, Tensor):
        if x.requires_grad and _Mode.tracing is not None:
            _trace_break("a NumPy function takes the values of a traced tensor (np.sort, "
                         "np.where(mask), where=..., ...): a replay would keep them")
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_values(v) for v in x)
    return x


def _any_grad(xs):
    for x in xs:
        if isinstance(x, Tensor) and x.requires_grad:
            return True
        if isinstance(x, (list, tuple)) and _any_grad(x):
            return True
    return False


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    global _UFUNCS
    if _UFUNCS is None:
        _UFUNCS = _ufunc_map()
    name = getattr(ufunc, "__name__", str(ufunc))
    out = kwargs.get("out")
    # Tensors written in place: out=..., or the first operand of ufunc.at
    written = [o for o in (out or ()) if isinstance(o, Tensor)]
    if method == "at" and isinstance(inputs[0], Tensor):
        written.append(inputs[0])
    recording = _Mode.enabled and (_any_grad(inputs) or any(o.requires_grad for o in written))
    if method != "__call__" or out is not None or (kwargs and recording):
        if recording:
            what = f"np.{name}.{method}" if method != "__call__" else f"np.{name}(..., {', '.join(kwargs)}=...)"
            raise TypeError(
                f"gradwise cannot differentiate {what}; write it with the supported "
                f"functions (see gradwise.autodiff.numpy_api.supported())"
            )
        _trace_break(f"it calls np.{name}.{method} or writes with out=, outside the graph")
        kwargs = {k: _values(v) for k, v in kwargs.items()}
        res = getattr(ufunc, method)(*_values(inputs), **kwargs)
        for t in written:  # an in-place write: backward through a saved copy must fail
            t._version[0] += 1
        if out is None:
            return _wrap_result(res)
        res = res if isinstance(res, tuple) else (res,)
        outs = tuple(o if isinstance(o, Tensor) else _wrap_result(r) for o, r in zip(out, res))
        return outs if len(outs) > 1 else outs[0]
    if ufunc in _NONDIFF_UFUNCS:
        if _Mode.tracing is not None and not kwargs and _any_grad(inputs):
            return _Mode.tracing.value_only(apply(getattr(P, name), *inputs))
        return _wrap_result(ufunc(*_values(inputs)))
    if ufunc is np.logaddexp:
        a, b = inputs
        m = F.maximum(a, b)
        return m + F.log1p(F.exp(-F.abs(_sub(a, b))))
    prim = _UFUNCS.get(ufunc)
    if prim is None:
        if not recording:
            return _wrap_result(ufunc(*_values(inputs)))
        raise TypeError(
            f"gradwise has no differentiation rule for the NumPy function np.{name}; "
            f"supported: {', '.join(supported())}"
        )
    return apply(prim, *inputs)


def _sub(a, b):
    return apply(P.sub, a, b)


def _wrap_result(out):
    if isinstance(out, tuple):
        return tuple(_wrap_result(o) for o in out)
    return _wrap(out) if isinstance(out, (np.ndarray, np.generic)) else out


def _unsupported(name, out, kw):
    bad = (["out"] if out is not None else []) + list(kw)
    if bad:
        raise TypeError(
            f"gradwise: np.{name}(..., {', '.join(k + '=' for k in bad)}) is not supported on "
            f"Tensors; call it without {', '.join(k + '=' for k in bad)}"
        )


def _np_reduce(fn):
    """np.sum/mean/max/min/prod on Tensors: ``dtype=`` is a differentiable cast of the
    input (as NumPy computes in that dtype); ``where=`` masks entries of sum and mean."""
    def impl(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None, **kw):
        _unsupported(fn.__name__, out, kw)
        a = F._t(a)
        if dtype is not None:
            a = a.astype(dtype)
        if where is None:
            return fn(a, axis=axis, keepdims=keepdims)
        if fn not in (F.sum, F.mean):
            _unsupported(fn.__name__, None, {"where": where})
        mask = np.broadcast_to(_values(where), a.shape)
        total = F.sum(F.where(mask, a, 0.0), axis=axis, keepdims=keepdims)
        if fn is F.sum:
            return total
        return total / np.sum(mask, axis=axis, keepdims=keepdims)

    return impl


def _np_var(fn):
    def impl(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        _unsupported(fn.__name__, out, kw)
        a = F._t(a)
        return fn(a if dtype is None else a.astype(dtype), axis=axis, ddof=ddof,
                  keepdims=keepdims)

    return impl


def _np_clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None, **kw):  # noqa: A002
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    return F.clip(a, lo, hi)


def _np_where(cond, x=None, y=None):
    if x is None and y is None:
        return np.where(_values(cond))
    return F.where(cond, x, y)


def _np_concat(arrays, axis=0, out=None, **kw):
    return F.concatenate(arrays, axis=axis)


def _np_stack(arrays, axis=0, out=None, **kw):
    return F.stack(arrays, axis=axis)


def _np_reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise TypeError("gradwise: np.reshape supports only order='C'")
    return F.reshape(a, shape if shape is not None else newshape)


def _np_transpose(a, axes=None):
    return F.transpose(a, axes)


def _np_linalg_norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    if ord not in (None, 2, "fro") or (ord == 2 and (axis is None and np.ndim(_values(x)) > 1)):
        raise TypeError("gradwise: np.linalg.norm is differentiable only for the 2-/Frobenius norm")
    return F._sqrt0(F.sum(F.square(x), axis=axis, keepdims=keepdims))


def _np_sort(a, axis=-1, kind=None, order=None, **kw):
    """Sorting permutes the entries: differentiable as indexing with the sorting indices."""
    if order is not None or kw:
        raise TypeError("gradwise: np.sort with order= or other options is not supported")
    if axis is None:
        a = F.reshape(a, (-1,))
        axis = 0
    v = _values(a)
    ix = list(np.indices(v.shape, sparse=True))
    ix[axis] = np.argsort(v, axis=axis, kind=kind)
    return F._t(a)[tuple(ix)]


def _np_einsum(subscripts, *operands, out=None, optimize=False, **kw):
    """``optimize`` only changes the contraction order, never the result: ignored."""
    if out is not None or kw:
        raise TypeError(f"gradwise: np.einsum with out=/{list(kw)} is not supported")
    return F.einsum(subscripts, *operands)


_FUNCS = {
    np.sum: _np_reduce(F.sum), np.mean: _np_reduce(F.mean), np.max: _np_reduce(F.max),
    np.amax: _np_reduce(F.max), np.min: _np_reduce(F.min), np.amin: _np_reduce(F.min),
    np.prod: _np_reduce(F.prod), np.var: _np_var(F.var), np.std: _np_var(F.std),
    np.reshape: _np_reshape, np.transpose: _np_transpose, np.moveaxis: F.moveaxis,
    np.swapaxes: F.swapaxes, np.expand_dims: F.expand_dims, np.squeeze: F.squeeze,
    np.broadcast_to: F.broadcast_to, np.concatenate: _np_concat, np.stack: _np_stack,
    np.dot: F.dot, np.outer: F.outer, np.tensordot: F.tensordot, np.einsum: _np_einsum,
    np.sort: _np_sort,
    np.where: _np_where, np.clip: _np_clip, np.matmul: F.matmul,
    np.ravel: lambda a, order="C": F.reshape(a, (-1,)), np.linalg.norm: _np_linalg_norm,
}

#: functions that only look at values/shapes: run on the arrays, return plain results.
_NONDIFF_FUNCS = {
    np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.full_like,
    np.argmax, np.argmin, np.argsort, np.allclose, np.isclose, np.array_equal,
    np.result_type, np.iscomplexobj, np.isrealobj, np.count_nonzero, np.nonzero,
    np.round, np.around, np.copyto,
}


def array_function(self, func, types, args, kwargs):
    if func is np.copyto and args and isinstance(args[0], Tensor):
        return _copyto(*args, **kwargs)
    impl = _FUNCS.get(func)
    if impl is not None:
        try:
            return impl(*args, **kwargs)
        except TypeError as e:
            if "unexpected keyword argument" not in str(e):
                raise
            raise TypeError(
                f"gradwise: np.{func.__name__} on Tensors supports only its array/axis "
                f"arguments, not {sorted(kwargs)} ({e}); drop them, or use .detach() if you "
                "only need the values"
            ) from None
    if func in _NONDIFF_FUNCS or not (_Mode.enabled and _any_grad(args) or
                                      _any_grad(list(kwargs.values())) and _Mode.enabled):
        if func not in _SHAPE_FUNCS:
            _trace_break(f"it calls np.{func.__name__}, which only looks at values")
        return _wrap_result(func(*_values(args), **{k: _values(v) for k, v in kwargs.items()}))
    raise TypeError(
        f"gradwise has no differentiation rule for the NumPy function np.{func.__name__}; "
        f"supported: {', '.join(supported())}. Use .detach() if you only need the values."
    )


#: look at shapes and dtypes only: nothing a compiled replay could get wrong
_SHAPE_FUNCS = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj,
                np.zeros_like, np.ones_like, np.empty_like, np.full_like}


def _copyto(dst, src, casting="same_kind", where=True):
    """np.copyto into a Tensor: an in-place write (refused on a tensor that requires grad
    while gradients are recorded; bumps the version so a saved copy cannot be used)."""
    if _Mode.enabled and (dst.requires_grad or _any_grad([src])):
        raise TypeError("gradwise cannot differentiate np.copyto into a Tensor; under "
                        "gradwise.no_grad() it is an untracked in-place write")
    _trace_break("it writes into a tensor with np.copyto, outside the graph")
    np.copyto(dst.data, _values(src), casting=casting, where=_values(where))
    dst._version[0] += 1


def supported() -> list[str]:
    """Names of the NumPy ufuncs and functions that differentiate on Tensors."""
    global _UFUNCS
    if _UFUNCS is None:
        _UFUNCS = _ufunc_map()
    names = {getattr(u, "__name__", str(u)) for u in _UFUNCS} | {f.__name__ for f in _FUNCS}
    return sorted(names)



Tensor.__array_ufunc__ = array_ufunc
Tensor.__array_function__ = array_function
