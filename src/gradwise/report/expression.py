"""Safe evaluation of small scalar programs for ``gradwise explain``.

``"q = x + y; f = q * z"`` is parsed with :mod:`ast` and evaluated by walking
the tree with a whitelist of operators and functions — never ``eval`` — into
gradwise Tensors, so that :func:`gradwise.explain` can show the chain rule.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

import numpy as np

__all__ = ["ExpressionError", "FUNCTIONS", "parse_values", "evaluate"]


class ExpressionError(ValueError):
    """The expression or the values are not acceptable; the message says why."""


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}

#: Function names allowed in expressions (each is the gradwise function of that name).
FUNCTIONS = (
    "exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "sin", "cos",
    "tanh", "sigmoid", "relu", "softplus", "maximum", "minimum",
)


#: Number of arguments of each allowed function (1 unless listed).
_ARITY = {"maximum": 2, "minimum": 2}


def parse_values(text: str | None) -> dict[str, float]:
    """Parse ``"x=4,y=-3,z=5"`` into ``{"x": 4.0, "y": -3.0, "z": 5.0}``.

    Raises
    ------
    ExpressionError
        For an item without ``=``, a name that is not an identifier, a value
        that is not a number, or a name given twice.
    """
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, raw = (s.strip() for s in item.partition("="))
        if not eq or not name.isidentifier():
            raise ExpressionError(f"--values: expected name=number, got {item!r} (e.g. --values x=4,y=-3)")
        try:
            value = float(raw)
        except ValueError:
            raise ExpressionError(f"--values: {name}={raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ExpressionError(f"--values: {name}={raw} is not finite")
        if name in out:
            raise ExpressionError(f"--values: {name} is given twice")
        out[name] = value
    return out


def _node_text(node: ast.AST) -> str:
    return ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__


class _Evaluator:
    def __init__(self, env: dict[str, Any], functions: dict[str, Any]):
        self.env = env
        self.functions = functions

    def __call__(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            # NumPy scalars: constant arithmetic overflows to inf and 1/0 is inf, as for
            # the Tensors (Python floats raise OverflowError / ZeroDivisionError)
            return np.float64(node.value) if abs(node.value) < 1e308 else np.float64(math.inf)
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                raise ExpressionError(
                    f"{node.id!r} has no value: give it with --values {node.id}=... or assign it first"
                )
            return self.env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](self(node.left), self(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fn = self.functions.get(node.func.id)
            if fn is None:
                raise ExpressionError(
                    f"function {node.func.id!r} is not allowed; allowed: {', '.join(FUNCTIONS)}"
                )
            arity = _ARITY.get(node.func.id, 1)
            if len(node.args) != arity or any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError(
                    f"{node.func.id}() takes {arity} argument{'s' if arity > 1 else ''}, "
                    f"got {_node_text(node)!r}"
                )
            return fn(*(self(a) for a in node.args))
        raise ExpressionError(
            f"{_node_text(node)!r} is not allowed: use numbers, names, + - * / **, and the functions "
            f"{', '.join(FUNCTIONS)}"
        )


def evaluate(source: str, values: dict[str, float]) -> tuple[Any, dict[str, Any]]:
    """Evaluate a small program into gradwise Tensors.

    Parameters
    ----------
    source : str
        Statements separated by ``;`` or newlines: assignments ``name = expr``
        and optionally a final bare expression. The last statement's value is
        the output.
    values : dict of str to float
        The inputs; each becomes a 0-d float64 Tensor that requires a gradient
        and carries its name.

    Returns
    -------
    output : Tensor
        The value of the last statement.
    env : dict of str to Tensor
        Inputs and assigned intermediates, in order of definition.

    Raises
    ------
    ExpressionError
        Syntax errors, anything outside the whitelist, an unknown name, a
        value never used, or an expression longer than ``MAX_LENGTH``
        characters or nested too deeply to parse.
    """
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression has {len(source):,} characters; at most {MAX_LENGTH:,} are accepted"
        )
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except SyntaxError as e:
        raise ExpressionError(f"cannot parse the expression: {e.msg} (at column {e.offset})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(_TOO_DEEP) from None
    try:
        with np.errstate(all="ignore"):  # inf and nan are shown in the trace
            return _run(tree, values)
    except RecursionError:
        raise ExpressionError(_TOO_DEEP) from None


#: Longest expression accepted (a chain-rule trace longer than this is unreadable).
MAX_LENGTH = 5000
_TOO_DEEP = "the expression is nested too deeply; split it into several assignments (a = ...; b = ...)"


def _run(tree: ast.Module, values: dict[str, float]) -> tuple[Any, dict[str, Any]]:
    import gradwise

    if not tree.body:
        raise ExpressionError("the expression is empty; e.g. \"q = x + y; f = q * z\"")
    functions = {name: getattr(gradwise, name) for name in FUNCTIONS}
    env: dict[str, Any] = {
        name: gradwise.Tensor(v, requires_grad=True, name=name) for name, v in values.items()
    }
    ev = _Evaluator(env, functions)
    output = None
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name in FUNCTIONS:
                raise ExpressionError(f"cannot assign to {name!r}: it is a function name")
            value = ev(stmt.value)
            if not isinstance(value, gradwise.Tensor):
                value = gradwise.Tensor(value)
            if not any(value is v for v in env.values()):  # an alias (g = x) keeps x's name
                value.name = name
            env[name] = output = value
        elif isinstance(stmt, ast.Expr) and i == len(tree.body) - 1:
            output = ev(stmt.value)
        else:
            raise ExpressionError(
                f"statement {_node_text(stmt)!r} is not allowed: write assignments 'name = expression'"
            )
    if not isinstance(output, gradwise.Tensor) or not output.requires_grad:
        raise ExpressionError("the result does not depend on any of the --values inputs")
    unused = [n for n in values if not _uses(tree, n)]
    if unused:
        raise ExpressionError(f"--values gives {', '.join(unused)} but the expression never uses it")
    return output, env


def _uses(tree: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(tree))
