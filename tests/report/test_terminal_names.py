"""The terminal report names a parameter entry by its multi-index (``W[1, 2]``)."""

import numpy as np
from rich.console import Console

from gradwise.report.jsonreport import parameter_blocks
from gradwise.report.terminal import _parameter_rows


def _text(table) -> str:
    console = Console(record=True, width=120)
    console.print(table)
    return console.export_text()


def test_matrix_entries_are_named_by_row_and_column():
    W = np.arange(6.0).reshape(2, 3) + 0.5
    report = {"model": {}, "parameters": parameter_blocks({"W": W, "b": np.array([7.25, 8.25])}),
              "optimum": None}
    rows = [ln.rsplit(maxsplit=1) for ln in _text(_parameter_rows(report)).splitlines() if "[" in ln]
    lines = {name.strip(): float(value) for name, value in rows}
    assert lines["W[1, 2]"] == W[1, 2] and lines["W[0, 1]"] == W[0, 1]
    assert lines["b[1]"] == 8.25
    assert "W[5]" not in lines and len(lines) == 8
