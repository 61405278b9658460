"""The Tensor, grad mode, and the recording of operations.

Reverse-mode automatic differentiation as in Griewank & Walther, *Evaluating
Derivatives* (2nd ed., SIAM 2008), ch. 3: the forward pass records, for every
result, the primitive that made it and its inputs (:func:`apply`);
``Tensor.backward`` hands the recorded graph to :mod:`.engine`, which visits it
in reverse topological order and applies each primitive's vector-Jacobian
product (VJP) from the one rule table in :mod:`.rules`.

Design follows HIPS autograd (one VJP table, broadcasting undone once, in
:func:`gradwise.autodiff.engine.unbroadcast`) and micrograd (an iterative,
readable backward pass). In-place safety follows PyTorch's version counters.
"""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace

import numpy as np

__all__ = [
    "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled", "Primitive", "GraphBreakError",
]

#: The primitives, filled in by :mod:`.rules` (``P.add``, ``P.mul``, ...).
P = SimpleNamespace()


class _ModeLocal(threading.local):
    """Grad mode, per thread (as in PyTorch): a ``no_grad`` block in one thread
    never switches recording off in another."""

    enabled = True
    #: the trace being recorded by :mod:`gradwise.autodiff.compile` (None: not tracing)
    tracing = None


_Mode = _ModeLocal()


def _trace_break(reason):
    """Tell an active trace (gradwise.compile) that the function did something a
    replay of the recorded operations would not repeat; it then runs eagerly."""
    tr = _Mode.tracing
    if tr is not None and tr.reason is None:
        tr.reason = reason


def is_grad_enabled() -> bool:
    """True when operations on Tensors that require a gradient are recorded."""
    return _Mode.enabled


class GraphBreakError(RuntimeError, TypeError):
    """A value was taken out of a Tensor that requires grad (``float(t)``,
    ``np.asarray(t)``, ``t.numpy()``), which would silently cut the graph.
    Both a RuntimeError (as in PyTorch) and a TypeError (the function cannot be traced)."""


class _GradModeCtx:
    _target = True

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        self._prev = []
        if fn is not None:  # used as a bare decorator: @no_grad
            if not callable(fn):
                raise TypeError(f"{cls.__name__}() takes no arguments (or decorates a function)")
            return self(fn)
        return self

    def __init__(self, fn=None):
        pass

    def __enter__(self):
        if not self._target and _Mode.tracing is not None:
            _trace_break("it computes values under no_grad(), which a replay would keep; "
                         "use .detach() outside the compiled function or pass them in")
        self._prev.append(_Mode.enabled)
        _Mode.enabled = self._target
        return self

    def __exit__(self, *exc):
        _Mode.enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeCtx):  # noqa: N801  (PyTorch's name)
    """Context manager / decorator that turns off graph recording.

    Inside it, results never require a gradient and in-place updates of
    parameters are allowed, as in PyTorch::

        with gradwise.no_grad():
            w -= lr * w.grad
    """

    _target = False


class enable_grad(_GradModeCtx):  # noqa: N801
    """Context manager / decorator that turns graph recording back on."""

    _target = True


class Primitive:
    """One differentiable operation: its forward function and its VJPs.

    Parameters
    ----------
    name : str
        Name used in graphs, traces and error messages.
    fwd : callable
        ``fwd(*arrays, **params) -> ndarray``.
    vjps : tuple of callables, or one callable when ``nary``
        ``vjp(g, ans, *args, **params)`` returns the gradient for one argument;
        ``None`` marks a non-differentiable argument. With ``nary=True`` a
        single ``vjp(i, g, ans, *args, **params)`` serves every argument.
    formulas : tuple of str, optional
        Local derivative of the result with respect to each argument, written
        with ``{0}``, ``{1}`` for the arguments and ``{ans}`` for the result;
        used by :func:`gradwise.explain`.
    """

    __slots__ = ("name", "fwd", "vjps", "nary", "formulas", "symbol", "view", "saves", "joint")

    def __init__(self, name, fwd, vjps, *, nary=False, formulas=None, symbol=None, view=False,
                 saves=False, joint=False):
        self.joint = joint  # one vjp(g, ans, *args, **params) -> gradients of all arguments
        self.view = view
        self.saves = saves
        self.name = name
        self.fwd = fwd
        self.vjps = vjps
        self.nary = nary
        self.formulas = formulas
        self.symbol = symbol

    def vjp(self, i):
        if self.joint:  # one call gives all gradients (a compiled function)
            fn = self.vjps
            return lambda g, ans, *args, **kw: fn(g, ans, *args, **kw)[i]
        if self.nary:
            fn = self.vjps
            return lambda g, ans, *args, **kw: fn(i, g, ans, *args, **kw)
        return self.vjps[i]

    def __call__(self, *args, **kw):
        return apply(self, *args, **kw)

    def __repr__(self):
        return f"<primitive {self.name}>"


_FREED = "freed"

#: creation counter of recorded results: a node made later never feeds one made
#: earlier, so sorting by it gives a topological order without a graph search.
_next_seq = itertools.count().__next__


def _wrap(data, requires_grad=False, ctx=None):
    """Make a Tensor around an existing array without copying or checks."""
    t = object.__new__(Tensor)
    if type(data) is not np.ndarray:
        data = np.asarray(data)
    t.data = data
    t.requires_grad = requires_grad
    t.grad = None
    t._ctx = ctx
    t._version = [0]
    t.name = None
    return t


_NOKW: dict = {}


def apply(prim, *args, **kw):
    """Run ``prim`` forward on Tensors/arrays and record it when needed."""
    vals = []
    versions = []
    plan = []  # (position, tensor) of the arguments that need a gradient
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            vals.append(a.data)
            versions.append(a._version[0])
            if a.requires_grad:
                plan.append((i, a))
        else:
            if type(a) not in _PLAIN and hasattr(a, "__array__"):
                a = np.asarray(a)  # pandas and other array-likes: plain values
                args = args[:i] + (a,) + args[i + 1:]
            vals.append(a)
            versions.append(None)
    out = prim.fwd(*vals, **kw)
    if prim.saves:  # the forward also returns values its VJP reuses (e.g. softmax)
        out, saved = out
        if plan:
            kw = {**kw, "saved": saved}
    view = prim.view and versions[0] is not None and np.may_share_memory(out, vals[0])
    if plan and _Mode.enabled:
        t = _wrap(out, True, (prim, args, vals, kw, versions, _next_seq(),
                              versions[0] if view else 0, plan))
    else:
        t = _wrap(out)
    if view:
        # a view shares the version counter of the array it looks into, so an
        # in-place write through either is seen by backward (as in PyTorch)
        t._version = args[0]._version
    return t


#: operand types used as they are; anything else (pandas Series, lists, NumPy
#: scalars) becomes an ndarray first, so that no foreign type reaches a VJP
_PLAIN = (float, int, np.ndarray)


def _binary(prim, a, b):
    """Fast path of :func:`apply` for the arithmetic operators."""
    av = a.data
    if type(b) not in _PLAIN and not isinstance(b, Tensor):
        b = np.asarray(b)
    if isinstance(b, Tensor):
        out = prim.fwd(av, b.data)
        if _Mode.enabled and (a.requires_grad or b.requires_grad):
            plan = ((0, a), (1, b)) if a.requires_grad and b.requires_grad else (
                ((0, a),) if a.requires_grad else ((1, b),))
            return _wrap(out, True, (prim, (a, b), (av, b.data), _NOKW, (a._version[0], b._version[0]),
                                     _next_seq(), 0, plan))
    else:
        out = prim.fwd(av, b)
        if _Mode.enabled and a.requires_grad:
            return _wrap(out, True, (prim, (a, b), (av, b), _NOKW, (a._version[0], None), _next_seq(), 0,
                                     ((0, a),)))
    return _wrap(out)


def _rbinary(prim, a, b):
    """Reflected operator: ``b (op) a`` where ``b`` is not a Tensor."""
    if type(b) not in _PLAIN:
        b = np.asarray(b)
    out = prim.fwd(b, a.data)
    if _Mode.enabled and a.requires_grad:
        return _wrap(out, True, (prim, (b, a), (b, a.data), _NOKW, (None, a._version[0]), _next_seq(), 0,
                                 ((1, a),)))
    return _wrap(out)


def _unary(prim, a):
    out = prim.fwd(a.data)
    if _Mode.enabled and a.requires_grad:
        return _wrap(out, True, (prim, (a,), (a.data,), _NOKW, (a._version[0],), _next_seq(), 0,
                                 ((0, a),)))
    return _wrap(out)


def _holds_graph(data):
    if isinstance(data, Tensor):
        return data.requires_grad
    if isinstance(data, (list, tuple)):
        return any(_holds_graph(d) for d in data)
    return False


def _as_float_array(data, dtype, requires_grad):
    if isinstance(data, (list, tuple)) and _holds_graph(data) and _Mode.enabled:
        raise TypeError(
            "gradwise.tensor([...]) of Tensors that require grad would drop their graph; "
            "use gradwise.stack([...]) to keep it (or .detach() the elements)"
        )
    arr = np.array(data, dtype=dtype, copy=True)
    if arr.dtype == object:
        raise TypeError(
            "gradwise.tensor: could not make a numeric array from this data "
            "(a list of Tensors? use gradwise.stack([...]) to keep the graph)"
        )
    if dtype is None and requires_grad and arr.dtype.kind in "biu":
        # integers cannot carry gradients or small updates: never truncate silently
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"gradwise.tensor: data of dtype {arr.dtype} is not numeric; pass numbers "
            "(e.g. convert strings with float())"
        )
    if requires_grad and arr.dtype.kind != "f":
        raise TypeError(
            f"only floating-point tensors can require gradients, got dtype {arr.dtype}; "
            "pass dtype=np.float64"
        )
    return arr


class Tensor:
    """A NumPy array that records the operations applied to it.

    Parameters
    ----------
    data : array_like
        Copied into a new array. Python floats and float64 data give float64,
        float32 stays float32. Integer or bool data that requires a gradient is
        converted to float64 (never truncated).
    requires_grad : bool, default False
        Record operations so that :meth:`backward` can compute ``.grad``.
    dtype : numpy dtype, optional
        Force a dtype.
    name : str, optional
        Label shown by :func:`gradwise.explain` and :func:`gradwise.to_dot`.

    Attributes
    ----------
    data : numpy.ndarray
        The values. Writing into it is not recorded (as ``torch.Tensor.data``).
    grad : Tensor or None
        Accumulated gradient of a leaf after :meth:`backward`; a Tensor that
        does not require a gradient unless ``create_graph=True`` was used.
    """

    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_version", "name", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            if _Mode.tracing is not None and data.requires_grad:
                _trace_break("it copies a traced tensor into a new one (Tensor(t)), out of the graph")
            data = data.data
        self.data = _as_float_array(data, dtype, requires_grad)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._version = [0]
        self.name = name

    # ------------------------------------------------------------------ basics
    shape = property(lambda self: self.data.shape, doc="Shape of the data (tuple).")
    dtype = property(lambda self: self.data.dtype, doc="NumPy dtype of the data.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user (not the result of a recorded op)."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """Name of the primitive that produced this tensor, or None for a leaf."""
        ctx = self._ctx
        if ctx is None:
            return None
        return "<freed>" if ctx is _FREED else ctx[0].name

    @property
    def T(self):  # noqa: N802
        """Transpose (reverses all axes, like ``ndarray.T``)."""
        return P.transpose(self, axes=None)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(len(self.data)):
            yield self[i]

    def __hash__(self):
        return id(self)

    def _check_no_graph(self, what):
        if self.requires_grad and _Mode.enabled:
            raise GraphBreakError(
                f"{what} on a Tensor that requires grad would silently drop the graph; "
                "use .detach() first (e.g. t.detach().numpy()), or .item() for a scalar"
            )

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (not a copy). Raises on a tensor that requires grad."""
        self._check_no_graph(".numpy()")
        return self.data

    def __array__(self, dtype=None, copy=None):
        self._check_no_graph("np.asarray()/np.array() (also called by ndarray methods such as "
                             "X.dot(t): write X @ t or np.dot(X, t))")
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __float__(self):
        self._check_no_graph("float()")
        return float(self.data)

    def _taken(self, what):
        if _Mode.tracing is not None and self.requires_grad:
            _trace_break(f"it takes a value out of a traced tensor ({what}): a replay would "
                         "keep the first call's value")

    def __int__(self):
        self._taken("int()")
        return int(self.data)

    def __bool__(self):
        self._taken("a truth test, e.g. `if t:`")
        return bool(self.data)

    def __index__(self):
        self._taken("use as an index")
        return self.data.__index__()

    def __format__(self, spec):
        self._taken("formatting")
        if spec and self.data.size == 1:
            return format(self.data.item(), spec)  # f"{loss:.4f}" as in PyTorch
        return format(str(self), spec)

    def zero_(self):
        """Fill with zeros in place and return ``self`` (e.g. ``p.grad.zero_()``)."""
        self[...] = 0  # an assignment, not a product: NaN entries become 0 too
        return self

    def item(self):
        """The value of a one-element tensor as a Python number."""
        self._taken(".item()")
        return self.data.item()

    def tolist(self):
        self._taken(".tolist()")
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the data (and its version counter), cut from the graph."""
        if _Mode.tracing is not None and self.requires_grad:
            _trace_break("it calls detach(): values taken out of the graph would be frozen")
        t = _wrap(self.data)
        t._version = self._version
        return t

    def __reduce__(self):
        # pickled (and deep-copied) as a leaf, like PyTorch: the graph is not data
        grad = None if self.grad is None else self.grad.data
        return (_rebuild, (type(self), self.data, self.requires_grad, self.name, grad))

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf in place and return it."""
        if self._ctx is not None and not flag:
            raise RuntimeError("cannot turn off requires_grad on a non-leaf tensor; use .detach()")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Set ``.grad`` to None."""
        self.grad = None

    def astype(self, dtype) -> Tensor:
        """Differentiable cast to another float dtype."""
        return P.cast(self, dtype=np.dtype(dtype))

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = []
        if self.data.dtype != np.float64:
            extra.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extra.append(f"grad_fn={self.grad_fn}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name:
            extra.append(f"name={self.name!r}")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # ------------------------------------------------------------- operators
    def __add__(self, o):
        return _binary(P.add, self, o)

    def __radd__(self, o):
        return _rbinary(P.add, self, o)

    def __sub__(self, o):
        return _binary(P.sub, self, o)

    def __rsub__(self, o):
        return _rbinary(P.sub, self, o)

    def __mul__(self, o):
        return _binary(P.mul, self, o)

    def __rmul__(self, o):
        return _rbinary(P.mul, self, o)

    def __truediv__(self, o):
        return _binary(P.div, self, o)

    def __rtruediv__(self, o):
        return _rbinary(P.div, self, o)

    def __pow__(self, o):
        return _binary(P.pow, self, o)

    def __rpow__(self, o):
        return _rbinary(P.pow, self, o)

    def __matmul__(self, o):
        return _binary(P.matmul, self, o)

    def __rmatmul__(self, o):
        return _rbinary(P.matmul, self, o)

    def __neg__(self):
        return _unary(P.neg, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(P.abs, self)

    # comparisons are not differentiable: they return tensors of bools
    def _cmp(self, o, fn):
        if _Mode.tracing is not None and (self.requires_grad or getattr(o, "requires_grad", False)):
            # recorded while tracing (no VJP), so that replays recompute the mask; a
            # Python branch on it (`if t > 0:`) breaks the trace at bool()
            return _Mode.tracing.value_only(apply(getattr(P, fn.__name__), self, o))
        return _wrap(fn(self.data, o.data if isinstance(o, Tensor) else o))

    def __lt__(self, o):
        return self._cmp(o, np.less)

    def __le__(self, o):
        return self._cmp(o, np.less_equal)

    def __gt__(self, o):
        return self._cmp(o, np.greater)

    def __ge__(self, o):
        return self._cmp(o, np.greater_equal)

    def __eq__(self, o):
        return self._cmp(o, np.equal)

    def __ne__(self, o):
        return self._cmp(o, np.not_equal)

    # ------------------------------------------------------------- indexing
    def __getitem__(self, idx):
        return P.getitem(self, idx=_plain_index(idx))

    def __setitem__(self, idx, value):
        idx = _plain_index(idx)
        vreq = isinstance(value, Tensor) and value.requires_grad
        if _Mode.enabled and (self.requires_grad or vreq):
            self._refuse_leaf_inplace(f"t[{_fmt_index(idx)}] = ...")
            self._rebind(P.setitem(self._shallow(), value, idx=idx))
            return
        if _Mode.tracing is not None:
            _trace_break("it writes into a tensor in place without recording (t[i] = ...)")
        v = value.data if isinstance(value, Tensor) else value
        self.data[idx] = v
        self._version[0] += 1

    # --------------------------------------------------------------- in place
    def _refuse_leaf_inplace(self, what):
        if self.requires_grad and self._ctx is None:
            raise RuntimeError(
                f"in-place operation `{what}` on a leaf Tensor that requires grad while "
                "gradients are recorded; for a manual update write "
                "`with gradwise.no_grad(): p -= lr * p.grad`, otherwise use an "
                "out-of-place expression (`p = p - ...`)"
            )

    def _shallow(self):
        t = _wrap(self.data, self.requires_grad, self._ctx)
        t._version = [self._version[0]]
        return t

    def _rebind(self, new):
        # the memory is not written (the result is a new array): views of the old
        # array keep their counter; users of this object see a new version
        version = self._version[0] + 1
        self.data = new.data
        self._ctx = None if new._ctx is None else new._ctx[:6] + (version,) + new._ctx[7:]
        self.requires_grad = new.requires_grad
        self._version = [version]

    def _inplace(self, o, prim, sym):
        oreq = isinstance(o, Tensor) and o.requires_grad
        if _Mode.enabled and (self.requires_grad or oreq):
            self._refuse_leaf_inplace(f"t {sym}= ...")
            new = _binary(prim, self._shallow(), o)
            if new.shape != self.shape:
                raise ValueError(
                    f"in-place `{sym}=` would change the shape of the tensor from "
                    f"{self.shape} to {new.shape} (broadcasting)"
                )
            self._rebind(new)
            return self
        if _Mode.tracing is not None:
            _trace_break(f"it updates a tensor in place without recording (t {sym}= ...)")
        ov = o.data if isinstance(o, Tensor) else o
        try:
            prim.fwd(self.data, ov, out=self.data, casting="same_kind")
        except ValueError as e:
            raise ValueError(
                f"in-place `{sym}=` cannot write a result of another shape into a tensor of "
                f"shape {self.shape} (other operand shape {np.shape(ov)}): {e}"
            ) from None
        except TypeError as e:
            raise TypeError(
                f"in-place `{sym}=` would change the dtype of a {self.dtype} tensor: {e}"
            ) from None
        self._version[0] += 1
        return self

    def __iadd__(self, o):
        return self._inplace(o, P.add, "+")

    def __isub__(self, o):
        return self._inplace(o, P.sub, "-")

    def __imul__(self, o):
        return self._inplace(o, P.mul, "*")

    def __itruediv__(self, o):
        return self._inplace(o, P.div, "/")

    # ----------------------------------------------------------------- backward
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires it.

        Parameters
        ----------
        grad : array_like or Tensor, optional
            Upstream gradient, same shape as ``self``; required unless ``self``
            has one element (then 1).
        retain_graph : bool, default False
            Keep the graph so that ``backward`` can run through it again.
            Without it the graph is freed and a second backward raises.
        create_graph : bool, default False
            Record the backward pass itself, so that ``.grad`` can be
            differentiated again (second derivatives, Hessian-vector products).
            Implies ``retain_graph=True``.

        Raises
        ------
        RuntimeError
            If ``self`` does not require a gradient, the graph was freed, or a
            tensor needed by the backward pass was modified in place.
        """
        from gradwise.autodiff.engine import run_backward

        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: create the inputs "
                "with requires_grad=True (and not inside gradwise.no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element output, got shape "
                    f"{self.shape}; pass grad= (same shape) or reduce it first (e.g. .sum())"
                )
            d = self.data  # d self / d self = 1 (a 0-d array without np.ones_like's cost)
            g = np.array(1, dtype=d.dtype) if d.ndim == 0 else np.ones_like(d)
        else:
            g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(f"backward(grad=...) has shape {g.shape}, expected {self.shape}")
        run_backward([self], [g], retain_graph=retain_graph or create_graph,
                     create_graph=create_graph)

    # ------------------------------------------------------ array-like methods
    def sum(self, axis=None, keepdims=False):
        return P.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return P.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return P.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return P.min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return P.prod(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        from gradwise.autodiff.functions import var

        return var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        from gradwise.autodiff.functions import std

        return std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return P.reshape(self, shape=shape)

    def flatten(self):
        return P.reshape(self, shape=(-1,))

    ravel = flatten

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = () if axes[0] is None else tuple(axes[0])
        return P.transpose(self, axes=axes or None)

    def swapaxes(self, a, b):
        axes = list(range(self.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return P.transpose(self, axes=tuple(axes))

    def dot(self, o):
        from gradwise.autodiff.functions import dot

        return dot(self, o)

    def matmul(self, o):
        return _binary(P.matmul, self, o)

    def exp(self):
        return _unary(P.exp, self)

    def log(self):
        return _unary(P.log, self)

    def sqrt(self):
        return _unary(P.sqrt, self)

    def tanh(self):
        return _unary(P.tanh, self)

    def sigmoid(self):
        return _unary(P.sigmoid, self)

    def relu(self):
        return _unary(P.relu, self)

    def abs(self):
        return _unary(P.abs, self)

    def clip(self, lo=None, hi=None):
        return P.clip(self, lo=lo, hi=hi)

    clamp = clip

    def softmax(self, axis=-1):
        return P.softmax(self, axis=axis)

    def log_softmax(self, axis=-1):
        return P.log_softmax(self, axis=axis)

    def logsumexp(self, axis=None, keepdims=False):
        return P.logsumexp(self, axis=axis, keepdims=keepdims)

    # NumPy protocols live in numpy_api.py (attached there)


def _plain_index(idx):
    """Replace Tensors inside an index by their arrays (indices are never differentiated)."""
    if _Mode.tracing is not None:
        for i in idx if isinstance(idx, tuple) else (idx,):
            _computed_index(i)
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in idx)
    if isinstance(idx, list):
        return np.asarray(idx)
    return idx


def _computed_index(i):
    # while tracing, an index computed from the data (a mask z > 0, 2 - y) would be
    # frozen; an input used as an index as it is (x[y]) is read at every replay
    if isinstance(i, Tensor) and i._ctx is not None:
        _trace_break("it indexes with a mask or indices computed from the data "
                     "(e.g. z[z > 0]): write np.where(z > 0, z, 0) or z * (z > 0)")


def _fmt_index(idx):
    return repr(idx)


def _rebuild(cls, data, requires_grad, name, grad):
    t = object.__new__(cls)
    t.data = data
    t.requires_grad = requires_grad
    t.grad = None if grad is None else _wrap(grad)
    t._ctx = None
    t._version = [0]
    t.name = name
    return t


def tensor(data, requires_grad=False, dtype=None, name=None) -> Tensor:
    """Create a :class:`Tensor` (PyTorch's ``torch.tensor``).

    Parameters
    ----------
    data : array_like
        Numbers, nested lists or an array; copied.
    requires_grad : bool, default False
        Record operations for :meth:`Tensor.backward`.
    dtype : numpy dtype, optional
        Default: float64 for Python floats, the array's own dtype otherwise;
        integer or bool data that requires a gradient becomes float64.
    name : str, optional
        Label used by :func:`gradwise.explain` and :func:`gradwise.to_dot`.

    Returns
    -------
    Tensor

    Raises
    ------
    TypeError
        Non-numeric data, a non-float dtype with ``requires_grad``, or a list
        of Tensors that require gradients (use :func:`gradwise.stack`).
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)
