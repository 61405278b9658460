"""Registry through which a higher layer plugs into a lower one.

The models layer must attach a diagnosis to fitted estimators (``diagnosis_``)
without importing the diagnostics layer. The diagnostics layer provides the hook;
it is named here by its import path and loaded on first use, so the dependency
points upward only by name, never by a static import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["register_fit_hook", "fit_hooks"]

_PROVIDERS = ["gradwise.diagnostics.fit_hook:attach_diagnosis"]
_HOOKS: list[Callable] = []
_loaded = False


def register_fit_hook(fn: Callable) -> None:
    """Register ``fn(estimator, result, X, y)``, called at the end of every
    estimator ``fit`` whose ``diagnose`` parameter is true."""
    if fn not in _HOOKS:
        _HOOKS.append(fn)


def fit_hooks() -> list[Callable]:
    """The registered fit hooks, loading the default providers once."""
    global _loaded
    if not _loaded:
        _loaded = True
        for spec in _PROVIDERS:
            modname, _, attr = spec.partition(":")
            try:
                mod = importlib.import_module(modname)
            except ModuleNotFoundError as e:  # provider not built yet
                if e.name != modname:
                    raise
                continue
            register_fit_hook(getattr(mod, attr))
    return list(_HOOKS)
