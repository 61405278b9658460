"""The backward pass: reverse topological order, one VJP per recorded edge.

Iterative (no recursion limit: a 100 000-node chain works). Broadcasting is
undone in exactly one place, :func:`unbroadcast`, so the VJP rules never deal
with it.
"""

from __future__ import annotations

import math

import numpy as np

from gradwise.autodiff.tensor import _FREED, Tensor, _Mode, _trace_break, _wrap

__all__ = ["run_backward", "unbroadcast", "toposort"]


def unbroadcast(g, shape, op="?", argnum=0):
    """Sum ``g`` over the axes along which an operand of ``shape`` was broadcast.

    Works on ndarrays and Tensors alike. Raises ValueError naming the op, the
    argument and both shapes when the gradient cannot belong to the operand.
    """
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    if lead == 1 and gshape[1:] == shape and type(g) is np.ndarray:
        return np.add.reduce(g, axis=0)  # the common case: a bias broadcast over rows
    if lead >= 0:
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and gshape[i + lead] != 1
        )
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        if g.shape != shape and g.size == math.prod(shape):
            g = g.reshape(shape)
        if g.shape == shape:
            return g
    raise ValueError(
        f"gradient of the wrong shape from op '{op}' for argument {argnum}: "
        f"got {gshape}, expected {shape}"
    )


_FREED_MSG = (
    "Trying to backward through the graph a second time: its intermediate "
    "results were freed by the first backward(). Pass retain_graph=True to "
    "the first call if you need to call backward() twice."
)


def _collect(roots):
    """Recorded results reachable from ``roots`` (latest first) and the leaves."""
    nodes, leaves, seen = [], [], set()
    stack = list(roots)
    while stack:
        t = stack.pop()
        i = id(t)
        if i in seen:
            continue
        seen.add(i)
        ctx = t._ctx
        if ctx is None:
            leaves.append(t)
            continue
        if ctx is _FREED:
            raise RuntimeError(_FREED_MSG)
        nodes.append((ctx[5], t))  # creation counters are unique: t is never compared
        for _, a in ctx[7]:
            stack.append(a)
    nodes.sort(reverse=True)
    return [t for _, t in nodes], leaves


def toposort(roots):
    """Tensors reachable from ``roots`` that require grad, inputs before results."""
    nodes, leaves = _collect(roots)
    leaves.reverse()
    return leaves + nodes[::-1]


def _stale(prim):
    return RuntimeError(
        f"a tensor needed to compute the gradient of '{prim.name}' was modified "
        "in place after it was used (e.g. `w -= ...` or `w[i] = ...` between the "
        "forward pass and backward()); compute the loss again, or update out of place"
    )


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, inputs=None):
    """Propagate ``root_grads`` from ``roots`` back through the recorded graph.

    Parameters
    ----------
    roots : list of Tensor
    root_grads : list of ndarray
        Gradients of the final objective with respect to each root.
    retain_graph : bool
        Keep the graph (otherwise recorded contexts are freed).
    create_graph : bool
        Run the VJPs on Tensors with recording on, so gradients are themselves
        differentiable.
    inputs : list of Tensor, optional
        If given, return their gradients (None where unreachable) instead of
        accumulating into the ``.grad`` of leaves.
    """
    if _Mode.tracing is not None:
        _trace_break("it runs backward() inside the traced function")
    if (inputs is None and not create_graph and len(roots) == 1
            and _joint_on_leaves(roots[0], root_grads[0], retain_graph)):
        return None
    nodes, leaves = _collect(roots)
    grads = {}
    for r, g in zip(roots, root_grads):
        if create_graph:
            g = _wrap(np.asarray(g))
        k = id(r)
        grads[k] = grads[k] + g if k in grads else g
    wanted = None if inputs is None else {id(t) for t in inputs}
    found = {}
    prev_mode = _Mode.enabled
    _Mode.enabled = create_graph
    try:
        for node in nodes:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if wanted is not None and id(node) in wanted:
                found[id(node)] = g
            prim, args, vals, kw, versions, _, own, plan = node._ctx
            _check_versions(node, prim, args, versions, own)
            ans, use = (node, args) if create_graph else (node.data, vals)
            vjps, nary = prim.vjps, prim.nary
            if prim.joint:  # one call gives every argument's gradient (compiled functions)
                joint = vjps(g, ans, *use, **kw)
            for i, a in plan:
                if prim.joint:
                    gi = joint[i]
                elif nary:
                    gi = vjps(i, g, ans, *use, **kw)
                else:
                    vjp = vjps[i]
                    if vjp is None:
                        continue
                    gi = vjp(g, ans, *use, **kw) if kw else vjp(g, ans, *use)
                if gi is None:
                    continue
                if gi.shape != a.data.shape:
                    gi = unbroadcast(gi, a.data.shape, prim.name, i)
                k = id(a)
                grads[k] = grads[k] + gi if k in grads else gi
            if not retain_graph:
                node._ctx = _FREED
        handed_out = {id(g) for g in root_grads}  # the caller's arrays are never reused
        for leaf in leaves:
            g = grads.get(id(leaf))
            if g is None:
                continue
            if wanted is not None:
                if id(leaf) in wanted:
                    found[id(leaf)] = g
                continue
            # a VJP may pass the same array on to several leaves (add) or a view of
            # the upstream gradient (reshape): each .grad must own its memory
            if not create_graph and (id(g) in handed_out or getattr(g, "base", None) is not None):
                g = g.copy()
            handed_out.add(id(g))
            _accumulate_leaf(leaf, g, create_graph)
    finally:
        _Mode.enabled = prev_mode
    if inputs is not None:
        return [found.get(id(t)) for t in inputs]
    return None


def _check_versions(node, prim, args, versions, own):
    if node._version[0] != own:
        raise _stale(prim)  # its own result, reused by the VJP, was overwritten
    for a, v in zip(args, versions):
        if v is not None and a._version[0] != v:
            raise _stale(prim)


def _joint_on_leaves(root, g, retain_graph):
    """The common case of a compiled call (``gradwise.compile``): one node with a
    joint VJP whose inputs are all leaves. Same result as the general walk, without
    it. Returns False (nothing done) for any other graph."""
    ctx = root._ctx
    if ctx is None or ctx is _FREED or not ctx[0].joint:
        return False
    prim, args, vals, kw, versions, _, own, plan = ctx
    if any(a._ctx is not None for _, a in plan):
        return False
    _check_versions(root, prim, args, versions, own)
    joint = prim.vjps(g, root.data, *vals, **kw)
    grads = {}
    for i, a in plan:
        gi = joint[i]
        if gi is None:
            continue
        if gi.shape != a.data.shape:
            gi = unbroadcast(gi, a.data.shape, prim.name, i)
        k = id(a)
        grads[k] = (a, grads[k][1] + gi) if k in grads else (a, gi)
    if not retain_graph:
        root._ctx = _FREED
    handed_out = {id(g)}
    for leaf, gi in grads.values():
        if id(gi) in handed_out or getattr(gi, "base", None) is not None:
            gi = gi.copy()  # each .grad owns its memory, as in the general walk
        handed_out.add(id(gi))
        _accumulate_leaf(leaf, gi, False)
    return True


def _accumulate_leaf(leaf, g, create_graph):
    if not create_graph:
        if isinstance(g, Tensor):
            g = g.data
        if g.dtype != leaf.data.dtype:
            g = g.astype(leaf.data.dtype)
        leaf.grad = _wrap(g) if leaf.grad is None else _wrap(leaf.grad.data + g)
    else:
        if leaf.grad is None:
            leaf.grad = g
        else:
            prev = _Mode.enabled
            _Mode.enabled = True
            try:
                leaf.grad = leaf.grad + g
            finally:
                _Mode.enabled = prev
