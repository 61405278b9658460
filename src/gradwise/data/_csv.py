"""CSV loading through pandas, with one-line errors that name the problem and the fix."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from gradwise.data._errors import DataError

__all__ = ["load_csv"]

_SHOW = 5  # how many offending lines an error message lists


def _lines(rows: np.ndarray) -> str:
    """File line numbers (1-based, the header is line 1) of data rows ``rows``."""
    shown = ", ".join(str(int(r) + 2) for r in rows[:_SHOW])
    more = f" and {len(rows) - _SHOW} more" if len(rows) > _SHOW else ""
    return f"line{'s' if len(rows) > 1 else ''} {shown}{more}"


#: Delimiters recognised besides the comma, when the header line has no comma
#: (semicolon-separated files are what spreadsheets write in locales with a decimal comma).
_OTHER_DELIMITERS = (";", "\t", "|")


def _delimiter(name: str) -> str:
    """The comma, or ``;`` / tab / ``|`` when the header line has no comma but one of those."""
    try:
        with open(name, encoding="utf-8-sig", errors="replace") as fh:
            header = fh.readline()
    except OSError:
        return ","  # pandas reports the error
    if "," in header:
        return ","
    return next((d for d in _OTHER_DELIMITERS if d in header), ",")


def header(path) -> list[str]:
    """The column names of a CSV file as :func:`load_csv` reads them (no data rows are parsed).

    Raises
    ------
    DataError
        As :func:`load_csv` for a missing, unreadable or empty file.
    """
    return [str(c) for c in _read(path, nrows=0).columns]


def _read(path, nrows: int | None = None) -> pd.DataFrame:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise DataError(f"cannot read {name}: no such file; check the path")
    if os.path.isdir(name):
        raise DataError(f"cannot read {name}: it is a directory, not a CSV file")
    try:
        df = pd.read_csv(name, sep=_delimiter(name), skipinitialspace=True, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: expected a header line and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        reason = " ".join(str(e).split())
        raise DataError(f"cannot read {name} as CSV: {reason}") from None
    if nrows is None and df.shape[0] == 0:
        raise DataError(f"{name} has a header but no data rows")
    return df


def _column(df: pd.DataFrame, col, name: str) -> str:
    cols = [str(c) for c in df.columns]
    if isinstance(col, (int, np.integer)) and not isinstance(col, bool):
        if not -len(cols) <= col < len(cols):
            raise DataError(
                f"column index {col} is out of range: {name} has {len(cols)} columns "
                f"({', '.join(cols)})"
            )
        return df.columns[col]
    if col not in df.columns:
        raise DataError(f"column {col!r} not found in {name}; available columns: {', '.join(cols)}")
    return col


def _numeric(df: pd.DataFrame, col, name: str) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64)
    num = pd.to_numeric(s, errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy() & s.notna().to_numpy())
    if len(bad):
        first = str(s.iloc[bad[0]])
        hint = ""
        if "," in first and not np.isnan(pd.to_numeric(first.replace(",", ""), errors="coerce")):
            hint = " (numbers need '.' as the decimal point and no thousands separators)"
        raise DataError(
            f"column {col!r} of {name} has non-numeric values at {_lines(bad)} "
            f"(first: {first!r}){hint}; fix or remove them, or leave the column out"
        )
    out = num.to_numpy(dtype=np.float64)
    inf = np.flatnonzero(np.isinf(out))
    if len(inf):
        raise DataError(
            f"column {col!r} of {name} has infinite values at {_lines(inf)}; "
            "replace them with finite numbers or remove those rows"
        )
    return out


def load_csv(
    path,
    target: str | int | None = None,
    features: Sequence[str | int] | None = None,
    dropna: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load a CSV file (header line first) into a feature matrix and a target.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file. The first line holds the column names.
    target : str or int, optional
        Target column, by name or position; the last column by default.
    features : sequence of str or int, optional
        Feature columns, by name or position, in this order; by default every
        column except the target.
    dropna : bool, default False
        Drop rows with a missing cell in a selected column instead of failing.

    Returns
    -------
    X : ndarray of float64, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,)
        float64, or int64 when the column holds integers, or str labels when the
        target column is not numeric (class names).
    feature_names : list of str

    Raises
    ------
    DataError
        With a one-line message for: a missing, unreadable or empty file; an
        unknown column (the available ones are listed); non-numeric feature
        values (column and first offending file lines); missing cells (column,
        lines, and the ``dropna`` remedy); a constant target; no feature column.
    """
    name = os.fspath(path)
    df = _read(path)
    tcol = _column(df, -1 if target is None else target, name)
    if features is None:
        fcols = [c for c in df.columns if c != tcol]
    else:
        fcols = [_column(df, c, name) for c in features]
        if tcol in fcols:
            raise DataError(f"column {tcol!r} is both the target and a feature; choose one")
    if not fcols:
        raise DataError(f"{name} has no feature column besides the target {tcol!r}")
    df = df[[*fcols, tcol]]
    missing = df.isna()
    if missing.to_numpy().any():
        if dropna:
            df = df[~missing.any(axis=1)]
            if df.shape[0] == 0:
                raise DataError(
                    f"every row of {name} has a missing cell; nothing left after dropna"
                )
        else:
            col = missing.any(axis=0).idxmax()
            rows = np.flatnonzero(missing[col].to_numpy())
            total = int(missing.any(axis=1).sum())
            raise DataError(
                f"missing values in column {col!r} of {name} at {_lines(rows)} "
                f"({total} incomplete row{'s' if total > 1 else ''} in total); fill them in, "
                "or use dropna=True to drop those rows"
            )
    X = np.column_stack([_numeric(df, c, name) for c in fcols]).astype(np.float64)
    ys = df[tcol]
    if pd.api.types.is_integer_dtype(ys) or pd.api.types.is_bool_dtype(ys):
        y = ys.to_numpy(dtype=np.int64)
    elif pd.api.types.is_numeric_dtype(ys):
        y = ys.to_numpy(dtype=np.float64)
    else:  # class labels given as text
        y = ys.astype(str).to_numpy(dtype=str)
    if len(y) > 1 and np.all(y == y[0]):
        raise DataError(
            f"target column {tcol!r} of {name} is constant (every value is {y[0]!r}); "
            "there is nothing to learn — choose another target column"
        )
    return X, y, [str(c) for c in fcols]
