"""The README's Python examples run as written and print what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    text = README.read_text(encoding="utf-8")
    # a ```python block, optionally followed by the ``` block of its output
    pat = re.compile(r"```python\n(.*?)```\n(?:```\n(.*?)```)?", re.S)
    return [(m.group(1), m.group(2)) for m in pat.finditer(text)]


EXAMPLES = _examples()


def test_readme_has_the_scenario_examples():
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("i", range(len(EXAMPLES)))
def test_readme_example_runs_and_prints_what_it_shows(i, tmp_path, monkeypatch):
    code, shown = EXAMPLES[i]
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README example {i}", "exec"), {"__name__": "__readme__"})
    if shown is None:
        return
    printed = out.getvalue()
    # every finding code and every number with 4+ significant digits shown must be printed
    for code_ in re.findall(r"\b(?:gradient|update|lr|convergence|data|sgd)\.[a-z_]+", shown):
        assert code_ in printed, code_
    for num in re.findall(r"\d\.\d{3,}", shown):
        if "budget" in shown and num in re.findall(r"budget (\d\.\d+)", shown):
            continue  # a timing
        assert num in printed, num
