"""gradwise.optim — optimizers and learning-rate schedules (``torch.optim`` semantics).

Optimizers :class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`RMSprop`,
:class:`Adagrad` (base :class:`Optimizer`) update ``p.data`` in place from
``p.grad``; schedules :class:`StepLR`, :class:`ExponentialLR`,
:class:`CosineAnnealingLR`, :class:`ReduceLROnPlateau` live in
:mod:`gradwise.optim.lr_scheduler` and are exported here too.
"""

from gradwise.optim import lr_scheduler
from gradwise.optim.adagrad import Adagrad
from gradwise.optim.adam import Adam, AdamW
from gradwise.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)
from gradwise.optim.optimizer import Optimizer
from gradwise.optim.rmsprop import RMSprop
from gradwise.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "LRScheduler",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
    "lr_scheduler",
]
