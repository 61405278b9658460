"""The scenario scripts in examples/ run and print the scenario's numbers."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script, command-line arguments (S6's 100 000 epochs belong to the example run,
# the test runs 10 000), numbers that must appear in the output (SCENARIOS.md)
CASES = [
    ("s1_xor.py", [], ["0.008", "0.996"]),
    ("s2_linear_regression.py", [], ["5.90496", "-0.42310", "10.233128"]),
    ("s3_backward.py", [], ["5", "1"]),
    ("s4_breast_cancer.py", [], []),
    ("s5_cubic.py", [], ["2.4330e+01", "3.5592e+02", "0.00884", "1.594", "0.478966"]),
    ("s6_sgd_houses.py", ["10000"], ["1530.79"]),
]


@pytest.mark.parametrize("script,args,numbers", CASES, ids=[c[0] for c in CASES])
def test_example_runs_and_prints_the_scenario_numbers(script, args, numbers, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script, *args])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    text = out.getvalue()
    for n in numbers:
        assert n in text, (n, text[-2000:])
    if script == "s1_xor.py":
        # every other seed learns XOR: its predictions equal its targets
        lines = [ln for ln in text.splitlines() if "random_state=" in ln]
        assert len(lines) == 5
        for ln in lines:
            pred = ln.split("predictions ")[1].split("  ")[0]
            assert pred == ln.split("(targets ")[1].split(")")[0], ln
