"""gradwise — gradient descent that works, and tells you why it doesn't.

A reverse-mode autodiff engine over NumPy (:mod:`gradwise.autodiff`), a small
training stack (:mod:`gradwise.nn`, :mod:`gradwise.optim`, :mod:`gradwise.data`,
:mod:`gradwise.models`, :func:`gradwise.train`) and a diagnostician for gradient
code and training runs (:func:`check_gradient`, :func:`check_step`,
:func:`diagnose`, ...).

The autodiff names are imported eagerly (they only need NumPy); the higher
layers are imported on first use so that ``import gradwise`` stays light.
"""

import importlib as _importlib

from gradwise._result import Finding, Result
from gradwise.autodiff import *  # noqa: F401,F403  (Tensor, tensor, no_grad, grad, ...)
from gradwise.autodiff import __all__ as _autodiff_all

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily on first access)
_LAZY = {
    "nn": "gradwise.nn",
    "optim": "gradwise.optim",
    "data": "gradwise.data",
    "models": "gradwise.models",
    "train": "gradwise.training",
    "TrainResult": "gradwise.training",
    "check_gradient": "gradwise.diagnostics",
    "check_backward": "gradwise.diagnostics",
    "check_step": "gradwise.diagnostics",
    "GradientCheck": "gradwise.diagnostics",
    "StepCheck": "gradwise.diagnostics",
    "diagnose": "gradwise.diagnostics",
    "Diagnosis": "gradwise.diagnostics",
    "Monitor": "gradwise.diagnostics",
    "sharpness": "gradwise.diagnostics",
    "stable_lr": "gradwise.diagnostics",
}

__all__ = ["__version__", "Finding", "Result", *_autodiff_all, *_LAZY]


def __getattr__(name: str):
    modname = _LAZY.get(name)
    if modname is None:
        raise AttributeError(f"module 'gradwise' has no attribute {name!r}")
    mod = _importlib.import_module(modname)
    value = mod if modname == f"gradwise.{name}" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
