"""`gradwise demo`: every scenario's known fault is found with the scenario's numbers."""

import pytest
from typer.testing import CliRunner

from gradwise.cli import app
from gradwise.report import demo


def _codes(outcome):
    return [(f.code, f.location) for f in outcome.result.findings]


def test_s1_last_sample_only_for_W_and_w_clean():
    o = demo.run_scenario("S1")
    assert o.found, _codes(o)
    assert all(f.location != "w" for f in o.result.findings if f.severity == "fault")


def test_s2_not_converged_with_the_ols_line():
    o = demo.run_scenario("S2")
    assert o.found, _codes(o)
    codes = [c for c, _ in _codes(o)]
    assert "data.ill_conditioned" in codes
    assert "m = 5.90496, c = -0.42310" in o.notes[1]


def test_s3_gradients_are_5_5_1_and_the_trace_is_shown():
    o = demo.run_scenario("S3")
    assert o.found and o.result.grads == [5.0, 5.0, 1.0]
    assert "∂f/∂q = z = 5" in o.notes[0]


def test_s4_wrong_weight_and_bias_blocks_of_the_layer():
    o = demo.run_scenario("S4")
    assert o.found
    wrong = {loc for code, loc in _codes(o) if code == "gradient.mismatch"}
    assert {"layer 1: W", "layer 1: b"} <= wrong


def test_s5_lr_above_the_stability_limit():
    o = demo.run_scenario("S5")
    assert o.found, _codes(o)
    assert "24.33, 355.9, 3.729e+04, 3.942e+06" in o.notes[1]


def test_s6_sample_4_never_used():
    o = demo.run_scenario("S6")
    assert o.found, _codes(o)
    (f,) = [f for f in o.result.findings if f.code == "update.skipped_samples"]
    assert f.evidence["samples"] == [4]


def test_cli_demo_selected_scenarios_exit_0():
    r = CliRunner().invoke(app, ["demo", "s3", "S4"])
    assert r.exit_code == 0, r.output
    assert "S3" in r.output and "S4" in r.output and r.output.count("found") >= 2


def test_cli_demo_unknown_scenario_exit_2():
    r = CliRunner().invoke(app, ["demo", "S9"])
    assert r.exit_code == 2 and "unknown scenario 'S9'; choose from S1, S2, S3, S4, S5, S6" in r.stderr


@pytest.mark.parametrize("ids, expected", [([], list(demo.SCENARIOS)), (["s2", " S5 "], ["S2", "S5"])])
def test_select(ids, expected):
    assert demo.select(ids) == expected
