"""CSV loading through pandas, with one-line errors that name the problem and the fix."""

from __future__ import annotations

import csv
import os
import unicodedata
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


def _layout(name: str) -> tuple[str, str, list[str]]:
    """(encoding, delimiter, header fields) of a CSV file from its first line.

    UTF-8 (with or without a byte-order mark), or UTF-16 when the file starts with
    a UTF-16 byte-order mark (what some spreadsheet exports write). The delimiter
    is the comma, or ``;`` / tab / ``|`` when the header line has no comma but one
    of those.
    """
    try:
        with open(name, "rb") as fh:
            start = fh.read(2)
    except OSError:
        return "utf-8", ",", []  # pandas reports the error
    encoding = "utf-8-sig"
    if start in (b"\xff\xfe", b"\xfe\xff"):  # a UTF-16 text header has a delimiter
        with open(name, encoding="utf-16", errors="replace", newline="") as fh:
            first = fh.readline()
        if any(d in first for d in (",", *_OTHER_DELIMITERS)):
            encoding = "utf-16"
    with open(name, encoding=encoding, errors="replace", newline="") as fh:
        first = fh.readline().rstrip("\r\n")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") and c != "\t" for c in first):
        raise DataError(f"cannot read {name} as CSV: its first line holds binary data, not text")
    sep = "," if "," in first else next((d for d in _OTHER_DELIMITERS if d in first), ",")
    fields = next(csv.reader([first], delimiter=sep, skipinitialspace=True), [])
    return ("utf-8" if encoding == "utf-8-sig" else encoding), sep, [f.strip() for f in fields]


def header(path) -> list[str]:
    """The column names of a CSV file as :func:`load_csv` reads them (no data rows are parsed).

    Raises
    ------
    DataError
        As :func:`load_csv` for a missing, unreadable or empty file.
    """
    return [str(c) for c in _read(path, nrows=0).columns]


def _check_header(name: str, fields: list[str]) -> None:
    """Refuse a first line that is not a header pandas would read correctly."""
    if fields and fields[0].startswith("#"):
        raise DataError(
            f"line 1 of {name} starts with '#': remove the comment lines so that the column "
            "names come first"
        )
    seen: dict[str, int] = {}
    for i, f in enumerate(fields):
        if f and f in seen:  # pandas would rename the second one 'f.1' silently
            raise DataError(
                f"column name {f!r} appears twice in the header of {name} (columns {seen[f] + 1} "
                f"and {i + 1}); give every column its own name"
            )
        seen[f] = i
    if fields and all(not np.isnan(pd.to_numeric(f, errors="coerce")) for f in fields):
        raise DataError(
            f"the first line of {name} ({', '.join(fields[:4])}) holds numbers, not column names; "
            "add a header line with the column names"
        )


def _read(path, nrows: int | None = None) -> pd.DataFrame:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise DataError(f"cannot read {name}: no such file; check the path")
    if os.path.isdir(name):
        raise DataError(f"cannot read {name}: it is a directory, not a CSV file")
    encoding, sep, fields = _layout(name)
    try:
        df = pd.read_csv(name, sep=sep, encoding=encoding, skipinitialspace=True, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: expected a header line and data rows") from None
    except UnicodeDecodeError as e:
        raise DataError(f"cannot read {name} as CSV: it is not UTF-8 text ({e.reason} at byte "
                        f"{e.start}); save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, OSError) as e:
        reason = " ".join(str(e).split())
        raise DataError(f"cannot read {name} as CSV: {reason}") from None
    _check_header(name, fields)
    df.columns = [str(c).strip() for c in df.columns]
    if fields and fields[0] == "" and len(df.columns) > 1:
        # a first column without a name holding 0, 1, 2, ...: the row index that
        # pandas' DataFrame.to_csv writes by default, not a feature
        first = pd.to_numeric(df.iloc[:, 0], errors="coerce").to_numpy()
        if np.array_equal(first, np.arange(len(df))):
            df = df.iloc[:, 1:]
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
        if isinstance(features, (str, bytes)):
            raise DataError(f"features must be a list of column names, got the string {features!r}; "
                            f"write [{features!r}]")
        fcols = [_column(df, c, name) for c in features]
        twice = sorted({c for c in fcols if fcols.count(c) > 1})
        if twice:
            raise DataError(f"column {twice[0]!r} is listed twice in the features; list each column once")
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
