"""Batch iteration: full batch, mini-batch and per-sample, with per-epoch shuffling.

One iteration over a :class:`Batches` object is one epoch. Shuffling draws a new
permutation from one ``numpy.random.Generator`` at the start of every epoch, so
the epochs differ from each other but a run is reproducible from its seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gradwise.data._errors import DataError

__all__ = ["Batches", "batch_indices", "resolve_batch_size"]


def resolve_batch_size(batch_size: int | None, n_samples: int) -> int:
    """The effective batch size: ``None`` means the full batch, larger sizes are
    clipped to ``n_samples``.

    Raises
    ------
    DataError
        If ``batch_size`` is not ``None`` or a positive integer.
    """
    if batch_size is None:
        return n_samples
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise DataError(
            f"batch_size must be a positive integer or None (full batch), got {batch_size!r}"
        )
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1 (1 = per-sample updates), got {batch_size}")
    return int(min(batch_size, n_samples))


def batch_indices(
    n_samples: int,
    batch_size: int | None = None,
    *,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> list[slice | np.ndarray]:
    """Index sets of the batches of one epoch.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    batch_size : int or None, default None
        Samples per batch; ``None`` is the full batch, ``1`` per-sample.
    shuffle : bool, default True
        Draw a random order from ``rng`` (ignored for the full batch, whose
        gradient does not depend on the order).
    rng : numpy.random.Generator, optional
        Source of the permutation; a fresh unseeded generator if omitted.
    drop_last : bool, default False
        Drop a last batch smaller than ``batch_size``.

    Returns
    -------
    list of slice or ndarray of int
        Slices in order when not shuffling, index arrays otherwise. Without
        ``drop_last`` every sample appears in exactly one batch.
    """
    b = resolve_batch_size(batch_size, n_samples)
    stop = n_samples - n_samples % b if drop_last else n_samples
    if not shuffle or b >= n_samples:
        return [slice(i, min(i + b, stop)) for i in range(0, stop, b)]
    perm = (rng if rng is not None else np.random.default_rng()).permutation(n_samples)
    return [perm[i : min(i + b, stop)] for i in range(0, stop, b)]


class Batches:
    """Re-iterable batches of ``(X, y)``; each pass is one epoch.

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
        Inputs. Kept as given (no copy, dtype preserved).
    y : array_like, shape (n_samples, ...), optional
        Targets; ``None`` yields ``(X_batch, None)``.
    batch_size : int or None, default None
        ``None`` = full batch (gradient descent), ``1`` = per-sample (classic
        SGD / LMS), anything else = mini-batches.
    shuffle : bool, default True
        Reshuffle at the start of every epoch (mini-batch and per-sample only).
    seed : int, numpy.random.Generator or None, default None
        Seed of the shuffling generator (``numpy.random.default_rng(seed)``).
    drop_last : bool, default False
        Drop the last, smaller batch.

    Raises
    ------
    DataError
        If ``X`` and ``y`` have different numbers of rows, ``X`` has no rows, or
        ``batch_size`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> b = Batches(np.arange(5.0)[:, None], np.arange(5.0), batch_size=2, shuffle=False)
    >>> [yb.tolist() for _, yb in b]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """

    def __init__(self, X, y=None, batch_size=None, *, shuffle=True, seed=None, drop_last=False):
        self.X = X if isinstance(X, np.ndarray) else np.asarray(X)
        self.y = None if y is None else (y if isinstance(y, np.ndarray) else np.asarray(y))
        if self.X.ndim == 0 or len(self.X) == 0:
            raise DataError(f"X must have at least one sample (row), got shape {self.X.shape}")
        if self.y is not None and len(self.y) != len(self.X):
            raise DataError(
                f"X has {len(self.X)} samples but y has {len(self.y)}; they must have one "
                "target per row of X"
            )
        self.n_samples = len(self.X)
        self.batch_size = resolve_batch_size(batch_size, self.n_samples)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n, b = self.n_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch_indices(self) -> list[slice | np.ndarray]:
        """Index sets of the next epoch (advances the shuffling generator)."""
        return batch_indices(
            self.n_samples,
            self.batch_size,
            shuffle=self.shuffle,
            rng=self.rng,
            drop_last=self.drop_last,
        )

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        X, y = self.X, self.y
        idx = self.epoch_indices()
        if idx and not isinstance(idx[0], slice):
            # one gather per epoch, then cheap contiguous views per batch
            perm = np.concatenate(idx)
            X, y = X[perm], (None if y is None else y[perm])
            sizes = np.cumsum([0] + [len(i) for i in idx])
            idx = [slice(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        for s in idx:
            yield X[s], (None if y is None else y[s])

    def __repr__(self) -> str:
        kind = (
            "full batch"
            if self.batch_size == self.n_samples
            else "per-sample"
            if self.batch_size == 1
            else f"batch_size={self.batch_size}"
        )
        return (
            f"Batches(n_samples={self.n_samples}, {kind}, shuffle={self.shuffle}, "
            f"batches_per_epoch={len(self)})"
        )
