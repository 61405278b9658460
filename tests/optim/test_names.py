"""The one table of optimizer names (gradwise.optim._names)."""

import numpy as np
import pytest

from gradwise import nn, optim
from gradwise.models import make_optimizer


def _params():
    return [nn.Parameter(np.zeros(3))]


@pytest.mark.parametrize(
    "given, momentum, want",
    [("GD", 0.0, ("sgd", 0.0)), ("momentum", 0.9, ("sgd", 0.9)), ("heavy-ball", 0.5, ("sgd", 0.5)),
     ("Adam", 0.0, ("adam", 0.0)), ("nadam", 0.0, ("nadam", 0.0))],
)
def test_normalize_names(given, momentum, want):
    assert optim.normalize(given, momentum) == want


def test_normalize_reads_an_optimizer_objects_class_and_momentum():
    assert optim.normalize(optim.SGD(_params(), lr=0.1, momentum=0.8)) == ("sgd", 0.8)
    assert optim.normalize(optim.AdamW(_params(), lr=0.1)) == ("adamw", 0.0)


def test_normalize_rejects_unknown_names_and_momentum_one():
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        optim.normalize("lbfgs")
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        optim.normalize("sgd", 1.0)


def test_make_and_the_estimators_names_use_the_same_table():
    for name, cls in optim.OPTIMIZER_CLASSES.items():
        assert type(optim.make(name, _params(), 0.1)) is cls
    opt = make_optimizer("momentum", _params(), 0.1)
    assert type(opt) is optim.SGD and opt.param_groups[0]["momentum"] == 0.9
    assert type(make_optimizer("adam", _params(), 0.1)) is optim.Adam
    assert make_optimizer("sgd", _params(), 0.1).param_groups[0]["momentum"] == 0.0
    with pytest.raises(ValueError, match="unknown optimizer 'adadelta'"):
        optim.make("adadelta", _params(), 0.1)
