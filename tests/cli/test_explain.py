"""`gradwise explain`: the chain-rule trace from the command line, safely parsed."""

import pytest
from typer.testing import CliRunner

from gradwise.cli import app
from gradwise.report.expression import ExpressionError, evaluate, parse_values

runner = CliRunner()


def test_s3_trace_shows_each_local_derivative_and_the_gradients():
    r = runner.invoke(app, ["explain", "q = x + y; f = q * z", "--values", "x=4,y=-3,z=5"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "q = x + y = 1" in out and "f = q * z = 5" in out
    assert "∂f/∂q = z = 5" in out and "∂f/∂z = q = 1" in out
    for line in ("df/dx = 5", "df/dy = 5", "df/dz = 1"):
        assert line in out


def test_functions_and_powers_match_the_closed_form():
    out, env = evaluate("f = exp(x) * sigmoid(x ** 2) / 2", {"x": 0.5})
    out.backward()
    import math

    s = 1 / (1 + math.exp(-0.25))
    expected = 0.5 * math.exp(0.5) * (s + 0.5 * 2 * s * (1 - s))  # d/dx [e^x σ(x²)] / 2
    assert env["x"].grad.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "expr, values, message",
    [
        ("__import__('os').system('true')", "x=1", "is not allowed"),
        ("f = __import__('os')", "x=1", "function '__import__' is not allowed"),
        ("f = x.real", "x=1", "'x.real' is not allowed"),
        ("f = [x][0]", "x=1", "is not allowed"),
        ("f = x + w", "x=1", "'w' has no value"),
        ("f = x +", "x=1", "cannot parse the expression"),
        ("import os", "x=1", "is not allowed"),
        ("f = x * 2", "x=1,y=2", "never uses it"),
        ("f = 2 * 3", "", "does not depend on any of the --values"),
        ("f = x", "x=abc", "x='abc' is not a number"),
        ("f = x", "x", "expected name=number"),
        ("f = x", "x=1,x=2", "x is given twice"),
    ],
)
def test_rejected_expressions_exit_2_with_one_line(expr, values, message):
    r = runner.invoke(app, ["explain", expr, "--values", values])
    assert r.exit_code == 2
    assert message in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gradwise: error: ")
    assert r.stdout == ""


def test_parse_values():
    assert parse_values(" x=4, y=-3 ,z=5e-1") == {"x": 4.0, "y": -3.0, "z": 0.5}
    with pytest.raises(ExpressionError, match="not finite"):
        parse_values("x=inf")
