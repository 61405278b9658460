"""``gradwise demo``: the scenarios of SCENARIOS.md with their original settings.

Each scenario is the user's own program — with the fault they had — written
here in plain NumPy and handed to gradwise's checkers and diagnosis the way a
user would: :func:`gradwise.check_step` for update code (S1, S6),
:func:`gradwise.check_backward` for a layer's backward (S4),
:func:`gradwise.diagnose` for a training run (S2, S5), and
:func:`gradwise.explain` for the chain rule (S3). :func:`run_scenario` returns
what gradwise found and whether it is the scenario's known fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SCENARIOS", "Scenario", "Outcome", "select", "run_scenario", "render"]


@dataclass(frozen=True)
class Scenario:
    """One scenario: id, title, the user's setting, and the finding gradwise must produce."""

    sid: str
    title: str
    setting: str
    expected: str
    location: str | None
    run: Callable[[], tuple[Any, list[str]]]


@dataclass
class Outcome:
    """What gradwise reported for a scenario."""

    scenario: Scenario
    result: Any
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """True when the expected finding (at the expected location) was reported."""
        s = self.scenario
        if s.expected == "explain":  # S3 has no fault: the right gradients are the answer
            return self.result.get("grads") == [5.0, 5.0, 1.0]
        return any(
            f.code == s.expected and (s.location is None or f.location == s.location)
            for f in self.result.findings
        )


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- S1
def _s1_loss(params, X, y):
    """Sum of squared errors of sigmoid(w · sigmoid(W x)) over the given rows."""
    H = _sigmoid(X @ params["W"].T)  # (n, 3)
    out = _sigmoid(H @ params["w"].T)[:, 0]
    return float(np.sum((out - y) ** 2))


def _s1_step(params, X, y, lr=0.01):
    """The user's epoch: w from all samples, then W — but W's gradient is
    *assigned* in the per-sample loop, so only the last sample counts."""
    W, w = params["W"].copy(), params["w"].copy()
    gw = np.zeros_like(w)
    for x, t in zip(X, y):
        h = _sigmoid(W @ x)
        o = _sigmoid(w @ h)
        gw += (2 * (o - t) * o * (1 - o)) * h
    w = w - lr * gw
    for x, t in zip(X, y):
        h = _sigmoid(W @ x)
        o = _sigmoid(w @ h)
        delta = 2 * (o - t) * o * (1 - o)
        gW = np.outer(delta * w[0] * h * (1 - h), x)  # fault: '=' where '+=' was meant
    W = W - lr * gW
    return {"W": W, "w": w}


def _s1():
    import gradwise

    X = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=float)
    y = np.array([0, 0, 1, 1], dtype=float)
    np.random.seed(0)  # the scenario's legacy global seed
    params = {"W": np.random.rand(3, 3), "w": np.random.rand(1, 3)}
    res = gradwise.check_step(_s1_step, _s1_loss, params, X, y, lr=0.01)
    return res, ["per-epoch update of a 3-3-1 sigmoid network on XOR, lr 0.01, SSE loss"]


# --------------------------------------------------------------------------- S2 / S5
def _gd(X, y, theta, lr, steps):
    """Plain full-batch gradient descent on the MSE, as the users wrote it; the loss log."""
    log = []
    for _ in range(steps):
        r = X @ theta - y
        log.append(float(np.mean(r**2)))
        theta = theta - lr * (2 / len(y)) * (X.T @ r)
    return theta, log


def _diagnose_gd(X, y, theta0, lr, steps):
    """Run the user's loop on the design ``X`` (features, then a column of ones)
    and diagnose it: their loss, final parameters, learning rate and loss log,
    and the features (without the ones column) for the conditioning check."""
    import gradwise

    theta0 = np.asarray(theta0, dtype=float)
    theta, log = _gd(X, y, theta0, lr, steps)
    loss = lambda th: np.mean((X @ th - y) ** 2)
    res = gradwise.diagnose(loss=loss, params=theta, params0=theta0, lr=lr, history=log, X=X[:, :-1], y=y)
    return res, theta, log


def _s2():
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=False)
    x, y = d.data[:, 2], d.target.astype(float)
    X = np.column_stack([x, np.ones_like(x)])  # theta = (m, c)
    res, theta, log = _diagnose_gd(X, y, [0.0, 0.0], 1e-4, 1000)
    return res, [
        "y ≈ m·bmi + c on scikit-learn's diabetes data (raw units), full-batch GD, lr 1e-4, 1000 epochs",
        f"the user's result: m = {theta[0]:.5f}, c = {theta[1]:.5f}, MSE {log[-1]:.2f}",
    ]


def _s5():
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 100)
    y = 0.5 * x**3 - 1.2 * x**2 - 2 * x + 1 + rng.normal(0, 1, 100)
    X = np.column_stack([x**3, x**2, x, np.ones_like(x)])
    res, _, log = _diagnose_gd(X, y, [0.02, 0.001, 0.002, -0.04], 0.01, 100)
    return res, [
        "cubic a·x³ + b·x² + c·x + d by gradient descent on the MSE, lr 0.01, 100 steps",
        "cost every 10 steps: " + ", ".join(f"{v:.4g}" for v in log[::10][:4]) + ", ...",
    ]


# --------------------------------------------------------------------------- S3
def _s3():
    import gradwise

    x, y, z = (gradwise.Tensor(v, requires_grad=True, name=n) for v, n in ((4.0, "x"), (-3.0, "y"), (5.0, "z")))
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    text = gradwise.explain(f)
    f.backward()
    grads = [float(t.grad.item()) if t.grad is not None else float("nan") for t in (x, y, z)]
    from gradwise._result import Result

    return Result(grads=grads), [text, f"df/dx, df/dy, df/dz = {grads} (expected [5, 5, 1])"]


# --------------------------------------------------------------------------- S4
def _s4_forward(x, params):
    """A Dense layer with sigmoid activation."""
    return _sigmoid(x @ params["W"] + params["b"])


def _s4_backward(upstream, x, params):
    """The user's backward: the derivative of the sigmoid is taken at the upstream
    gradient instead of at the layer's pre-activation, and the bias gradient is the
    upstream gradient instead of the local delta."""
    delta = upstream * _sigmoid(upstream) * (1 - _sigmoid(upstream))  # fault 1
    return {
        "W": x.T @ delta,
        "b": upstream.sum(axis=0),  # fault 2
        "x": delta @ params["W"].T,
    }


def _s4():
    from sklearn.datasets import load_breast_cancer

    import gradwise

    X = load_breast_cancer().data[:8]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(0, 0.3, (30, 16)), "b": np.zeros(16)}
    res = gradwise.check_backward(_s4_forward, _s4_backward, X, params, layer="layer 1")
    return res, ["first Dense layer (30→16, sigmoid) of the user's 30-16-1 network on breast-cancer rows"]


# --------------------------------------------------------------------------- S6
def _s6_step(theta, X, y, lr=0.1):
    """The user's per-sample SGD epoch — the loop stops one short."""
    theta = theta.copy()
    for i in range(len(y) - 1):  # fault: should be range(len(y))
        theta = theta - lr * (X[i] @ theta - y[i]) * X[i]
    return theta


def _s6_loss(theta, X, y):
    return float(0.5 * np.sum((X @ theta - y) ** 2))


def _s6():
    import gradwise

    raw = np.array([[1, 2104, 3], [1, 1600, 3], [1, 2400, 3], [1, 1416, 2], [1, 3000, 4]], dtype=float)
    X = raw / raw.sum(axis=0)  # every column (the bias too) divided by its sum
    y = np.array([400, 330, 369, 232, 540], dtype=float)
    res = gradwise.check_step(_s6_step, _s6_loss, np.array([0.0, 0.5, 0.5]), X, y, lr=0.1)
    return res, ["one epoch of per-sample SGD on five houses, lr 0.1"]


SCENARIOS: dict[str, Scenario] = {
    s.sid: s
    for s in (
        Scenario("S1", "XOR network that will not learn", "check_step on the user's epoch update",
                 "update.last_sample_only", "W", _s1),
        Scenario("S2", "Linear regression disagrees with scikit-learn", "diagnose the user's run",
                 "convergence.not_reached", None, _s2),
        Scenario("S3", "What does backward() compute?", "explain the chain rule", "explain", None, _s3),
        Scenario("S4", "Layered network whose loss increases", "check_backward on the user's Dense layer",
                 "gradient.mismatch", None, _s4),
        Scenario("S5", "Cubic fit: the cost explodes", "diagnose the user's run", "lr.too_high", None, _s5),
        Scenario("S6", "SGD stuck above the minimum", "check_step on the user's SGD epoch",
                 "update.skipped_samples", None, _s6),
    )
}


def select(ids: list[str]) -> list[str]:
    """Normalise scenario ids (``s2`` → ``S2``); all of them when ``ids`` is empty.

    Raises
    ------
    ValueError
        For an unknown id (the message lists the known ones).
    """
    out = []
    for i in ids:
        sid = i.strip().upper()
        if sid not in SCENARIOS:
            raise ValueError(f"unknown scenario {i!r}; choose from {', '.join(SCENARIOS)}")
        out.append(sid)
    return out or list(SCENARIOS)


def run_scenario(sid: str) -> Outcome:
    """Run scenario ``sid`` (``"S1"`` … ``"S6"``) and return what gradwise found."""
    result, notes = SCENARIOS[sid].run()
    return Outcome(SCENARIOS[sid], result, notes)


def render(outcome: Outcome, console) -> None:
    """Print a scenario's setting, gradwise's findings and whether the known fault was found."""
    from rich.rule import Rule
    from rich.text import Text

    from gradwise.report.terminal import render_findings

    s = outcome.scenario
    console.print(Rule(Text(f"{s.sid}  {s.title}", style="bold"), align="left"))
    console.print(Text(f"{s.setting}", style="dim"))
    for note in outcome.notes:
        console.print(Text(note))
    if s.expected != "explain":
        render_findings(outcome.result.findings, console)
    where = f" at {s.location}" if s.location else ""
    mark = Text("found", style="bold green") if outcome.found else Text("NOT FOUND", style="bold red")
    console.print(Text.assemble("expected ", (s.expected + where, "bold"), ": ", mark))
