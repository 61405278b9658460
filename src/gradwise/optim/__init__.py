"""gradwise.optim — optimizers and learning-rate schedules (``torch.optim`` semantics).

Optimizers :class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`RMSprop`,
:class:`Adagrad` (base :class:`Optimizer`) update ``p.data`` in place from
``p.grad``; schedules :class:`StepLR`, :class:`ExponentialLR`,
:class:`CosineAnnealingLR`, :class:`ReduceLROnPlateau` live in
:mod:`gradwise.optim.lr_scheduler` and are exported here too. The one table of
optimizer names (:data:`OPTIMIZER_CLASSES`, :data:`ADAPTIVE`,
:data:`ESTIMATOR_OPTIMIZERS`, :func:`normalize`, :func:`make`) lives in
:mod:`gradwise.optim._names`.
"""

from gradwise.optim import lr_scheduler
from gradwise.optim._names import (
    ADAPTIVE,
    ESTIMATOR_OPTIMIZERS,
    OPTIMIZER_CLASSES,
    SGD_NAMES,
    make,
    normalize,
)
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
    "OPTIMIZER_CLASSES",
    "ADAPTIVE",
    "SGD_NAMES",
    "ESTIMATOR_OPTIMIZERS",
    "normalize",
    "make",
]
