"""gradwise.nn — layers, activations, losses and initialisers (PyTorch conventions).

Modules: :class:`Module`, :class:`Parameter`, :class:`Linear`, :class:`Sequential`;
activations :class:`Sigmoid`, :class:`Tanh`, :class:`ReLU`, :class:`LeakyReLU`,
:class:`Softplus`, :class:`Identity`; losses :class:`MSELoss`, :class:`BCELoss`,
:class:`BCEWithLogitsLoss`, :class:`CrossEntropyLoss`; the functional forms in
:mod:`gradwise.nn.functional` and the initialisers in :mod:`gradwise.nn.init`.
"""

from gradwise.nn import functional, init
from gradwise.nn.layers import (
    Identity,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softplus,
    Tanh,
)
from gradwise.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from gradwise.nn.module import Module, Parameter, RemovableHandle

__all__ = [
    "Module",
    "Parameter",
    "RemovableHandle",
    "Linear",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softplus",
    "Identity",
    "MSELoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "functional",
    "init",
]
