"""gradwise.autodiff — reverse-mode automatic differentiation over NumPy.

``Tensor`` records operations; ``backward`` applies the vector-Jacobian
products of the one rule table (:mod:`gradwise.autodiff.rules`).
"""

from gradwise.autodiff import numpy_api as _numpy_api  # noqa: F401  (NumPy protocols)
from gradwise.autodiff import rules as _rules  # noqa: F401  (fills the rule table)
from gradwise.autodiff.compile import GraphBreakWarning, compile
from gradwise.autodiff.explain import explain, to_dot
from gradwise.autodiff.functional import grad, hvp, value_and_grad
from gradwise.autodiff.functions import *  # noqa: F403
from gradwise.autodiff.functions import __all__ as _fn_all
from gradwise.autodiff.tensor import Tensor, enable_grad, is_grad_enabled, no_grad, tensor

__all__ = [
    "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
    "grad", "value_and_grad", "hvp", "compile", "GraphBreakWarning", "explain", "to_dot", *_fn_all,
]
