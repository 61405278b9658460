"""Function transforms: ``grad``, ``value_and_grad``, ``hvp`` (JAX-style).

Parameters may be one array, a tuple/list or a dict of arrays (nested allowed);
gradients come back as NumPy arrays in the same structure.
"""

from __future__ import annotations

import functools

import numpy as np

from gradwise import _tree
from gradwise.autodiff.compile import Compiled, _signature, _trace, _TraceCache
from gradwise.autodiff.engine import run_backward
from gradwise.autodiff.tensor import Tensor, _Mode

__all__ = ["grad", "value_and_grad", "hvp"]


def _to_leaves(x):
    leaves, _, treedef = _tree.flatten(x)
    tens = []
    for v in leaves:
        tens.append(Tensor(_float_leaf(v), requires_grad=True))
    return tens, treedef


def _scalar_output(out, fname):
    if not isinstance(out, Tensor):
        raise TypeError(
            f"{fname}: the function returned {type(out).__name__}, not a Tensor computed from "
            "its inputs; it must use Tensor/NumPy operations without float() or .numpy() "
            "so that its gradient can be traced"
        )
    if out.data.size != 1:
        raise ValueError(f"{fname}: the function must return a scalar, got shape {out.shape}")
    return out


def _argnums(argnums, nargs, fname):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(
                f"{fname}: argnums={argnums!r}, but the function was called with {nargs} "
                "positional argument(s); argnums selects positional arguments (0 = the first)"
            )
    return tuple(n % nargs for n in nums), single


def _float_leaf(v):
    arr = v.data if isinstance(v, Tensor) else np.asarray(v)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def _vg(f, argnums, fname, args, kwargs):
    nums, single = _argnums(argnums, len(args), fname)
    args = list(args)
    groups = []
    for n in nums:
        tens, treedef = _to_leaves(args[n])
        groups.append((tens, treedef))
        args[n] = _tree.unflatten(treedef, tens)
    prev = _Mode.enabled
    _Mode.enabled = True
    try:
        out = _scalar_output(f(*args, **kwargs), fname)
        flat = [t for tens, _ in groups for t in tens]
        gs = run_backward([out], [np.ones_like(out.data)], inputs=flat) if out.requires_grad \
            else [None] * len(flat)
    finally:
        _Mode.enabled = prev
    return out.item(), _grad_result([(tuple(t.data for t in tens), treedef)
                                      for tens, treedef in groups], gs, single)


def _grad_result(groups, gs, single):
    """Gradients in the structure of the arguments (zeros where none reached them)."""
    it = iter(gs)
    results = []
    for arrays, treedef in groups:
        leaves = []
        for a in arrays:
            g = next(it)
            leaves.append(np.zeros_like(a) if g is None else np.asarray(
                g.data if isinstance(g, Tensor) else g, dtype=a.dtype))
        results.append(_tree.unflatten(treedef, leaves))
    return results[0] if single else tuple(results)


def _leaf_sig(x, leaves):
    """Append the float arrays of a parameter structure to ``leaves``; return a hashable
    description of the structure with each leaf's shape and dtype (one pass)."""
    t = type(x)
    if isinstance(x, dict):  # rebuilt as a plain dict, as _tree.unflatten does
        return (dict, tuple([(k, _leaf_sig(v, leaves)) for k, v in x.items()]))
    if isinstance(x, (list, tuple)):  # (subclasses are rebuilt with their type, as eagerly)
        sig = []
        for v in x:  # a flat list of float arrays without a call per entry
            if type(v) is np.ndarray and v.dtype.kind == "f":
                leaves.append(v)
                sig.append((v.shape, v.dtype))
            else:
                sig.append(_leaf_sig(v, leaves))
        return (t, tuple(sig))
    if t is not np.ndarray or x.dtype.kind != "f":
        x = _float_leaf(x)
    leaves.append(x)
    return (x.shape, x.dtype)


def _leaf_build(sig, it, arrays):
    """The structure described by ``sig`` with the next gradients from ``it``."""
    kind = sig[0]
    if kind is dict:
        return {k: _leaf_build(s, it, arrays) for k, s in sig[1]}
    if isinstance(kind, type) and issubclass(kind, (list, tuple)):
        return kind([_leaf_build(s, it, arrays) if type(s[0]) is not tuple else
                     _leaf_grad(next(it), next(arrays)) for s in sig[1]])
    return _leaf_grad(next(it), next(arrays))


def _leaf_grad(g, a):
    if g is None:
        return np.zeros_like(a)
    return g if type(g) is np.ndarray and g.dtype == a.dtype else np.asarray(g, dtype=a.dtype)


def _fast_result(sigs, single, gs, inputs, shares):
    """For one array or a flat list/tuple of arrays whose gradients all come out of the
    program as arrays of the right dtype (fixed by the trace), a function building
    the result straight from the program's tuple; else False (the general path)."""
    if not single or shares or not isinstance(sigs[0][0], tuple) and sigs[0][0] not in (list, tuple):
        return False  # several arguments, shared memory, a dict
    sig = sigs[0]
    n = len(sig[1]) if sig[0] in (list, tuple) else 1
    if sig[0] in (list, tuple) and any(type(s[0]) is not tuple for s in sig[1]):
        return False  # nested
    if not all(type(g) is np.ndarray and g.dtype == a.dtype for g, a in zip(gs[:n], inputs)):
        return False
    if sig[0] in (list, tuple):
        kind = sig[0]
        return lambda gs: kind(gs[:n])
    return lambda gs: gs[0]


class _CompiledVG:
    """``value_and_grad(f, compile=True)``: one trace per argument signature
    (:mod:`gradwise.autodiff.compile`), replayed on arrays without building Tensors."""

    def __init__(self, f, argnums, fname):
        self.f, self.argnums, self.fname = f, argnums, fname
        self.cache = _TraceCache(f)
        self._specs = {}

    def __reduce__(self):  # copies and pickles trace again
        return (_CompiledVG, (self.f, self.argnums, self.fname))

    def __call__(self, *args, **kwargs):
        spec = self._specs.get(len(args))
        if spec is None:  # which positions are differentiated, for this many arguments
            nums, single = _argnums(self.argnums, len(args), self.fname)
            spec = self._specs[len(args)] = (nums, single, [i for i in range(len(args))
                                                            if i not in nums])
        nums, single, others = spec
        inputs = []
        sigs = tuple([_leaf_sig(args[n], inputs) for n in nums])
        n_diff = len(inputs)
        rest = []
        for i in others:  # arrays and Tensors are inputs, other values constants
            a = args[i]
            if type(a) is np.ndarray:
                inputs.append(a)
                rest.append((a.shape, a.dtype))
            elif isinstance(a, Tensor):
                inputs.append(a.data)
                rest.append((a.data.shape, a.data.dtype, Tensor))
            else:
                rest.append(_signature(a))
        key = (sigs, tuple(rest))
        if kwargs:
            for k, v in kwargs.items():
                if isinstance(v, (np.ndarray, Tensor)):
                    inputs.append(v.data if isinstance(v, Tensor) else v)
                    key += ((k, "input", inputs[-1].shape, inputs[-1].dtype),)
                else:
                    key += ((k, _signature(v)),)
        try:
            prog = self.cache.traces.get(key, False)
            if prog is False or (prog is not None and not (prog.confirmed and prog.valid())):
                prog = self.cache.lookup(key, lambda: self._trace(args, kwargs, nums, inputs,
                                                                  n_diff))
        except TypeError:  # an unhashable constant: nothing to key a trace on
            self.cache.warn("an argument cannot key a trace (a list or another unhashable "
                            "object); pass arrays or tuples")
            prog = None
        if prog is None:
            return _vg(self.f, self.argnums, self.fname, args, kwargs)
        if prog.captured:
            inputs += [t.data for t in prog.captured]
        out, gs = prog.forward_backward(prog.seed, *inputs)
        fast = prog.result
        if fast:  # a flat list/tuple/array whose gradients need no fixing
            return out.item(), fast(gs)
        if prog.shares:  # each returned gradient owns its memory
            gs = [None if g is None else np.array(g) for g in gs]
        it, arrays = iter(gs), iter(inputs)
        res = [_leaf_build(s, it, arrays) for s in sigs]
        if prog.result is None:
            prog.result = _fast_result(sigs, single, gs, inputs, prog.shares)
        return out.item(), (res[0] if single else tuple(res))

    def _trace(self, args, kwargs, nums, inputs, n_diff):
        def call(traced):
            full, it, kw = list(args), iter(traced), dict(kwargs)
            for n in nums:
                leaves, _, treedef = _tree.flatten(args[n])
                full[n] = _tree.unflatten(treedef, [next(it) for _ in leaves])
            for i, a in enumerate(args):
                if i not in nums and isinstance(a, (np.ndarray, Tensor)):
                    full[i] = next(it)
            for k, v in kwargs.items():
                if isinstance(v, (np.ndarray, Tensor)):
                    kw[k] = next(it)
            return _scalar_output(self.f(*full, **kw), self.fname)

        def eager():
            full, it = list(args), iter(inputs)
            wrt = []
            for n in nums:
                leaves, _, treedef = _tree.flatten(args[n])
                tens = [Tensor(next(it), requires_grad=True) for _ in leaves]
                wrt += tens
                full[n] = _tree.unflatten(treedef, tens)
            return self.f(*full, **kwargs), wrt

        needs = [True] * n_diff + [False] * (len(inputs) - n_diff)
        return _trace(call, inputs, needs, getattr(self.f, "__qualname__", "f"), eager, self.f,
                      captured_grads=False, extra=(*args, *kwargs.values()))


def value_and_grad(f, argnums=0, compile=False):  # noqa: A002
    """Return a function computing ``(f(*args), df/dargs[argnums])``.

    Parameters
    ----------
    f : callable
        Returns a scalar Tensor computed from its arguments with Tensor/NumPy
        operations.
    argnums : int or tuple of int, default 0
        Which positional arguments to differentiate.
    compile : bool, default False
        Trace ``f`` once per argument signature and replay the recorded NumPy
        calls (:func:`gradwise.compile`): same numbers, a fraction of the Python
        overhead on small arrays. Arrays and Tensors that are not differentiated
        (positional or keyword) are inputs too; other arguments are constants of a
        trace. A function that cannot be traced runs eagerly with a
        :class:`gradwise.GraphBreakWarning`.

    Returns
    -------
    callable
        ``(*args, **kwargs) -> (value: float, gradient)`` where the gradient has
        the structure of the argument (array, tuple/list or dict of arrays) and
        float64 entries (float32 arguments give float32 gradients).

    Raises
    ------
    TypeError
        If ``f`` does not return a Tensor (e.g. it called ``float()``).
    ValueError
        If ``f`` returns a non-scalar.
    """

    if compile:
        return functools.wraps(f)(_CompiledVG(f, argnums, "value_and_grad"))

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return _vg(f, argnums, "value_and_grad", args, kwargs)

    return wrapper


def grad(f, argnums=0, compile=False):  # noqa: A002
    """Return a function computing the gradient of scalar ``f`` (JAX's ``jax.grad``).

    Parameters
    ----------
    f : callable
        Returns a scalar Tensor computed from its arguments with Tensor/NumPy
        operations (``np.exp``, ``@``, ``np.sum`` ... on Tensors differentiate).
    argnums : int or tuple of int, default 0
        Which positional arguments to differentiate.
    compile : bool, default False
        Trace once, replay the NumPy calls (see :func:`value_and_grad`).

    Returns
    -------
    callable
        ``(*args, **kwargs) -> gradient``: NumPy arrays in the structure of the
        differentiated argument (array, tuple/list or dict of arrays; a tuple of
        such structures when ``argnums`` is a tuple). float32 arguments give
        float32 gradients.

    Raises
    ------
    TypeError
        ``f`` does not return a Tensor (it called ``float()``, ``.item()`` or
        converted to NumPy), or ``argnums`` is out of range.
    ValueError
        ``f`` returns a non-scalar.

    Examples
    --------
    >>> import numpy as np, gradwise as gw
    >>> gw.grad(lambda w: (w ** 2).sum())(np.array([1.0, 2.0]))
    array([2., 4.])
    """

    vg = _CompiledVG(f, argnums, "grad") if compile else None

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return vg(*args, **kwargs)[1] if compile else _vg(f, argnums, "grad", args, kwargs)[1]

    return wrapper


def hvp(f, x, v):
    """Hessian-vector product ``H(x) v`` of scalar ``f`` at ``x``.

    Computed by reverse-over-reverse differentiation: the gradient is formed
    with ``create_graph=True`` and ``<grad, v>`` is differentiated again
    (Pearlmutter, "Fast exact multiplication by the Hessian", Neural
    Computation 6(1), 1994). Costs about two gradient evaluations.

    Parameters
    ----------
    f : callable
        ``f(x) -> scalar Tensor``.
    x, v : array, tuple/list or dict of arrays
        Point and direction, same structure and shapes.

    Returns
    -------
    Same structure as ``x``: NumPy arrays.
    """
    if isinstance(f, Compiled):  # second order needs the eager function (it is the same)
        f = f.fn
    tens, treedef = _to_leaves(x)
    vleaves, vinfo, _ = _tree.flatten(v)
    xpaths = [li.path for li in _tree.flatten(x)[1]]
    if [li.path for li in vinfo] != xpaths:
        raise ValueError(
            f"hvp: v must have the same structure as x (x has entries {xpaths}, v has "
            f"{[li.path for li in vinfo]})"
        )
    vs = []
    for t, vv in zip(tens, vleaves):
        vv = np.asarray(vv.data if isinstance(vv, Tensor) else vv, dtype=t.data.dtype)
        if vv.shape != t.shape:
            raise ValueError(f"hvp: direction of shape {vv.shape} for a parameter of shape {t.shape}")
        vs.append(vv)
    prev = _Mode.enabled
    _Mode.enabled = True
    try:
        out = _scalar_output(f(_tree.unflatten(treedef, tens)), "hvp")
        gs = run_backward([out], [np.ones_like(out.data)], retain_graph=True,
                          create_graph=True, inputs=tens)
        dot = None
        for g, vv in zip(gs, vs):
            if g is None or not isinstance(g, Tensor):
                continue
            term = (g * vv).sum()
            dot = term if dot is None else dot + term
        if dot is None or not dot.requires_grad:
            hv = [np.zeros_like(t.data) for t in tens]
        else:
            hs = run_backward([dot], [np.ones_like(dot.data)], inputs=tens)
            hv = [np.zeros_like(t.data) if h is None else np.asarray(
                h.data if isinstance(h, Tensor) else h) for t, h in zip(tens, hs)]
    finally:
        _Mode.enabled = prev
    return _tree.unflatten(treedef, hv)
