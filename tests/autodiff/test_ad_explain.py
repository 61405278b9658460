"""S3 (SCENARIOS.md): what backward() computes, shown by explain() and to_dot()."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gradwise as gw


def _s3():
    x = gw.tensor(4.0, requires_grad=True, name="x")
    y = gw.tensor(-3.0, requires_grad=True, name="y")
    z = gw.tensor(5.0, requires_grad=True, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return x, y, z, q, f


def test_s3_gradients():
    x, y, z, q, f = _s3()
    f.backward()
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (5.0, 5.0, 1.0)
    assert q.grad is None  # not a leaf


def test_s3_explain_trace_shows_each_local_derivative_and_upstream_gradient():
    x, y, z, q, f = _s3()
    text = gw.explain(f)
    lines = [ln.strip() for ln in text.splitlines()]
    # forward pass with values
    assert "q = x + y = 1   [add]" in lines
    assert "f = q * z = 5   [mul]" in lines
    # local derivatives with their formula and value, and the gradient they pass on
    assert "∂f/∂q = z = 5   →   df/dq = df/df · ∂f/∂q = 1 · 5 = 5" in lines
    assert "∂f/∂z = q = 1   →   df/dz = df/df · ∂f/∂z = 1 · 1 = 1" in lines
    assert "∂q/∂x = 1   →   df/dx = df/dq · ∂q/∂x = 5 · 1 = 5" in lines
    assert "∂q/∂y = 1   →   df/dy = df/dq · ∂q/∂y = 5 · 1 = 5" in lines
    # the upstream gradient arriving at q, and the final gradients
    assert any(ln.startswith("q = x + y") and "(df/dq = 5)" in ln for ln in lines)
    tail = lines[lines.index("Gradients:"):]
    assert tail[1:] == ["df/dx = 5", "df/dy = 5", "df/dz = 1"]
    # the backward pass is listed from the output down (reverse topological order)
    assert text.index("f = q * z   (df/df = 1)") < text.index("q = x + y   (df/dq = 5)")
    # explain does not touch .grad and keeps the graph: backward still works
    assert x.grad is None
    f.backward()
    assert x.grad.item() == 5.0


def test_explain_uses_caller_variable_names_when_tensors_are_unnamed():
    a = gw.tensor(2.0, requires_grad=True)
    b = gw.tensor(3.0, requires_grad=True)
    c = a * b
    out = c + a
    text = gw.explain(out)
    assert "c = a * b = 6   [mul]" in text
    assert "out = c + a = 8   [add]" in text
    # a is reached by two paths: its gradient is summed (b + 1 = 4)
    assert "dout/da += " in text
    assert "\n  dout/db = 2" in text
    assert "dout/da = 4" in text


def test_explain_names_argument_and_array_graphs():
    w = gw.tensor([1.0, -2.0, 0.5], requires_grad=True)
    loss = gw.sum(gw.square(w))
    text = gw.explain(loss, names={w: "weights", loss: "L"})
    assert "Chain rule for L" in text
    assert "v1 = square(weights) = [1.  , 4.  , 0.25]   [square]" in text
    assert "∂v1/∂weights = 2·weights   →   dL/dweights gets VJP_square(dL/dv1), shape (3,)" in text
    assert text.rstrip().endswith("dL/dweights = [ 2., -4.,  1.]")


def test_explain_refuses_a_freed_graph_and_a_constant():
    x, y, z, q, f = _s3()
    f.backward()
    with pytest.raises(RuntimeError, match="freed"):
        gw.explain(f)
    with pytest.raises(TypeError, match="requires_grad"):
        gw.explain(gw.tensor(1.0))


def _parse_dot(text):
    lines = text.strip().splitlines()
    assert lines[0].startswith("digraph ") and lines[0].endswith("{")
    assert lines[-1] == "}"
    assert text.count("{") == text.count("}")
    nodes = {}
    edges = []
    for ln in lines[1:-1]:
        ln = ln.strip()
        m = re.fullmatch(r'(n\d+) \[label="\{(.*)\}"\];', ln)
        if m:
            nodes[m.group(1)] = [p.strip() for p in m.group(2).split("|")]
            continue
        m = re.fullmatch(r"(n\d+) -> (n\d+);", ln)
        if m:
            edges.append(m.groups())
            continue
        assert re.fullmatch(r'(rankdir|node) .*;|rankdir="LR";|node \[.*\];', ln), ln
    return nodes, edges


def test_to_dot_has_every_node_and_edge_with_values_and_grads():
    x, y, z, q, f = _s3()
    f.backward(retain_graph=True)
    nodes, edges = _parse_dot(gw.to_dot(f))
    by_label = {parts[0]: (nid, parts) for nid, parts in nodes.items()}
    assert set(by_label) == {"x", "y", "z", "q", "f"}
    assert by_label["q"][1][1] == "add" and by_label["f"][1][1] == "mul"
    assert by_label["x"][1][1] == "leaf"
    assert "value -3" in by_label["y"][1] and "grad 5" in by_label["y"][1]
    assert "grad 1" in by_label["z"][1]
    nid = {k: v[0] for k, v in by_label.items()}
    assert sorted(edges) == sorted([(nid["x"], nid["q"]), (nid["y"], nid["q"]),
                                    (nid["q"], nid["f"]), (nid["z"], nid["f"])])
    for a, b in edges:
        assert a in nodes and b in nodes


def test_to_dot_escapes_record_syntax_in_labels():
    a = gw.tensor(np.arange(3.0), requires_grad=True, name="a|<b>{c}")
    nodes, _ = _parse_dot(gw.to_dot((a * 2).sum()))
    assert len(nodes) == 3
    for parts in nodes.values():
        assert not any(ch in "".join(parts) for ch in "<>{}")
