"""gradwise.data — batches, CSV files and named datasets.

- :class:`Batches` / :func:`batch_indices`: full-batch, mini-batch and
  per-sample iteration with per-epoch shuffling from a seed.
- :func:`load_csv`: CSV → ``X, y, feature_names`` through pandas.
- :func:`load_dataset` / :func:`list_datasets`: the scenario data sets and
  scikit-learn's bundled real ones, as :class:`Dataset` records.
- :class:`DataError`: the one exception, with a one-line message.
"""

from gradwise.data._batches import Batches, batch_indices, resolve_batch_size
from gradwise.data._csv import load_csv
from gradwise.data._datasets import Dataset, list_datasets, load_dataset
from gradwise.data._errors import DataError

__all__ = [
    "Batches",
    "batch_indices",
    "resolve_batch_size",
    "load_csv",
    "Dataset",
    "list_datasets",
    "load_dataset",
    "DataError",
]
