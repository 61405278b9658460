"""Function transforms: ``grad``, ``value_and_grad``, ``hvp`` (JAX-style).

Parameters may be one array, a tuple/list or a dict of arrays (nested allowed);
gradients come back as NumPy arrays in the same structure.
"""

from __future__ import annotations

import functools

import numpy as np

from gradwise import _tree
from gradwise.autodiff.engine import run_backward
from gradwise.autodiff.tensor import Tensor, _Mode

__all__ = ["grad", "value_and_grad", "hvp"]


def _to_leaves(x):
    leaves, _, treedef = _tree.flatten(x)
    tens = []
    for v in leaves:
        arr = v.data if isinstance(v, Tensor) else np.asarray(v)
        if arr.dtype.kind not in "f":
            arr = arr.astype(np.float64)
        tens.append(Tensor(arr, requires_grad=True))
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


def _vg(f, argnums, fname, args, kwargs):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    args = list(args)
    for n in nums:
        if not isinstance(n, int) or not -len(args) <= n < len(args):
            raise ValueError(
                f"{fname}: argnums={argnums!r}, but the function was called with {len(args)} "
                "positional argument(s); argnums selects positional arguments (0 = the first)"
            )
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
    it = iter(gs)
    results = []
    for tens, treedef in groups:
        leaves = []
        for t in tens:
            g = next(it)
            leaves.append(np.zeros_like(t.data) if g is None else np.asarray(
                g.data if isinstance(g, Tensor) else g, dtype=t.data.dtype))
        results.append(_tree.unflatten(treedef, leaves))
    return out.item(), (results[0] if single else tuple(results))


def value_and_grad(f, argnums=0):
    """Return a function computing ``(f(*args), df/dargs[argnums])``.

    Parameters
    ----------
    f : callable
        Returns a scalar Tensor computed from its arguments with Tensor/NumPy
        operations.
    argnums : int or tuple of int, default 0
        Which positional arguments to differentiate.

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

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return _vg(f, argnums, "value_and_grad", args, kwargs)

    return wrapper


def grad(f, argnums=0):
    """Return a function computing the gradient of scalar ``f`` (JAX's ``jax.grad``).

    Parameters
    ----------
    f : callable
        Returns a scalar Tensor computed from its arguments with Tensor/NumPy
        operations (``np.exp``, ``@``, ``np.sum`` ... on Tensors differentiate).
    argnums : int or tuple of int, default 0
        Which positional arguments to differentiate.

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

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return _vg(f, argnums, "grad", args, kwargs)[1]

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
