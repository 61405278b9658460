"""Show what ``backward()`` computes: the chain rule step by step, and the graph as DOT.

For an output ``f`` the trace lists the forward graph (each node with its
value), then, in reverse topological order, each node's local derivatives
∂node/∂input (formula from the rule table and its value) and the gradient
flowing to each input, ``df/dinput = df/dnode · ∂node/∂input``, summed over
all paths (the multivariable chain rule; Goodfellow, Bengio & Courville,
*Deep Learning*, 2016, sec. 6.5).
"""

from __future__ import annotations

import inspect

import numpy as np

from gradwise.autodiff.engine import run_backward, toposort
from gradwise.autodiff.tensor import _FREED, Tensor, _Mode

__all__ = ["explain", "to_dot"]


def _fmt(v) -> str:
    a = np.asarray(v)
    if a.size == 1:
        x = a.item()
        if isinstance(x, float) and np.isfinite(x) and x == int(x) and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.6g}"
    if a.size <= 6:
        return np.array2string(a, precision=4, separator=", ")
    return f"<array {a.shape}>"


def _labels(root, order, names, frame):
    labels = {}
    if frame is not None:
        for var, val in list(frame.f_locals.items()):
            if isinstance(val, Tensor):
                labels.setdefault(id(val), var)
    for t in order:
        if t.name:
            labels[id(t)] = t.name
    if names:
        for t, n in names.items():
            labels[id(t)] = n
    k = 0
    for t in order:
        if id(t) not in labels:
            k += 1
            labels[id(t)] = f"v{k}"
    return labels


def _collect(root):
    if root._ctx is _FREED:
        raise RuntimeError(
            "the graph of this tensor was freed by backward(); call gradwise.explain(f) "
            "before f.backward(), or use f.backward(retain_graph=True)"
        )
    return toposort([root])


def _arg_label(a, labels):
    return labels[id(a)] if isinstance(a, Tensor) and id(a) in labels else _fmt(
        a.data if isinstance(a, Tensor) else a)


def _expr(node, labels):
    prim, args = node._ctx[0], node._ctx[1]
    kw = node._ctx[3]
    parts = [_arg_label(a, labels) for a in args]
    if prim.symbol and len(parts) == 2:
        return f"{parts[0]} {prim.symbol} {parts[1]}"
    if prim.name == "neg":
        return f"-{parts[0]}"
    extra = [f"{k}={v!r}" for k, v in kw.items() if k not in ("idx", "saved")]
    if "idx" in kw:
        return f"{parts[0]}[{kw['idx']!r}]"
    return f"{prim.name}({', '.join(parts + extra)})"


def _local_derivative(node, i):
    """∂node/∂arg_i as a value (scalar graphs) via the VJP with upstream 1."""
    prim, args, vals, kw = node._ctx[:4]
    vjp = prim.vjp(i)
    if vjp is None:
        return None
    g = np.ones_like(node.data)
    d = vjp(g, node.data, *vals, **kw)
    return np.asarray(d)


def explain(f: Tensor, names: dict | None = None) -> str:
    """The chain rule for ``f`` step by step, as readable text.

    Parameters
    ----------
    f : Tensor
        The output (usually a scalar loss). Its graph must not have been freed:
        call ``explain`` before ``f.backward()`` (or use ``retain_graph=True``).
    names : dict {Tensor: str}, optional
        Labels for nodes. By default a node is called by its ``name``, else by
        the caller's variable that holds it, else ``v1``, ``v2``, ...

    Returns
    -------
    str
        The forward graph with values, the local derivatives and upstream
        gradients node by node, and the resulting gradient of every leaf.
        ``.grad`` of the leaves is not changed.

    Raises
    ------
    TypeError
        If ``f`` is not a Tensor that requires a gradient.
    RuntimeError
        If the graph was freed by a previous ``backward()``.

    Examples
    --------
    >>> import gradwise as gw
    >>> x = gw.tensor(4.0, requires_grad=True); y = gw.tensor(-3.0, requires_grad=True)
    >>> z = gw.tensor(5.0, requires_grad=True)
    >>> q = x + y; f = q * z
    >>> print(gw.explain(f))  # doctest: +ELLIPSIS
    Chain rule for f ...
    """
    if not isinstance(f, Tensor) or not f.requires_grad:
        raise TypeError("explain() needs a Tensor computed from inputs with requires_grad=True")
    order = _collect(f)
    frame = inspect.currentframe().f_back
    labels = _labels(f, order, names, frame)
    del frame
    L = lambda t: labels[id(t)]  # noqa: E731
    fn = L(f)
    gs = run_backward([f], [np.ones_like(f.data)], retain_graph=True, inputs=order)
    grad_of = {id(t): (np.zeros_like(t.data) if g is None else np.asarray(g))
               for t, g in zip(order, gs)}

    lines = [f"Chain rule for {fn} (reverse mode: start from d{fn}/d{fn} = 1)", "", "Forward pass:"]
    for t in order:
        if t._ctx is None:
            lines.append(f"  {L(t)} = {_fmt(t.data)}   (input, requires grad)")
        else:
            lines.append(f"  {L(t)} = {_expr(t, labels)} = {_fmt(t.data)}   [{t._ctx[0].name}]")
    lines += ["", "Backward pass (local derivative × upstream gradient, summed over paths):"]
    incoming: dict[int, int] = {}
    for t in order:
        if t._ctx is not None:
            for a in t._ctx[1]:
                if isinstance(a, Tensor) and a.requires_grad:
                    incoming[id(a)] = incoming.get(id(a), 0) + 1
    for t in reversed(order):
        if t._ctx is None:
            continue
        prim, args = t._ctx[0], t._ctx[1]
        up = grad_of[id(t)]
        lines.append(f"  {L(t)} = {_expr(t, labels)}   (d{fn}/d{L(t)} = {_fmt(up)})")
        for i, a in enumerate(args):
            if not (isinstance(a, Tensor) and a.requires_grad):
                continue
            formula = prim.formulas[i] if prim.formulas else None
            local = _local_derivative(t, i)
            ftxt = ""
            if formula:
                ftxt = formula.format(*[_arg_label(x, labels) for x in args], ans=L(t))
            scalar = local is not None and local.size == 1 and up.size == 1
            if scalar:
                contrib = np.asarray(up).item() * np.asarray(local).item()
                rhs = f"{ftxt} = {_fmt(local)}" if ftxt and ftxt != _fmt(local) else _fmt(local)
                op = "+=" if incoming.get(id(a), 0) > 1 else "="
                lines.append(
                    f"      ∂{L(t)}/∂{L(a)} = {rhs}   →   d{fn}/d{L(a)} {op} "
                    f"d{fn}/d{L(t)} · ∂{L(t)}/∂{L(a)} = {_fmt(up)} · {_fmt(local)} = {_fmt(contrib)}"
                )
            else:
                lines.append(
                    f"      ∂{L(t)}/∂{L(a)} = {ftxt or 'see rule ' + prim.name}   →   "
                    f"d{fn}/d{L(a)} gets VJP_{prim.name}(d{fn}/d{L(t)}), shape {a.shape}"
                )
    lines += ["", "Gradients:"]
    for t in order:
        if t._ctx is None:
            lines.append(f"  d{fn}/d{L(t)} = {_fmt(grad_of[id(t)])}")
    return "\n".join(lines)


def to_dot(f: Tensor, names: dict | None = None) -> str:
    """Graphviz DOT text of the graph of ``f``.

    Parameters
    ----------
    f : Tensor
        The output whose graph is drawn (its graph must not have been freed).
    names : dict {Tensor: str}, optional
        Labels, as in :func:`explain` (default: ``name``, the caller's variable
        names, then ``v1``, ``v2``, ...).

    Returns
    -------
    str
        A ``digraph``: one record node per tensor (label, op, value, and
        ``.grad`` where present) and an edge from each input to its result.
        Render with ``dot -Tpng graph.dot -o graph.png``.

    Raises
    ------
    TypeError
        ``f`` is not a Tensor.
    RuntimeError
        The graph was freed by ``backward()``.
    """
    if not isinstance(f, Tensor):
        raise TypeError("to_dot() needs a Tensor")
    prev = _Mode.enabled
    order = _collect(f) if f.requires_grad else [f]
    _Mode.enabled = prev
    frame = inspect.currentframe().f_back
    labels = _labels(f, order, names, frame)
    del frame
    out = ["digraph gradwise {", '  rankdir="LR";', '  node [shape=record, fontname="Helvetica"];']
    for t in order:
        op = t._ctx[0].name if t._ctx not in (None, _FREED) else ("leaf" if t._ctx is None else "freed")
        parts = [labels[id(t)], op, "value " + _fmt(t.data)]
        if t.grad is not None:
            parts.append("grad " + _fmt(t.grad.data))
        text = " | ".join(p.replace('"', "'").replace("{", "(").replace("}", ")")
                          .replace("<", "‹").replace(">", "›").replace("|", "¦") for p in parts)
        out.append(f'  n{id(t)} [label="{{{text}}}"];')
    for t in order:
        if t._ctx not in (None, _FREED):
            for a in t._ctx[1]:
                if isinstance(a, Tensor) and a.requires_grad:
                    out.append(f"  n{id(a)} -> n{id(t)};")
    out.append("}")
    return "\n".join(out)
