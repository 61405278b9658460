"""Parameter containers ("pytrees"): one array, a tuple/list, or a dict of arrays.

Every layer that accepts parameters (``grad``, ``check_gradient``, ``check_step``,
``diagnose``) goes through these helpers, so the supported structures and the
way locations are named (``W[1, 2]``, ``params['b'][0]``) are defined once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Leaf", "flatten", "unflatten", "tree_map", "entry_name", "is_leaf"]


@dataclass(frozen=True)
class Leaf:
    """One array in a parameter structure.

    Attributes
    ----------
    path : tuple
        Keys/indices from the root, e.g. ``('b',)`` or ``(0,)``; ``()`` for a bare array.
    name : str
        The name a user recognises: ``'W'`` for a dict key, ``'params[0]'`` for a
        tuple element, ``'params'`` for a bare array.
    """

    path: tuple
    name: str


def is_leaf(x: Any) -> bool:
    """True for anything that is not a tuple, list or dict (arrays, scalars, Tensors)."""
    return not isinstance(x, (tuple, list, dict))


def _leaf_name(path: tuple, root: str) -> str:
    if not path:
        return root
    if len(path) == 1 and isinstance(path[0], str) and path[0].isidentifier():
        # a dict of named blocks: users call them by their key ('W', 'b')
        return path[0]
    return root + "".join(f"[{k!r}]" for k in path)


def flatten(tree: Any, root: str = "params") -> tuple[list[Any], list[Leaf], Any]:
    """Flatten a parameter structure.

    Parameters
    ----------
    tree : array_like, tuple, list or dict (nested allowed)
        The parameters.
    root : str, default ``"params"``
        Name used for the whole structure in locations.

    Returns
    -------
    leaves : list
        The arrays in a fixed order (dict keys in insertion order).
    info : list of Leaf
        Path and user-facing name of each leaf.
    treedef : object
        Opaque description to rebuild the structure with :func:`unflatten`.
    """
    leaves: list[Any] = []
    info: list[Leaf] = []

    def rec(node, path):
        if isinstance(node, dict):
            return ("dict", [(k, rec(v, path + (k,))) for k, v in node.items()])
        if isinstance(node, (tuple, list)):
            return (type(node), [rec(v, path + (i,)) for i, v in enumerate(node)])
        leaves.append(node)
        info.append(Leaf(path, _leaf_name(path, root)))
        return None

    treedef = rec(tree, ())
    return leaves, info, treedef


def unflatten(treedef: Any, leaves: list[Any]) -> Any:
    """Rebuild a structure produced by :func:`flatten` with new leaves."""
    it = iter(leaves)

    def rec(d):
        if d is None:
            return next(it)
        kind, children = d
        if kind == "dict":
            return {k: rec(c) for k, c in children}
        return kind(rec(c) for c in children)

    out = rec(treedef)
    rest = list(it)
    if rest:
        raise ValueError(f"unflatten: {len(rest)} leaves left over")
    return out


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping the structure."""
    leaves, _, treedef = flatten(tree)
    return unflatten(treedef, [fn(x) for x in leaves])


def entry_name(leaf_name: str, index: tuple, shape: tuple) -> str:
    """Name of one entry: ``W[1, 2]``; a scalar block keeps its bare name.

    >>> entry_name("W", (1, 2), (3, 3))
    'W[1, 2]'
    """
    if len(shape) == 0:
        return leaf_name
    return f"{leaf_name}[{', '.join(str(int(i)) for i in index)}]"
