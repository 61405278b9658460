import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.data import Batches, DataError, batch_indices


@settings(deadline=None, derandomize=True, max_examples=60)
@given(
    n=st.integers(1, 60),
    batch_size=st.one_of(st.none(), st.integers(1, 70)),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_sample_visited_exactly_once_per_epoch(n, batch_size, shuffle, seed):
    X = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 2))
    y = np.arange(n)
    loader = Batches(X, y, batch_size, shuffle=shuffle, seed=seed)
    for _ in range(3):
        seen = []
        count = 0
        for Xb, yb in loader:
            np.testing.assert_array_equal(Xb[:, 0], yb)  # rows stay paired with targets
            assert len(yb) <= (n if batch_size is None else batch_size)
            seen.append(yb)
            count += 1
        assert count == len(loader)
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(n))


def test_no_shuffle_keeps_order_and_per_sample_batches():
    X = np.arange(5.0)[:, None]
    batches = [xb[:, 0].tolist() for xb, _ in Batches(X, None, 1, shuffle=False)]
    assert batches == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    sizes = [len(xb) for xb, _ in Batches(X, None, 2, shuffle=False)]
    assert sizes == [2, 2, 1]


def test_full_batch_is_the_array_itself():
    X = np.arange(6.0).reshape(3, 2)
    ((xb, yb),) = list(Batches(X, np.zeros(3)))
    assert np.shares_memory(xb, X)


def test_shuffle_reproducible_from_seed_and_differs_between_epochs():
    X = np.arange(20.0)[:, None]

    def order(loader):
        return np.concatenate([xb[:, 0] for xb, _ in loader])

    a, b = Batches(X, None, 4, seed=7), Batches(X, None, 4, seed=7)
    e1, e2 = order(a), order(a)
    np.testing.assert_array_equal(e1, order(b))
    np.testing.assert_array_equal(e2, order(b))
    assert not np.array_equal(e1, e2)
    assert not np.array_equal(e1, np.arange(20.0))


def test_drop_last():
    idx = batch_indices(7, 3, shuffle=False, drop_last=True)
    assert [(s.start, s.stop) for s in idx] == [(0, 3), (3, 6)]
    assert len(Batches(np.zeros((7, 1)), batch_size=3, drop_last=True)) == 2


def test_dtype_preserved():
    X = np.ones((4, 2), dtype=np.float32)
    for xb, _ in Batches(X, None, 2, seed=0):
        assert xb.dtype == np.float32


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", True])
def test_bad_batch_size(bad):
    with pytest.raises(DataError, match="batch_size"):
        Batches(np.zeros((4, 1)), None, bad)


def test_length_mismatch_and_empty():
    with pytest.raises(DataError, match="X has 4 samples but y has 3"):
        Batches(np.zeros((4, 1)), np.zeros(3))
    with pytest.raises(DataError, match="at least one sample"):
        Batches(np.zeros((0, 2)))
