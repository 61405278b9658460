"""gradwise._util: the one tensor -> ndarray conversion and the one number format."""

import numpy as np
import pytest

import gradwise
from gradwise._util import fmt_number, to_array


def test_to_array_shares_a_gradwise_tensors_data_also_when_it_requires_grad():
    t = gradwise.Tensor(np.arange(3.0), requires_grad=True)
    assert to_array(t) is t.data
    a = np.ones(2, dtype=np.float32)
    assert to_array(a) is a and to_array([1, 2]).tolist() == [1, 2]


def test_to_array_detaches_a_torch_tensor_and_names_a_bad_value():
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.5, -2.0], requires_grad=True)
    np.testing.assert_array_equal(to_array(t), [1.5, -2.0])
    with pytest.raises(TypeError, match="loss is not an array"):
        to_array([[1.0], [1.0, 2.0]], "loss")


def test_fmt_number_significant_digits():
    assert fmt_number(0.0088388347) == "0.008839"
    assert fmt_number(1234567.0, 6) == "1.23457e+06"
