"""The one exception type of :mod:`gradwise.data`."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad input data: a file that cannot be read, unknown columns, non-numeric
    values, missing cells, a constant target, an unknown dataset name.

    The message is always one line that names the problem and the fix, so a
    command-line tool can print ``str(error)`` as is. Subclasses ``ValueError``
    so callers that catch ``ValueError`` keep working.
    """
