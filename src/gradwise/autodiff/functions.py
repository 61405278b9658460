"""Differentiable functions on Tensors (and arrays): the public face of the rule table.

Primitives come from :mod:`.rules`; the few composites here (``var``, ``std``,
``moveaxis``, ``outer``, ``tensordot``, ...) are built from primitives only, so
they need no rule of their own. Each function accepts Tensors, arrays or
Python numbers and returns a Tensor.
"""

from __future__ import annotations

import string

import numpy as np

from gradwise.autodiff.tensor import P, Tensor, _Mode, _trace_break, _unary, apply

__all__ = [
    "exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "sign", "sin", "cos", "tanh",
    "sigmoid", "relu", "leaky_relu", "softplus", "maximum", "minimum", "where", "clip",
    "sum", "mean", "max", "min", "prod", "var", "std", "reshape", "transpose", "moveaxis",
    "swapaxes", "expand_dims", "squeeze", "broadcast_to", "concatenate", "stack", "matmul",
    "dot", "outer", "tensordot", "einsum", "logsumexp", "softmax", "log_softmax",
    "linear", "softmax_cross_entropy",
    "zeros", "ones", "zeros_like", "ones_like", "arange",
]


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _unary_fn(prim_name, doc):
    def fn(x):
        return _unary(getattr(P, prim_name), _t(x))

    fn.__name__ = fn.__qualname__ = prim_name
    fn.__doc__ = doc + "\n\nParameters\n----------\nx : Tensor or array_like\n\nReturns\n-------\nTensor\n    Same shape as ``x``."
    return fn


exp = _unary_fn("exp", "Elementwise e**x.")
log = _unary_fn("log", "Elementwise natural logarithm.")
log1p = _unary_fn("log1p", "Elementwise log(1 + x), accurate for small x.")
expm1 = _unary_fn("expm1", "Elementwise exp(x) - 1, accurate for small x.")
sqrt = _unary_fn("sqrt", "Elementwise square root.")
square = _unary_fn("square", "Elementwise x**2.")
abs = _unary_fn("abs", "Elementwise |x|; the gradient at 0 is 0 (as in PyTorch).")  # noqa: A001
sign = _unary_fn("sign", "Elementwise sign; its gradient is zero.")
sin = _unary_fn("sin", "Elementwise sine.")
cos = _unary_fn("cos", "Elementwise cosine.")
tanh = _unary_fn("tanh", "Elementwise hyperbolic tangent.")
sigmoid = _unary_fn(
    "sigmoid", "Logistic sigmoid 1/(1+exp(-x)), computed without overflow for any |x|.")
relu = _unary_fn("relu", "max(x, 0); the gradient at exactly 0 is 0 (as in PyTorch).")
softplus = _unary_fn("softplus", "log(1 + exp(x)), computed without overflow.")


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, ``negative_slope * x`` otherwise (Maas et al. 2013)."""
    return apply(P.leaky_relu, _t(x), negative_slope=negative_slope)


def maximum(x, y):
    """Elementwise maximum; at ties the gradient is split evenly (as in PyTorch)."""
    return apply(P.maximum, x, y)


def minimum(x, y):
    """Elementwise minimum; at ties the gradient is split evenly (as in PyTorch)."""
    return apply(P.minimum, x, y)


def where(cond, x, y):
    """``x`` where ``cond`` is true, else ``y`` (``cond`` is not differentiated)."""
    if isinstance(cond, Tensor) and cond.requires_grad and _Mode.tracing is not None:
        c = cond  # a mask recorded while tracing: an operand, recomputed by each replay
    else:
        c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    return apply(P.where, c, x, y)


def clip(x, lo=None, hi=None):
    """Clip to [lo, hi]; the gradient is 1 inside (bounds included), 0 outside.
    ``lo``/``hi`` are constants (not differentiated): numbers or arrays/Tensors that
    broadcast to ``x``'s shape."""
    x = _t(x)
    if any(isinstance(b, Tensor) and b.requires_grad for b in (lo, hi)):
        _trace_break("clip() takes its bounds from traced values")
    lo = lo.data if isinstance(lo, Tensor) else lo
    hi = hi.data if isinstance(hi, Tensor) else hi
    for name, b in (("lo", lo), ("hi", hi)):
        if b is not None and np.broadcast_shapes(np.shape(b), x.shape) != x.shape:
            raise ValueError(f"clip: {name} of shape {np.shape(b)} does not broadcast to x's "
                             f"shape {x.shape}")
    return apply(P.clip, x, lo=lo, hi=hi)


def _axis(axis):
    if isinstance(axis, list):
        return tuple(axis)
    return axis


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (int, tuple or None for all)."""
    return apply(P.sum, _t(x), axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over ``axis``."""
    return apply(P.mean, _t(x), axis=_axis(axis), keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return apply(P.max, _t(x), axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    """Minimum over ``axis``; tied minima share the gradient equally."""
    return apply(P.min, _t(x), axis=_axis(axis), keepdims=keepdims)


def prod(x, axis=None, keepdims=False):
    """Product over ``axis`` (gradient exact also with zero entries)."""
    return apply(P.prod, _t(x), axis=_axis(axis), keepdims=keepdims)


def var(x, axis=None, ddof=0, keepdims=False):
    """Variance ``sum((x - mean)**2) / (n - ddof)`` over ``axis`` (composite)."""
    x = _t(x)
    axis = _axis(axis)
    n = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    d = x - mean(x, axis=axis, keepdims=True)
    return sum(d * d, axis=axis, keepdims=keepdims) / (n - ddof)


def std(x, axis=None, ddof=0, keepdims=False):
    """Standard deviation, ``sqrt(var)`` (composite). Where the variance is 0 the
    gradient is 0 (as in PyTorch), not NaN."""
    return _sqrt0(var(x, axis=axis, ddof=ddof, keepdims=keepdims))


def _sqrt0(v):
    """sqrt of a non-negative Tensor whose gradient is 0 where ``v == 0`` (instead of
    inf * 0 = NaN): the "double where" so that no branch sees sqrt'(0)."""
    _trace_break("std() branches on where the variance is zero")
    zero = v.data == 0  # not "<= 0": NaN (e.g. std with ddof >= n) must stay NaN
    if not zero.any():
        return sqrt(v)
    return where(zero, 0.0, sqrt(where(zero, 1.0, v)))


def reshape(x, shape):
    """Reshape to ``shape`` (one entry may be -1)."""
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    return apply(P.reshape, _t(x), shape=shape)


def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None)."""
    return apply(P.transpose, _t(x), axes=None if axes is None else tuple(axes))


def moveaxis(x, source, destination):
    """Move axes to new positions (composite of :func:`transpose`)."""
    x = _t(x)
    n = x.ndim
    src = [int(a) % n for a in np.atleast_1d(source)]
    dst = [int(a) % n for a in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise ValueError("moveaxis: `source` and `destination` need the same number of axes")
    order = [a for a in range(n) if a not in src]  # NumPy's algorithm
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def swapaxes(x, axis1, axis2):
    """Interchange two axes."""
    return _t(x).swapaxes(axis1, axis2)


def expand_dims(x, axis):
    """Insert length-1 axes at ``axis`` (composite of :func:`reshape`)."""
    x = _t(x)
    return reshape(x, np.expand_dims(np.empty(x.shape, dtype=bool), axis).shape)


def squeeze(x, axis=None):
    """Remove length-1 axes (composite of :func:`reshape`)."""
    x = _t(x)
    return reshape(x, np.squeeze(np.empty(x.shape, dtype=bool), axis=axis).shape)


def broadcast_to(x, shape):
    """Broadcast to ``shape``; the gradient is summed back to ``x``'s shape."""
    return apply(P.broadcast_to, _t(x), shape=tuple(np.atleast_1d(shape)) if np.ndim(shape) else (shape,))


def concatenate(seq, axis=0):
    """Join a sequence of tensors along an existing axis."""
    seq = list(seq)
    if axis is None:
        seq, axis = [reshape(s, (-1,)) for s in seq], 0
    return apply(P.concatenate, *seq, axis=axis)


def stack(seq, axis=0):
    """Join a sequence of same-shape tensors along a new axis."""
    return apply(P.stack, *list(seq), axis=axis)


def matmul(a, b):
    """Matrix product with NumPy's ``@`` semantics (1-D and batched operands)."""
    return apply(P.matmul, a, b)


def dot(a, b):
    """``np.dot`` semantics: matmul for 1-D/2-D operands, tensordot otherwise."""
    an, bn = np.ndim(a.data if isinstance(a, Tensor) else a), np.ndim(
        b.data if isinstance(b, Tensor) else b)
    if an == 0 or bn == 0:
        return _t(a) * b
    if an <= 2 and bn <= 2:
        return apply(P.matmul, a, b)
    return tensordot(a, b, axes=([an - 1], [bn - 2]))


def outer(a, b):
    """Outer product of the flattened inputs (composite)."""
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def tensordot(a, b, axes=2):
    """Sum products over the given axes (``np.tensordot`` semantics), via :func:`einsum`."""
    an = np.ndim(a.data if isinstance(a, Tensor) else a)
    bn = np.ndim(b.data if isinstance(b, Tensor) else b)
    if np.ndim(axes) == 0:
        axes = (list(range(an - axes, an)), list(range(axes)))
    ax_a, ax_b = ([axes[0]] if np.ndim(axes[0]) == 0 else list(axes[0]),
                  [axes[1]] if np.ndim(axes[1]) == 0 else list(axes[1]))
    ax_a = [x % an for x in ax_a]
    ax_b = [x % bn for x in ax_b]
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(an)]
    sb = [next(letters) for _ in range(bn)]
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in ax_a] + [
        c for k, c in enumerate(sb) if k not in ax_b]
    return einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b)


def _normalize_einsum(subscripts, shapes):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
    else:
        ins, out = subscripts, None
    ins = ins.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: {len(ins)} operand subscripts for {len(shapes)} operands")
    used = set("".join(ins) + (out or "")) - {"."}
    free = [c for c in string.ascii_letters if c not in used]
    ell = ""
    if any("..." in s for s in ins):
        nell = builtins_max(len(shp) - len(s.replace("...", "")) for s, shp in zip(ins, shapes)
                            if "..." in s)
        ell = "".join(free[:nell])
        ins = [s.replace("...", ell[nell - (len(shp) - len(s.replace("...", ""))):])
               for s, shp in zip(ins, shapes)]
        if out is not None:
            out = out.replace("...", ell)
    if out is None:
        # NumPy's implicit mode: broadcast (ellipsis) axes first, then the indices
        # that occur exactly once, in alphabetical order
        counts = {}
        for c in "".join(ins):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    return ",".join(ins) + "->" + out


builtins_max = __builtins__["max"] if isinstance(__builtins__, dict) else __builtins__.max


def einsum(subscripts, *operands):
    """Einstein summation (``np.einsum`` string form; ellipsis allowed).

    The gradient for each operand is another einsum (an operand with a
    repeated index, i.e. a diagonal, is not supported).
    """
    shapes = [np.shape(o.data if isinstance(o, Tensor) else o) for o in operands]
    spec = _normalize_einsum(subscripts, shapes)
    return apply(P.einsum, *operands, subscripts=spec)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over ``axis``, shifted by the max so it never overflows."""
    return apply(P.logsumexp, _t(x), axis=_axis(axis), keepdims=keepdims)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis`` (shifted by the max: no overflow)."""
    return apply(P.softmax, _t(x), axis=axis)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis`` (stable)."""
    return apply(P.log_softmax, _t(x), axis=axis)


def linear(x, weight, bias=None):
    """Affine map ``x @ weight.T + bias`` (PyTorch's ``F.linear``) as one node.

    Parameters
    ----------
    x : Tensor or array, shape (..., in_features)
    weight : Tensor or array, shape (out_features, in_features)
    bias : Tensor or array, shape (out_features,), optional

    Returns
    -------
    Tensor, shape (..., out_features)
    """
    return apply(P.linear, x, weight, bias)


def softmax_cross_entropy(logits, target, reduction="none"):
    """Cross-entropy ``-Σ_c t_c log softmax(z)_c`` of logits, as one node.

    Parameters
    ----------
    logits : Tensor or array, shape (n, C)
    target : array, shape (n,) of integer class indices, or (n, C) class probabilities
    reduction : {"none", "mean", "sum"}, default "none"
        Per-sample losses, or their mean or sum (fused: no extra node).

    Returns
    -------
    Tensor, shape (n,) for "none", else a scalar
        Computed with the log-sum-exp shift: finite for logits of any size.
        The gradient with respect to the logits is ``softmax(z) - t`` per sample
        (Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 4.109).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    t = target.data if isinstance(target, Tensor) and not target.requires_grad else target
    return apply(P.softmax_cross_entropy, logits, t, reduction=reduction)


def zeros(shape, dtype=np.float64, requires_grad=False):
    """A Tensor of zeros."""
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(shape, dtype=np.float64, requires_grad=False):
    """A Tensor of ones."""
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def zeros_like(x, requires_grad=False):
    """Zeros with the shape and dtype of ``x``."""
    xv = x.data if isinstance(x, Tensor) else np.asarray(x)
    return Tensor(np.zeros_like(xv), requires_grad=requires_grad)


def ones_like(x, requires_grad=False):
    """Ones with the shape and dtype of ``x``."""
    xv = x.data if isinstance(x, Tensor) else np.asarray(x)
    return Tensor(np.ones_like(xv), requires_grad=requires_grad)


def arange(*args, dtype=None):
    """``np.arange`` as a Tensor (no gradient)."""
    return Tensor(np.arange(*args, dtype=dtype))
