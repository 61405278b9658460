"""gradwise.diagnostics — check gradient and update code, monitor and diagnose training.

Public names are loaded lazily from their modules:

- ``check.py``: :func:`check_gradient`, :func:`check_backward`, :class:`GradientCheck`
- ``step.py``: :func:`check_step`, :class:`StepCheck`
- ``monitor.py``: :class:`Monitor`
- ``curvature.py``: :func:`sharpness`, :func:`stable_lr`
- ``diagnosis.py``: :func:`diagnose`, :class:`Diagnosis`
"""

from __future__ import annotations

import importlib

_LAZY = {
    "check_gradient": "check",
    "check_backward": "check",
    "gradients_from_update": "check",
    "GradientCheck": "check",
    "check_step": "step",
    "StepCheck": "step",
    "Monitor": "monitor",
    "sharpness": "curvature",
    "stable_lr": "curvature",
    "diagnose": "diagnosis",
    "Diagnosis": "diagnosis",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gradwise.diagnostics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gradwise.diagnostics.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
