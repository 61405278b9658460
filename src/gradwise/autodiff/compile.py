"""Trace a function once, replay it as straight-line NumPy code (``gradwise.compile``).

On small arrays an eager autodiff step costs more in Python bookkeeping (a Tensor
per result, a graph walk per backward) than in arithmetic. A training step runs
the same operations every time, so it can be recorded once and turned into two
plain Python functions — the forward pass and its backward pass — that call the
primitives' forward functions and the VJPs of the one rule table directly on
arrays, in the order the eager engine would (so results are bit-identical).
This is the tracing approach of JAX's ``jit`` and of PyTorch's ``torch.fx`` /
AOTAutograd (Paszke et al., "PyTorch 2", ASPLOS 2024; Frostig, Johnson & Leary,
"Compiling machine learning programs via high-level tracing", SysML 2018),
without an optimising back end: NumPy does the arithmetic.

Rules (the same as ``jax.jit``):

- Array arguments may change value between calls; a new shape or dtype traces
  again. Python numbers and other non-array arguments are constants of a trace.
- Arrays the function reads from elsewhere (globals, closures) are used as they
  are at each call if they are Tensors; plain arrays are read by reference.
- What a replay cannot repeat makes the function run eagerly instead, with a
  :class:`GraphBreakWarning` naming the reason: a Python branch on data
  (``if t > 0:``), ``detach()``, ``.item()``/``float()``, ``no_grad()`` blocks,
  in-place writes outside the graph, module hooks, NumPy functions that only look
  at values (argmax), a result that is a view of an input.
  Masks (comparisons, logical operations, rounding, ``np.where``) are recorded
  as value-only primitives and recomputed by each replay. Random numbers drawn
  inside the function from a shared generator differ between the trace and the
  eager check, so it runs eagerly (and the extra draws shift the stream): pass
  them in as arguments.

Three checks keep a replay from silently differing from eager execution:

1. every trace is compared once with the function run eagerly, as the user would
   run it (values and gradients bit for bit);
2. the second call of a signature traces again on its new inputs, and the two
   programs must be the same (same code, equal constants, same captured tensors) —
   this catches values read behind the engine's back (``t.data``) or frozen in
   the first trace;
3. closure variables and globals the function reads that hold Tensors, arrays or
   numbers are guarded: rebinding one (``w = w - lr * g``) traces again.

A failed check makes that signature run eagerly with a :class:`GraphBreakWarning`.
What no check can see: a value read through ``.data`` that is equal in the first
two calls and differs later; a value computed with plain NumPy, outside the traced
operations, from an array the function reads from elsewhere (``x * (self.a * 2)``
with ``self.a`` changed in place: ``self.a * 2`` is a constant of the trace, as in
``jax.jit``; ``x * self.a * 2`` is not); attributes of plain objects other than modules
(assigning a module's parameter, ``model.weight = ...``, traces again) and items
of containers the function reaches other than through its own globals and
closure (those lists and dicts are guarded item by item).

``fn`` should be free of side effects, as for ``jax.jit``: while a signature is
traced and checked (its first two calls) the function runs up to three times, and
after a graph break once more eagerly. Module state changed while it runs
(``self.calls += 1``) is detected and makes it run eagerly.
"""

from __future__ import annotations

import builtins
import functools
import math
import re
import types
import warnings

import numpy as np

from gradwise.autodiff.engine import run_backward, unbroadcast
from gradwise.autodiff.rules import pass_through
from gradwise.autodiff.tensor import (
    _FREED,
    GraphBreakError,
    Primitive,
    Tensor,
    _Mode,
    _next_seq,
    _wrap,
    apply,
)

__all__ = ["compile", "Compiled", "GraphBreakWarning"]

#: traces kept per compiled function before it stops tracing new signatures
MAX_TRACES = 16
#: traces of one signature (a retrace follows a changed global or module) before it
#: runs eagerly for good
MAX_RETRACES = 8
#: confirmed programs kept per signature, one of which is picked by its guards
MAX_VARIANTS = 4


class GraphBreakWarning(UserWarning):
    """A compiled function runs eagerly: its trace could not be replayed safely."""


class _Break(Exception):
    """Raised inside tracing: the function cannot be compiled (message: why).
    ``transient``: the function itself raised; the eager call will show the error and
    the next call may trace."""

    def __init__(self, reason, transient=False):
        super().__init__(reason)
        self.transient = transient


class _TraceState:
    __slots__ = ("reason", "values")

    def __init__(self):
        self.reason = None
        self.values = []  # results of value-only operations (masks), reachable or not

    def value_only(self, t):
        """Remember a mask made while tracing: its array must never become a constant."""
        self.values.append(t.data)
        return t


# ------------------------------------------------------------------ tracing
def _walk(out, start):
    """Nodes recorded since ``start`` that ``out`` depends on (creation order), and
    the tensors they read that were not made during the trace."""
    nodes, outside, seen, stack = [], [], set(), [out]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ctx = t._ctx
        if ctx is None or ctx is _FREED or ctx[5] < start:
            outside.append(t)
            continue
        nodes.append(t)
        stack.extend(a for a in ctx[1] if isinstance(a, Tensor))
    nodes.sort(key=lambda t: t._ctx[5])
    return nodes, outside


_SLOT = re.compile(r"\b[acvs]\d+\b")  # names of inputs, captured tensors, results, saved values


class _Codegen:
    """Writes the forward and backward functions of one trace as Python source."""

    def __init__(self, inputs, captured, nodes, values=()):
        self.values = list(values)
        self.ns = {"_unb": unbroadcast, "_add_reduce": np.add.reduce, "_ndarray": np.ndarray}
        self.names = {}  # id(tensor) -> variable name
        self.by_array = {}  # id(ndarray) -> variable name (an array read as a constant)
        self.traced_arrays = []
        self.ambiguous = set()
        for i, t in enumerate(inputs):
            self._name(t, f"a{i}")
        for i, t in enumerate(captured):
            self._name(t, f"c{i}")
        for k, t in enumerate(nodes):
            self._name(t, f"v{k}")
        self.n_const = 0

    def _name(self, t, name):
        self.names[id(t)] = name
        if id(t.data) in self.by_array and name[0] == "a":
            self.ambiguous.add(id(t.data))  # one array passed as two arguments
        self.by_array.setdefault(id(t.data), name)
        self.traced_arrays.append(t.data)

    def const(self, value):
        """Source text for an operand or keyword value that is not a Tensor."""
        if isinstance(value, Tensor):
            return self.names[id(value)]
        if isinstance(value, np.ndarray):
            name = self.by_array.get(id(value))
            if name is not None:  # the very array of an input or result: read it
                if id(value) in self.ambiguous:
                    raise _Break("the same array is passed as two arguments and read as a "
                                 "value; pass copies")
                if value.dtype == bool:
                    raise _Break("it uses a boolean array from its inputs as a mask (the "
                                 "shapes of the results depend on its values)")
                return name
            if any(np.may_share_memory(value, a) for a in self.traced_arrays):
                raise _Break("it takes a view of traced data (e.g. t.data[...]) out of the graph")
            if any(np.may_share_memory(value, a) for a in self.values):
                raise _Break("it reads the values of a mask computed from the data (.data)")
        elif isinstance(value, tuple):
            return "(" + "".join(self.const(v) + ", " for v in value) + ")"
        elif type(value) in (int, bool, type(None)) or (type(value) is float and math.isfinite(value)):
            return repr(value)
        self.n_const += 1
        name = f"K{self.n_const}"
        self.ns[name] = value
        return name

    def bind(self, name, value):
        self.ns[name] = value
        return name


def _operands(cg, ctx):
    args, vals, kw = ctx[1], ctx[2], ctx[3]
    for a in args:
        actx = a._ctx if isinstance(a, Tensor) else None
        if actx is not None and actx is not _FREED and actx[5] > ctx[5]:
            raise _Break("it modifies a tensor in place after using it")
    ops = [cg.names[id(a)] if isinstance(a, Tensor) else cg.const(v) for a, v in zip(args, vals)]
    kws = [f"{k}={cg.const(v)}" for k, v in kw.items() if k != "saved"]
    return ops, kws


def _gname(cg, t):
    name = cg.names[id(t)]
    return "g" + name[1:] if name[0] == "v" else "g_" + name


def _generate(inputs, captured, nodes, out, needs_in, values=()):
    """Source of ``forward(a*, c*) -> (out, saved)``, ``backward(g, saved) -> grads``
    and ``forward_backward(g, a*, c*) -> (out, grads)``, and their namespace.

    ``needs_in``: for each input then captured tensor, whether its gradient is wanted.
    The backward visits nodes latest first and accumulates ``old + new`` in the
    order of :func:`gradwise.autodiff.engine.run_backward`, so the numbers are the
    same; which gradient is assigned first and which is added to is decided here,
    once, so the generated code has no branches.
    """
    cg = _Codegen(inputs, captured, nodes, values)
    params = [f"a{i}" for i in range(len(inputs))] + [f"c{i}" for i in range(len(captured))]
    every = list(inputs) + list(captured)
    needs = {id(t) for t, w in zip(every, needs_in) if w}
    fwd, calls = _forward_code(cg, nodes, needs)
    bwd, used, have = _backward_code(cg, nodes, calls, needs, out)
    out_name = cg.names[id(out)]
    saved = "".join(n + ", " for n in sorted(used))
    ret = "    return (" + "".join(f"g_{p}, " if w and id(x) in have else "None, "
                             for p, w, x in zip(params, needs_in, every)) + ")"
    seed = f"    {_gname(cg, out)} = g"
    source = "\n".join(
        [f"def forward({', '.join(params)}):"] + fwd + [f"    return {out_name}, ({saved})", ""]
        + ["def backward(g, S):", f"    ({saved}) = S", seed] + bwd + [ret, ""]
        + [f"def forward_backward({', '.join(['g'] + params)}):"] + fwd + [seed] + bwd
        + [ret.replace("return (", f"return {out_name}, (", 1)])
    cg.ns["__differentiable__"] = id(out) in needs  # a path from a wanted input to the result
    return _bind_locals(source, cg.ns), cg.ns


def _forward_code(cg, nodes, needs):
    """One line per recorded node; ``needs`` grows by the nodes on a path from a
    wanted input (through arguments that have a VJP). Returns the lines and, per
    node, the text of its operands for the VJP calls (None: no backward)."""
    lines, calls = [], []
    for k, t in enumerate(nodes):
        prim = t._ctx[0]
        if prim.joint:
            raise _Break("it calls another compiled function; compile only the outer one")
        ops, kws = _operands(cg, t._ctx)
        call = f"{cg.bind(f'F{k}', prim.fwd)}({', '.join(ops + kws)})"
        lines.append(f"    v{k}, s{k} = {call}" if prim.saves else f"    v{k} = {call}")
        if any(isinstance(a, Tensor) and id(a) in needs and (prim.nary or prim.joint
                                                           or prim.vjps[i] is not None)
               for i, a in enumerate(t._ctx[1])):
            needs.add(id(t))
            calls.append(ops + kws + ([f"saved=s{k}"] if prim.saves else []))
        else:
            calls.append(None)
    return lines, calls


def _backward_code(cg, nodes, calls, needs, out):
    """The VJP lines, latest node first. Returns them, the forward names they read
    and the ids of the tensors that receive a gradient."""
    lines, used, have = [], set(), {id(out)}
    for k in reversed(range(len(nodes))):
        t = nodes[k]
        if calls[k] is None or id(t) not in have:
            continue
        tail = ", ".join(calls[k])
        for i, a in enumerate(t._ctx[1]):
            if isinstance(a, Tensor) and id(a) in needs:
                code = _vjp_code(cg, k, t, i, a, tail, first=id(a) not in have)
                if code:  # (an argument without a VJP gets nothing from this node)
                    lines += code
                    have.add(id(a))
        used.update(_SLOT.findall(tail))
        used.add(f"v{k}")
    return lines, used, have


def _vjp_code(cg, k, t, i, a, tail, first):
    """Lines adding argument ``i``'s share of node ``k``'s gradient to ``a``'s."""
    prim = t._ctx[0]
    if prim.nary:
        vjp = f"{cg.bind(f'B{k}', prim.vjps)}({i}, g{k}, v{k}, {tail})"
    elif prim.vjps[i] is None:
        return []
    elif prim.vjps[i] is pass_through:
        vjp = f"g{k}"
    else:
        vjp = f"{cg.bind(f'B{k}_{i}', prim.vjps[i])}(g{k}, v{k}, {tail})"
    ga, shape, oshape = _gname(cg, a), a.data.shape, t.data.shape
    if shape == oshape:
        return [f"    {ga} = {vjp}" if first else f"    {ga} = {ga} + {vjp}"]
    unb = f"_unb(t, {shape!r}, {prim.name!r}, {i})"
    if len(oshape) == len(shape) + 1 and oshape[1:] == shape:
        # a bias broadcast over rows: the engine's fast path, without the call
        fix = f"    t = _add_reduce(t, 0) if t.shape == {oshape!r} and type(t) is _ndarray else {unb}"
    else:
        fix = f"    if t.shape != {shape!r}: t = {unb}"
    return [f"    t = {vjp}", fix, f"    {ga} = t" if first else f"    {ga} = {ga} + t"]


_GLOBAL = re.compile(r"\b(?:[KFB]\d+(?:_\d+)?|_unb|_add_reduce|_ndarray)\b")


def _bind_locals(source, ns):
    """Make each generated function take the constants and rule functions it calls as
    keyword-only defaults: local-variable lookups instead of global ones."""
    blocks = source.split("\ndef ")
    out = []
    for i, block in enumerate(blocks):
        head, _, body = block.partition("\n")
        names = sorted(set(_GLOBAL.findall(body)))
        if names:
            sep = "" if head.endswith("():") else ", "
            head = head[:-2] + sep + "*, " + ", ".join(f"{n}={n}" for n in names) + "):"
        out.append((head if i == 0 else "def " + head) + "\n" + body)
    return "\n".join(out)


class _Program:
    """One trace: generated ``forward``/``backward`` and what to read at each call."""

    __slots__ = ("forward", "backward", "forward_backward", "captured", "result", "differentiable", "guards", "prim", "source", "seed", "shares",
                 "bindings", "confirmed", "consts")

    def __init__(self, forward, backward, captured, source, name, seed, bindings, consts):
        self.bindings = bindings  # (namespace, name, value) the function read from outside
        self.consts = consts  # the generated code's namespace (constants, functions)
        self.confirmed = False  # a second trace on other inputs gave the same program
        self.result = None  # how value_and_grad builds its result (set on first use)
        self.differentiable = consts.get("__differentiable__", True)
        self.seed = seed  # d out / d out: ones in the shape and dtype of the result
        self.shares = False  # some returned gradients share memory (set by _verify)
        self.forward = forward
        self.backward = backward
        self.captured = captured
        self.guards = [(t, t.data.shape, t.data.dtype, t.requires_grad) for t in captured]
        self.source = source

        def joint_vjp(g, ans, *vals, saved):
            if isinstance(g, Tensor):
                raise NotImplementedError(
                    f"create_graph=True through the compiled function {name!r} is not supported; "
                    "call the original function for higher-order derivatives"
                )
            return backward(g, saved)

        self.prim = Primitive(f"compiled {name}", forward, joint_vjp, saves=True, joint=True)

    def valid(self):
        """The captured tensors still have their shapes, dtypes and requires_grad, and the
        names the function read from its closure and globals still hold the same objects."""
        for t, shape, dtype, rg in self.guards:
            d = t.data
            if d.shape != shape or d.dtype != dtype or t.requires_grad != rg:
                return False
        for where, name, value in self.bindings:
            if name is _PARAMS:  # modules: unchanged since (cheap counter, then a fingerprint)
                if MODULES_CHANGED[0] != value[0]:
                    if _module_fingerprint(where) != value[1]:
                        return False
                    value[0] = MODULES_CHANGED[0]  # something else changed (e.g. eval())
                continue
            if name is _ITEMS:  # a list or dict: the same items (params[0] = ... traces again)
                now = _items(where)
                if len(now) != len(value) or any(
                        a is not b and not (isinstance(b, _VALUES) and _same_number(a, b))
                        for a, b in zip(now, value)):
                    return False
                continue
            try:
                now = where.cell_contents if name is None else where[name]
            except (KeyError, ValueError):
                return False
            if now is not value and not (isinstance(value, _VALUES) and _same_number(now, value)):
                return False
        return True


_PARAMS = object()
_ITEMS = object()
#: lists and dicts the function reads with at most this many items have them guarded
MAX_WATCHED_ITEMS = 64

#: bumped by gradwise.nn whenever a module's parameter or child module is assigned,
#: so that a trace reading a module knows when its parameters may be other objects
MODULES_CHANGED = [0]


def _same_number(a, b):
    """Equal values of one type, telling -0.0 from 0.0 (and NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    try:
        return bool(_constant_key(a) == _constant_key(b))
    except Exception:  # noqa: BLE001  (no usable equality)
        return False


_SKIP = (types.ModuleType,)  # modules are not rebound in practice


class _LibraryModules:
    """``name in _LIBRARY``: a module of gradwise itself (its globals are constants)."""

    def __contains__(self, name):
        return isinstance(name, str) and (name == "gradwise" or name.startswith("gradwise."))


_LIBRARY = _LibraryModules()
_VALUES = (int, float, complex, str, bytes, np.number, type(None))


def _bindings(fn, depth=3, extra=()):
    """What ``fn`` reads from outside, to be checked before each replay: its closure
    cells and the globals its code names (also inside comprehensions and nested
    functions) — and those of the functions, ``functools.partial`` objects, bound
    methods and callable objects it reaches (``depth`` levels). Numbers and strings
    are compared by value (``use_bias = False`` traces again), other objects by
    identity (``w = w - lr * g`` traces again); the attributes of the objects whose
    methods it runs likewise; modules (``gradwise.nn``) by a generation counter that
    every parameter, attribute, mode or hook change bumps, then a fingerprint."""
    out, seen, modules = [], set(), []

    def watch(where, name, v):
        if where is not None and not isinstance(v, _SKIP):
            out.append((where, name, v))  # the name still holds this object
        if _is_module(v):
            if not any(m is v for m in modules):
                modules.append(v)
                for m in _module_tree([v]):  # every method of every module class below
                    for f in vars(type(m)).values():
                        if isinstance(f, types.FunctionType):
                            visit(f)
        elif not isinstance(v, _SKIP):
            if isinstance(v, (list, dict)) and len(v) <= MAX_WATCHED_ITEMS:
                out.append((v, _ITEMS, _items(v)))
                for x in _items(v):  # modules kept in a list or dict: their state too
                    if _is_module(x):
                        watch(None, None, x)
            if callable(v) and not isinstance(v, type):
                visit(v)

    def attributes(obj):
        """An object whose method runs: its attributes (``self.model``, ``self.w``)."""
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict) and len(d) <= MAX_WATCHED_ITEMS and id(obj) not in seen:
            seen.add(id(obj))
            out.append((d, _ITEMS, _items(d)))
            for k, v in d.items():
                watch(d, k, v)

    def visit(f, level=0):
        if f is None or id(f) in seen or level > depth:
            return
        seen.add(id(f))
        if isinstance(f, functools.partial):
            for v in (*f.args, *f.keywords.values()):
                watch(None, None, v)
            visit(f.func, level + 1)
            return
        if isinstance(f, types.MethodType):  # obj.method: the object's state is watched
            if _is_module(f.__self__):
                watch(None, None, f.__self__)
            elif not isinstance(f.__self__, type):
                attributes(f.__self__)
            f = f.__func__
        if _is_module(f):  # a module called directly
            watch(None, None, f)
            return
        if not isinstance(f, types.FunctionType):  # a callable object
            call = vars(type(f)).get("__call__")  # a Python-level __call__ of its class
            if isinstance(call, types.FunctionType):
                attributes(f)
                visit(call, level + 1)
            return
        if getattr(f, "__module__", None) in _LIBRARY:  # gradwise's own code: never rebinds
            return
        for cell in f.__closure__ or ():
            try:
                v = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            watch(cell, None, v)
        g = f.__globals__
        for name in _names(f.__code__):
            if name in g:
                watch(g, name, g[name])

    visit(fn)
    for v in extra:  # modules and objects passed as arguments: their state is guarded too
        if _is_module(v):
            watch(None, None, v)
        elif not isinstance(v, (Tensor, np.ndarray, type)) and not callable(v):
            attributes(v)
    if modules:
        out.append((modules, _PARAMS, [MODULES_CHANGED[0], _module_fingerprint(modules)]))
    return out


def _names(code):
    """Global names a code object reads, also in its comprehensions and nested functions."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _names(c)
    return names


_MODULE_INTERNALS = {"_parameters", "_modules", "_forward_hooks"}


_FINGERPRINTS: dict = {}  # module ids -> (MODULES_CHANGED value, fingerprint)


def _module_fingerprint(modules):
    """What a traced forward pass may depend on, for every module below ``modules``:
    mode, parameter and child objects, hooks, and the other attributes (numbers and
    strings by value, objects by identity). Computed once per module change."""
    key = tuple(map(id, modules))
    hit = _FINGERPRINTS.get(key)
    if hit is not None and hit[0] == MODULES_CHANGED[0]:
        return hit[1]
    if len(_FINGERPRINTS) > 256:
        _FINGERPRINTS.clear()
    fp = _FINGERPRINTS[key] = (MODULES_CHANGED[0], _fingerprint(modules))
    return fp[1]


class _Same:
    """An object in a fingerprint: equal only to the same object (kept alive, so its
    id cannot be reused by another one)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return type(other) is _Same and other.obj is self.obj

    __hash__ = None


def _value(v):
    if isinstance(v, _VALUES):
        return _constant_key(v)  # -0.0 is not 0.0, np.float64(0.5) is not 0.5
    if isinstance(v, (list, tuple, dict)) and len(v) <= MAX_WATCHED_ITEMS:
        return (type(v), _Same(v), tuple(_value(x) for x in _items(v)))
    return _Same(v)


def _items(v):
    """The keys and values of a dict, or the entries of a list (compared one by one)."""
    return [*v.keys(), *v.values()] if isinstance(v, dict) else list(v)


def _is_module(v):
    return (not isinstance(v, type) and callable(getattr(v, "named_parameters", None))
            and callable(getattr(v, "modules", None)))


def _module_tree(modules):
    """The modules below ``modules``, also those kept in plain list/tuple/dict attributes."""
    out, seen, stack = [], set(), list(modules)
    while stack:
        top = stack.pop()
        for m in top.modules():
            if id(m) in seen:
                continue
            seen.add(id(m))
            out.append(m)
            for v in vars(m).values():
                if isinstance(v, (list, tuple, dict)) and len(v) <= MAX_WATCHED_ITEMS:
                    stack.extend(x for x in _items(v) if _is_module(x))
    return out


def _fingerprint(modules):
    return [(_Same(m), type(m), m.training,
             tuple((k, _Same(p)) for k, p in m._parameters.items()),
             tuple((k, _Same(c)) for k, c in m._modules.items()),
             tuple(m._forward_hooks),
             tuple((k, _value(v)) for k, v in vars(m).items() if k not in _MODULE_INTERNALS))
            for m in _module_tree(modules)]


def _trace(fn, values, needs_in_user, name, eager, user_fn, captured_grads=True, extra=()):
    """Run ``fn`` on traced stand-ins for ``values`` and build a :class:`_Program`.

    ``values``: the arrays passed in (one per input). ``needs_in_user``: for each,
    whether its gradient is wanted. ``eager()`` runs the function as the user would
    and returns ``(result, tensors)``, the tensors standing for the wanted inputs; the
    program is checked against it. ``user_fn``: the user's function (its closure and
    globals are guarded). Raises :class:`_Break` with the reason when the function
    cannot be compiled.
    """
    bindings = _bindings(user_fn, extra=extra)
    # every input is marked as requiring grad so that each operation on it is
    # recorded, whatever its dtype; only the wanted gradients are generated
    inputs = [_wrap(v, True) for v in values]
    state = _TraceState()
    modules = next((b[0] for b in bindings if b[1] is _PARAMS), None)
    prev = (_Mode.enabled, _Mode.tracing)
    start = _next_seq()
    _Mode.enabled, _Mode.tracing = True, state
    try:
        out = fn(inputs)
    except GraphBreakError as e:
        raise _Break(f"it takes values out of a traced tensor ({e})") from None
    except Exception as e:  # the eager run will show the user's own error
        raise _Break(f"tracing raised {type(e).__name__}: {e}", transient=True) from None
    finally:
        _Mode.enabled, _Mode.tracing = prev
    if state.reason is None and modules is not None and \
            _module_fingerprint(modules) != next(b[2][1] for b in bindings if b[1] is _PARAMS):
        state.reason = ("it changes module state while it runs (a side effect a replay "
                        "would not repeat)")
    if state.reason is not None:
        raise _Break(state.reason)
    if not isinstance(out, Tensor):
        raise _Break(f"it returned {type(out).__name__}, not a Tensor")
    nodes, outside = _walk(out, start)
    if not nodes:
        raise _Break("its result does not come from an operation on its inputs")
    input_ids = {id(t) for t in inputs}
    captured = [t for t in outside if id(t) not in input_ids]
    captured.sort(key=lambda t: id(t))
    if any(np.may_share_memory(out.data, t.data) for t in inputs + captured):
        raise _Break("its result is a view of an input (e.g. x[1:]): in-place writes into it "
                     "would not be tracked; return a computed value")
    needs_in = list(needs_in_user) + [captured_grads and t.requires_grad for t in captured]
    source, ns = _generate(inputs, captured, nodes, out, needs_in, state.values)
    exec(builtins.compile(source, f"<gradwise.compile {name}>", "exec"), ns)  # noqa: S102
    prog = _Program(ns["forward"], ns["backward"], captured, source, name,
                    np.ones_like(out.data), bindings, ns)
    prog.forward_backward = ns["forward_backward"]
    _verify(prog, inputs, captured, needs_in, eager)
    return prog


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a.data if isinstance(a, Tensor) else a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _verify(prog, inputs, captured, needs_in, eager):
    """The generated code must give the values and gradients of the function run
    eagerly, as the user would run it, exactly."""
    try:
        val, saved = prog.forward(*[t.data for t in inputs], *[t.data for t in captured])
    except Exception as e:  # noqa: BLE001
        raise _Break(f"the replayed forward pass failed ({type(e).__name__}: {e})") from None
    prev = _Mode.enabled
    _Mode.enabled = True
    try:
        out, wrt = eager()
    except Exception as e:  # noqa: BLE001  (the user's call will raise it again)
        raise _Break(f"the function raised {type(e).__name__}: {e}") from None
    finally:
        _Mode.enabled = prev
    if not isinstance(out, Tensor):
        raise _Break(f"run eagerly it returns {type(out).__name__}, not a Tensor (are the "
                     "arguments plain arrays? pass Tensors, or use value_and_grad(compile=True))")
    if not _same(out.data, val):
        raise _Break("the replayed forward pass differs from the eager one")
    g = np.ones_like(out.data)
    every = list(inputs) + list(captured)
    wrt = list(wrt) + [t for t, w in zip(captured, needs_in[len(inputs):]) if w]
    if not wrt:
        return
    try:
        ref = run_backward([out], [g], retain_graph=True, inputs=wrt) if out.requires_grad \
            else [None] * len(wrt)
    except Exception as e:  # e.g. an outside graph already freed: decide at backward()
        raise _Break(f"its gradient could not be checked ({e})") from None
    try:
        gen = [gi for gi, w in zip(prog.backward(g, saved), needs_in) if w]
    except Exception as e:  # noqa: BLE001  (a VJP that returned None, say)
        raise _Break(f"the replayed backward pass failed ({type(e).__name__}: {e})") from None
    val2, both = prog.forward_backward(g, *[t.data for t in inputs], *[t.data for t in captured])
    both = [gi for gi, w in zip(both, needs_in) if w]
    for a, b, c in zip(ref, gen, both):
        if isinstance(a, Tensor):
            a = a.data
        if (a is None and b is not None and np.any(b)) or (a is not None and not _same(a, b)):
            raise _Break("the replayed backward pass differs from the eager one")
        if not _same(b, c):
            raise _Break("the fused replay differs from the eager one")
    if not _same(val, val2):
        raise _Break("the fused replay differs from the eager one")
    # gradients handed to the caller must own their memory; which ones share it (the
    # seed passed through an add, a reshaped view, one array for two arguments) is
    # fixed by the trace, so it is found here once
    mine = [x for x in (g, val, *saved, *(t.data for t in every)) if isinstance(x, np.ndarray)]
    seen = set()
    for gi in gen:
        if gi is None:
            continue
        if (id(gi) in seen or getattr(gi, "base", None) is not None
                or any(gi is x for x in mine)):
            prog.shares = True
        seen.add(id(gi))


# ------------------------------------------------------------------- front end
def _signature(a):
    if isinstance(a, Tensor):
        return (a.data.shape, a.data.dtype, a.requires_grad)
    if type(a) is np.ndarray:
        return (a.shape, a.dtype)
    return _constant_key(a)


def _constant_key(a):
    """A constant argument as a key: numbers by type and repr (-0.0 is not 0.0, NaN is
    NaN, 0.1 is not np.float64(0.1)), tuples item by item, other objects as they are."""
    if isinstance(a, (float, complex, np.number)):
        return (type(a), repr(a))
    if isinstance(a, (tuple, frozenset)):
        return (type(a), tuple(_constant_key(x) for x in a))
    return (type(a), a)


def _agree(a, b):
    """Two traces of one signature gave the same code, constants and captured tensors."""
    if a.source != b.source or len(a.captured) != len(b.captured) or a.consts.keys() != b.consts.keys():
        return False
    for x, y in zip(a.captured, b.captured):
        if x is not y and (x.requires_grad or y.requires_grad or x._ctx is not None
                           or y._ctx is not None or not _same(x.data, y.data)):
            return False  # (equal constant tensors made inside the function are fine)
    for k, x in a.consts.items():
        y = b.consts[k]
        if x is y or k.startswith("__") or k in ("forward", "backward", "forward_backward"):
            continue
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype
                    and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)):
                return False
        elif isinstance(x, float) or isinstance(y, float):
            if not (_same_number(x, y) or (x != x and y != y)):
                return False
        else:
            try:
                if type(x) is not type(y) or not bool(x == y):
                    return False
            except Exception:  # noqa: BLE001  (no usable equality: not the same constant)
                return False
    return True


class _TraceCache:
    """Programs by input signature, for one function; warns once per reason to run eagerly."""

    def __init__(self, fn):
        self.fn = fn
        self.traces = {}
        self.attempts = {}  # traces made per signature
        self.variants = {}  # confirmed programs per signature (train and eval modes, ...)
        self._warned = set()

    def lookup(self, key, build):
        """The program for ``key`` (tracing with ``build()`` when new or stale), or None
        when the function must run eagerly. A signature keeps up to ``MAX_VARIANTS``
        programs, one per state of what the function reads (``train()``/``eval()``);
        each is used only once a second trace in that state gave the same program."""
        old = self.traces.get(key, False)
        if old is None:
            return None
        if old is not False and not old.valid():
            for other in self.variants.get(key, ()):
                if other is not old and other.valid():
                    old = self.traces[key] = other
                    break
        if old is not False and old.confirmed and old.valid():
            return old
        if old is False and len(self.traces) >= MAX_TRACES:
            self.warn(f"more than {MAX_TRACES} different argument shapes/constants (a new "
                      "object or value as a non-array argument at each call?)")
            return None
        n = self.attempts[key] = self.attempts.get(key, 0) + 1
        if n > MAX_RETRACES:
            self.warn("what it reads from outside keeps changing (e.g. a counter or a "
                      "rebound global); running eagerly")
            self.traces[key] = None
            return None
        try:
            prog = build()
            if old is not False and old.valid():  # the second call: both traces must agree
                if not _agree(old, prog):
                    raise _Break("two calls gave different programs: it reads values that are "
                                 "not its arguments (e.g. through .data) or changes between calls")
                prog.confirmed = True
            elif old is not False and old.confirmed and _agree(old, prog):
                prog.confirmed = True  # a guard fired but the program is the same
        except _Break as e:
            if e.transient and n < 3:  # e.g. invalid labels: the eager call raises it
                return None
            self.warn(str(e))
            prog = None
        self.traces[key] = prog
        if prog is not None:
            # one program per state: those valid now were made in this same state
            kept = [p for p in self.variants.get(key, ()) if not p.valid()] + [prog]
            self.variants[key] = kept[-MAX_VARIANTS:]
        return prog

    def warn(self, reason):
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"gradwise.compile: {getattr(self.fn, '__qualname__', 'fn')} runs "
                          f"eagerly: {reason}", GraphBreakWarning, stacklevel=4)


class Compiled:
    """A function compiled by :func:`compile`; call it like the original.

    Attributes
    ----------
    fn : callable
        The original function (eager).
    traces : dict
        Signature -> generated program (or None where it runs eagerly).
    """

    def __init__(self, fn):
        self.fn = fn
        self._cache = _TraceCache(fn)
        functools.update_wrapper(self, fn)

    @property
    def traces(self):
        return self._cache.traces

    def __reduce__(self):
        # copies and pickles trace again: generated code and guards are not data
        return (Compiled, (self.fn,))

    def __get__(self, obj, objtype=None):
        """``@gradwise.compile`` on a method: ``obj.method(x)`` calls it with ``obj``
        first (a module is guarded like any module argument; each object traces)."""
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self):
        return f"<gradwise.compile of {getattr(self.fn, '__qualname__', self.fn)!r}>"

    def __call__(self, *args, **kwargs):
        if not _Mode.enabled or _Mode.tracing is not None:
            # under no_grad: nothing to differentiate; inside another trace: inlined
            return self.fn(*args, **kwargs)
        arrays = [a for a in args if isinstance(a, (Tensor, np.ndarray))]
        try:
            key = tuple([_signature(a) for a in args])
            if kwargs:
                arrays += [v for v in kwargs.values() if isinstance(v, (Tensor, np.ndarray))]
                key += tuple((k, _signature(v)) for k, v in kwargs.items())
            prog = self._cache.traces.get(key, False)
        except TypeError:  # e.g. a list argument: nothing to key a trace on
            self._cache.warn("an argument cannot key a trace (a list or another unhashable "
                             "object); pass arrays or tuples")
            return self.fn(*args, **kwargs)
        if prog is False or (prog is not None and not (prog.confirmed and prog.valid())):
            prog = self._cache.lookup(key, lambda: self._trace(args, kwargs))
        if prog is None:
            return self.fn(*args, **kwargs)
        if not prog.differentiable:  # masks, rounding: like eager, a result without graph
            prev, _Mode.enabled = _Mode.enabled, False
            try:
                return apply(prog.prim, *arrays, *prog.captured)
            finally:
                _Mode.enabled = prev
        return apply(prog.prim, *arrays, *prog.captured)

    def _trace(self, args, kwargs):
        slots = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray))]
        names = [k for k, v in kwargs.items() if isinstance(v, (Tensor, np.ndarray))]
        given = [args[i] for i in slots] + [kwargs[k] for k in names]
        values = [a.data if isinstance(a, Tensor) else a for a in given]
        needs = [isinstance(a, Tensor) and a.requires_grad for a in given]

        def call(traced):
            full, kw = list(args), dict(kwargs)
            for i, t in zip(slots, traced):
                full[i] = t
            for k, t in zip(names, traced[len(slots):]):
                kw[k] = t
            return self.fn(*full, **kw)

        def eager():
            return self.fn(*args, **kwargs), [a for a, w in zip(given, needs) if w]

        return _trace(call, values, needs, getattr(self.fn, "__qualname__", "fn"), eager, self.fn,
                      extra=(*args, *kwargs.values()))


def compile(fn=None):  # noqa: A001  (torch.compile's name)
    """Compile a function of Tensors: trace it once per input signature, then replay.

    The returned function gives the same values and gradients as ``fn`` (bit for
    bit; each trace is checked against the eager engine once) with much less
    Python overhead per call: the forward pass and the backward pass become two
    straight-line functions calling NumPy, and the whole call is one node of the
    autodiff graph, so ``.backward()``, optimizers and :func:`gradwise.train` work
    as before. Made for training steps on small arrays; see
    ``benchmarks/RESULTS.md``.

    Parameters
    ----------
    fn : callable
        ``fn(*args, **kwargs) -> Tensor``. Arguments (positional or keyword) that
        are Tensors or NumPy arrays are inputs (their values may change between
        calls); other arguments (numbers, strings, modules) are constants of a
        trace. Works as a decorator, also on methods. Tensors that require grad and
        are read from the enclosing scope (e.g. a model's parameters) get their
        gradients as in eager mode.

    Returns
    -------
    Compiled
        Callable with ``fn``'s signature; ``.fn`` is the original.

    Notes
    -----
    The traceable subset is that of ``jax.jit`` (Frostig et al., SysML 2018): the
    same operations must run for every input of the same shapes. Where ``fn``
    branches on traced values, calls ``.item()``/``float()``/``detach()``, writes in
    place outside the graph or has module hooks, it runs eagerly and a
    :class:`GraphBreakWarning` says why. A new argument shape or dtype traces
    again (at most 16 traces per function). ``create_graph=True`` through a
    compiled call raises ``NotImplementedError``: use ``fn`` itself for
    higher-order derivatives.

    Examples
    --------
    >>> import numpy as np, gradwise as gw
    >>> w = gw.tensor([1.0, 2.0], requires_grad=True)
    >>> f = gw.compile(lambda x: ((x @ w) ** 2).mean())
    >>> f(np.array([[1.0, 1.0]])).backward()
    >>> w.grad
    tensor([6., 6.])
    """
    if fn is None:
        return compile
    if not callable(fn):
        raise TypeError(f"gradwise.compile expects a function, got {type(fn).__name__}")
    return Compiled(fn)
