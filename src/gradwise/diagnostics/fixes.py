"""Verified fixes: re-run training briefly with a finding's fix applied.

A fix is data (``{"lr": 0.0079}``, ``{"standardize": True}``, ...). Where a short
re-run is cheap, gradwise applies it and reports what happened in
``finding.verified``: a dict with a human ``summary`` ("lr 0.00796: loss 0.893 =
optimum after 1,171 steps") and the numbers (``ok``, ``steps``, ``loss_start``,
``loss_end``, ...).

Re-runs
-------
- A loss function (``diagnose(loss=..., params=...)``): gradient descent (heavy
  ball with the run's momentum) on that loss from the run's start, through the
  engine's gradient (finite differences if the loss cannot be traced).
- ``{"standardize": True}`` for a loss that is least squares of a linear model on
  ``X`` (detected by matching its optimum with :func:`numpy.linalg.lstsq`):
  gradient descent on the standardised design at ``0.9 × 2/λmax`` of that design;
  the coefficients are mapped back to the raw units.
- A fitted estimator: a clone refitted with the fix as parameters.
- A network trained by :func:`gradwise.train` (``init``, ``standardize``, ``lr``):
  a copy of the model from the run's initial parameters, re-initialised (He for
  layers before a ReLU, Glorot otherwise, zero biases) and/or on standardised
  inputs, trained with the run's optimizer type and batch size; it must end with
  a clearly lower loss and, for an activation finding, with the layer below the
  threshold.

Cost
----
Every re-run stops at a wall-clock budget. The default budget is 20% of the
fit's own time for estimators (so ``fit`` stays cheap) and, for a loss function,
20% of the estimated time of the user's run (its steps × the time of one
gradient) but at least :data:`MIN_BUDGET` seconds. A re-run on a quadratic loss
that runs out of budget before the optimum reports the remaining steps exactly
from the Hessian eigenvalues instead (:func:`gradwise.diagnostics.optimum.steps_to_tolerance`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any

import numpy as np

from gradwise._result import Finding
from gradwise._scaling import standardize, unscale_linear
from gradwise._util import fmt_number
from gradwise.diagnostics import rules
from gradwise.diagnostics.monitor import Monitor
from gradwise.diagnostics.optimum import (
    design_matrix,
    gram,
    least_squares,
    steps_to_tolerance,
    tolerance,
)
from gradwise.diagnostics.rules import Run
from gradwise.optim import ADAPTIVE, OPTIMIZER_CLASSES, make

__all__ = ["verify_fixes", "rerun", "default_budget", "BUDGET_FRACTION", "MIN_BUDGET"]

#: share of the fit's own time a verification may take
BUDGET_FRACTION = 0.2
#: floor of the budget when the fit time is unknown (a loss function given directly)
MIN_BUDGET = 1.0
#: a network fix "works" when the re-run ends below this fraction of the run's loss
NET_IMPROVEMENT = 0.5
#: a re-trained network (init, standardize) must end below this fraction of the
#: original run's final loss (a clear improvement, beyond seed-to-seed variation)
NET_LOSS_GAIN = 0.9


#: a verifying re-fit runs at least this many epochs (fewer show no trend) when they
#: take at most MIN_VERIFY_SECONDS, whatever the budget fraction allows
MIN_VERIFY_EPOCHS = 20
MIN_VERIFY_SECONDS = 0.25

def default_budget(run: Run) -> float:
    """Seconds all re-runs may take together (see module docstring)."""
    if run.fit_time is not None and run.estimator is not None:
        return BUDGET_FRACTION * run.fit_time
    est = run.fit_time
    if est is None and run.objective is not None and run.history is not None:
        t = time.perf_counter()
        run.objective.value_and_grad(run.start if run.start is not None else run.objective.x0)
        est = (time.perf_counter() - t) * len(run.history) * run.every
    return max(BUDGET_FRACTION * (est or 0.0), MIN_BUDGET)


def rerun(
    run: Run,
    lr: float,
    *,
    steps: int,
    budget: float,
    x0: np.ndarray | None = None,
) -> dict:
    """Gradient descent on ``run.objective`` from ``x0`` (default: the run's start).

    Stops after ``steps`` steps, at the budget, at a non-finite loss, or (for a
    quadratic loss) once within the optimum's tolerance.

    Returns
    -------
    dict
        ``steps``, ``loss_start``, ``loss_end``, ``finite``, ``reached`` (quadratic
        only), ``seconds``, ``x`` (final flat parameters).
    """
    obj = run.objective
    if x0 is None:
        x0 = run.start if run.start is not None else obj.x0
    x = np.array(x0, dtype=float)
    vel = np.zeros_like(x)
    q = run.quadratic
    tol = tolerance(q) if q is not None else None
    t0 = time.perf_counter()
    f0 = f = None
    reached = False
    k = 0
    with np.errstate(all="ignore"):
        for k in range(1, steps + 1):  # noqa: B007 - k is the step count after the loop
            f, g = obj.value_and_grad(x)
            if f0 is None:
                f0 = f
            if not (math.isfinite(f) and np.all(np.isfinite(g))):
                break
            vel = run.momentum * vel + g
            x = x - lr * vel
            if tol is not None and np.linalg.norm(x - q["x"]) <= tol:
                reached = True
                break
            if time.perf_counter() - t0 > budget:
                break
        f_end = obj.value(x) if np.all(np.isfinite(x)) else math.nan
    return {"steps": k, "loss_start": f0, "loss_end": f_end, "finite": math.isfinite(f_end),
            "reached": reached if q is not None else None,
            "seconds": time.perf_counter() - t0, "x": x}


def _verify_lr(f: Finding, run: Run, budget: float) -> dict | None:
    if run.objective is None or run.adaptive:
        return None
    lr = float(f.fix["lr"])
    n_user = (len(run.history) * run.every) if run.history is not None else 1000
    want = f.fix.get("epochs")
    steps = int(want * run.steps_per_epoch) if want else max(n_user, 1)
    if run.quadratic is not None:
        steps = max(steps, 10 ** 7)  # run to the optimum, bounded by the budget
    out = rerun(run, lr, steps=steps, budget=budget)
    q = run.quadratic
    s = {"lr": lr, "steps": out["steps"], "loss_start": out["loss_start"],
         "loss_end": out["loss_end"], "seconds": out["seconds"], "method": "re-run"}
    if q is not None:
        s["optimum_loss"] = q["loss"]
        if out["reached"]:
            s.update(ok=True, reached=True,
                     summary=f"lr {lr:.4g}: loss {out['loss_end']:.6g} = optimum after "
                             f"{out['steps']:,} steps (re-run)")
        else:
            e = out["x"] - q["x"]
            more = steps_to_tolerance(q["eigenvalues"], q["eigenvectors"], e, lr, tolerance(q),
                                      run.momentum) if out["finite"] else math.inf
            total = out["steps"] + more
            ok = math.isfinite(total)
            s.update(ok=ok, reached=False, steps_predicted=total,
                     summary=(f"lr {lr:.4g}: loss {out['loss_start']:.6g} -> {out['loss_end']:.6g} "
                              f"in {out['steps']:,} steps (re-run, budget {budget:.2g} s); the "
                              f"optimum {q['loss']:.6g} is reached after {_n(total)} steps "
                              "(exact for this quadratic)") if ok else
                             f"lr {lr:.4g}: does not converge (re-run)")
        return s
    last = float(run.history[-1]) if run.history is not None and len(run.history) else math.inf
    finite_last = last if math.isfinite(last) else out["loss_start"]
    ok = bool(out["finite"] and out["loss_end"] < out["loss_start"]
              and (f.code != "lr.too_low" or out["loss_end"] < NET_IMPROVEMENT * finite_last))
    s.update(ok=ok, summary=f"lr {lr:.4g}: loss {out['loss_start']:.6g} -> {out['loss_end']:.6g} "
                            f"after {out['steps']:,} steps (re-run"
                            + (", budget reached" if out["steps"] < steps else "") + ")")
    return s


def _n(x: float) -> str:
    return f"{int(x):,}" if math.isfinite(x) else "never"


def _linear_map(run: Run) -> tuple[np.ndarray, float, Any] | None:
    """If the quadratic loss is least squares of a linear model (with intercept) on
    ``run.X``, return (perm, scale, ols): user flat index i holds OLS entry perm[i];
    the user's loss = scale × MSE."""
    q = run.quadratic
    if q is None or run.X is None or run.y is None:
        return None
    try:
        ols = least_squares(run.X, run.y)
    except ValueError:
        return None
    sol = np.append(np.ravel(ols["coef"]), np.ravel(ols["intercept"]))
    xs = q["x"]
    if len(sol) != len(xs) or ols["loss"] <= 0:
        return None
    perm = []
    for v in xs:
        j = np.flatnonzero(np.isclose(sol, v, rtol=1e-6, atol=1e-9 * (1 + np.abs(sol).max())))
        j = [i for i in j if i not in perm]
        if not j:
            return None
        perm.append(j[0])
    return np.array(perm), q["loss"] / ols["loss"], ols


def _verify_standardize(f: Finding, run: Run, budget: float) -> dict | None:
    m = _linear_map(run)
    if m is None:
        return None
    perm, scale, ols = m
    X = np.asarray(run.X, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    Zs, mu, sd = standardize(X)
    Z = design_matrix(Zs)
    y = np.asarray(run.y, dtype=float)
    n = len(Z)
    H = 2 * scale * gram(Z)
    ev = np.linalg.eigvalsh(H)
    lr = float(f.fix.get("lr") or 0.9 * 2 / ev[-1])
    sol = np.append(np.ravel(ols["coef"]), np.ravel(ols["intercept"]))
    # standardised GD converges in a few dozen steps: aim 100x tighter than the
    # "reached" tolerance so the reported coefficients show all printed digits
    tol = tolerance(run.quadratic)
    phi = np.zeros(Z.shape[1])
    t0 = time.perf_counter()
    k = 0
    raw = None
    for k in range(1, 10 ** 6):  # noqa: B007 - k is the step count after the loop
        g = 2 * scale * Z.T @ (Z @ phi - y) / n
        phi = phi - lr * g
        raw = np.append(*unscale_linear(phi[:-1], phi[-1], mu, sd))
        if np.linalg.norm(raw - sol) <= tol / 100 or time.perf_counter() - t0 > budget:
            break
    loss = scale * float(np.mean((Z @ phi - y) ** 2))
    ok = bool(np.linalg.norm(raw - sol) <= tol)
    coef_user = raw[perm]
    return {"ok": ok, "lr": lr, "steps": k, "loss_end": loss, "optimum_loss": run.quadratic["loss"],
            "params": coef_user, "method": "re-run on standardised features",
            "seconds": time.perf_counter() - t0,
            "summary": (f"standardised features, lr {lr:.3g}: loss {loss:.6g} = optimum after "
                        f"{k:,} steps; parameters in raw units "
                        f"{np.array2string(coef_user, precision=6, separator=', ')}") if ok else
                       f"standardised features, lr {lr:.3g}: loss {loss:.6g} after {k:,} steps"}


def _verify_estimator(f: Finding, run: Run, budget: float) -> dict | None:
    est = run.estimator
    Xf, yf = run.cache.get("refit_data", (run.X, run.y))
    if est is None or Xf is None or not hasattr(est, "get_params"):
        return None
    params = est.get_params()
    fix = {k: v for k, v in f.fix.items() if k in params}
    if not fix or len(fix) != len(f.fix):
        return None
    per_epoch = (run.fit_time or 0.0) / max(1, params.get("epochs") or 1)
    want = int(fix.get("epochs", params.get("epochs") or 1))
    affordable = int(budget / per_epoch) if per_epoch > 0 else want
    # a re-fit of a run or two verifies nothing: a cheap run gets at least
    # MIN_VERIFY_EPOCHS epochs when they fit in MIN_VERIFY_SECONDS
    floor = min(want, MIN_VERIFY_EPOCHS)
    if affordable < floor and floor * per_epoch <= MIN_VERIFY_SECONDS:
        affordable = floor
    epochs = max(1, min(want, affordable))
    new = {**params, **fix, "epochs": epochs}
    if "diagnose" in new:
        new["diagnose"] = False
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the outcome is reported, not warned about
            clone = type(est)(**new).fit(Xf, yf)
    except Exception as e:  # noqa: BLE001 - a failing fix is an outcome, reported as such
        return {"ok": False, "summary": f"re-fit with {fix} failed: {e}"}
    res = getattr(clone, "result_", None)
    lc = np.asarray(res["loss_curve"]) if res is not None else np.array([])
    loss = float(lc[-1]) if len(lc) else math.nan
    out = {"fix": fix, "epochs": epochs, "loss_end": loss, "seconds": time.perf_counter() - t0,
           "method": "re-fit", "partial": epochs < want}
    q = run.quadratic
    model = getattr(clone, "model_", None)
    if (out["partial"] and q is not None and run.objective is not None and model is not None
            and set(fix) <= {"lr", "epochs"} and math.isfinite(loss)):
        # the budget ended the re-fit early: finish the count exactly on the quadratic
        x = run.objective.flat({n: p.data for n, p in model.named_parameters()})
        more = steps_to_tolerance(q["eigenvalues"], q["eigenvectors"], x - q["x"],
                                  float(fix.get("lr", params.get("lr"))), tolerance(q),
                                  run.momentum) / run.steps_per_epoch
        total = epochs + more
        out.update(ok=math.isfinite(total), epochs_predicted=total,
                   summary=(f"{_fmt_fix(fix)}: loss {first_loss(res):.6g} -> {loss:.6g} in "
                            f"{epochs:,} epochs (re-fit, budget {budget:.2g} s); the optimum "
                            f"{q['loss']:.6g} is reached after {_n(math.ceil(total))} epochs "
                            "(exact for this quadratic)"))
        return out
    ref = run.cache.get("reference")
    if ref is not None and hasattr(clone, "coef_"):
        got = np.append(np.ravel(clone.coef_), np.ravel(getattr(clone, "intercept_", [])))
        want_x = np.append(np.ravel(ref["coef"]), np.ravel(ref["intercept"]))
        if got.shape == want_x.shape:
            d = float(np.linalg.norm(got - want_x))
            tol = 1e-3 * max(1.0, float(np.linalg.norm(want_x)))
            out.update(distance=d, optimum_loss=ref["loss"], params=got)
            if d <= tol:
                out.update(ok=True, summary=f"{_fmt_fix(fix)}: loss {loss:.6g} = optimum after "
                                            f"{epochs:,} epochs")
                return out
    before = _run_loss(run)
    # the fix helps if the re-fit ends below the run and its own loss falls
    out["ok"] = bool(math.isfinite(loss) and loss < before and loss <= first_loss(res))
    out["summary"] = (f"{_fmt_fix(fix)}: loss {first_loss(res):.6g} -> {loss:.6g} in {epochs:,} "
                      f"epochs (re-fit; the run ended at "
                      f"{before:.6g})" + (f", {out['distance']:.3g} from the optimum"
                                          if "distance" in out else ""))
    return out


def _run_loss(run: Run) -> float:
    """The loss at the end of the run on all the data (else its last finite logged loss)."""
    if math.isfinite(run.cache.get("final_loss", math.nan)):  # probes ran on a subsample
        return run.cache["final_loss"]
    if run.objective is not None:
        try:
            v = run.objective.value(run.objective.x0)
            if math.isfinite(v):
                return v
        except (FloatingPointError, OverflowError, ValueError):
            pass
    return _last_finite(run.history)


def first_loss(res: Any) -> float:
    """First epoch loss of a TrainResult (NaN if none)."""
    lc = np.asarray(res["loss_curve"]) if res is not None else np.array([])
    return float(lc[0]) if len(lc) else math.nan


def _last_finite(history: Any) -> float:
    h = np.asarray(history if history is not None else [], dtype=float)
    h = h[np.isfinite(h)]
    return float(h[-1]) if len(h) else math.inf


def _fmt_fix(fix: dict) -> str:
    return ", ".join(f"{k} {fmt_number(v) if isinstance(v, float) else v}" for k, v in fix.items())


def verify_fixes(findings: list[Finding], run: Run, budget: float | None = None) -> float:
    """Fill ``finding.verified`` for every finding whose fix can be re-run cheaply.

    Parameters
    ----------
    findings : list of Finding
        Modified in place.
    run : Run
    budget : float, optional
        Seconds for all re-runs together (default :func:`default_budget`); shared
        equally among the fixes to verify. Identical fixes are run once.

    Returns
    -------
    float
        Seconds spent.
    """
    todo = [f for f in findings if f.fix and f.severity != "info"]
    if not todo:
        return 0.0
    if budget is None:
        budget = default_budget(run)
    t0 = time.perf_counter()
    done: dict[str, dict | None] = {}
    each = budget / len(todo)
    for f in todo:
        key = repr(sorted(f.fix.items()))
        if f.code.startswith("activations."):
            key += f.code + str(f.location)  # its own check of the layer after the fix
        if key not in done:
            done[key] = _verify_one(f, run, each)
        if done[key] is not None:
            f.verified = dict(done[key])
            f.verified.pop("x", None)
    return time.perf_counter() - t0


def _retrain(run: Run, fix: dict, budget: float) -> dict:
    """Train a copy of ``run.model`` from the run's initial parameters with ``fix``
    applied, for at most as many epochs as the run and at most ``budget`` seconds."""
    import gradwise
    from gradwise.nn import init as nn_init

    model = copy.deepcopy(run.model)
    named = dict(model.named_parameters())
    for n, v in (run.initial_params or {}).items():
        if n in named and np.shape(v) == named[n].data.shape:
            named[n].data[...] = v
    X = np.asarray(run.X, dtype=float)
    if fix.get("standardize"):
        X = standardize(X)[0]
    if "init" in fix:
        kinds = rules._layer_kinds(run)
        rng = np.random.default_rng(0)
        for name, kind in kinds.items():
            w = named[name]
            if kind == "relu":
                nn_init.kaiming_normal_(w, nonlinearity="relu", rng=rng)
            else:
                nn_init.xavier_normal_(w, rng=rng)
            b = named.get(name[: -len("weight")] + "bias")
            if b is not None:
                b.data[...] = 0.0
    lr = float(fix.get("lr", run.lr))
    params = [p for p in model.parameters() if p.requires_grad]
    # re-run with the run's own method, defaults but lr (run.optimizer is normalized:
    # "sgd" or adaptive; Adam stands in for the torch-only Adadelta and NAdam)
    name = run.optimizer if run.optimizer in OPTIMIZER_CLASSES else "adam"
    opt = make(name, params, lr, momentum=run.momentum)
    n_hist = len(run.history) if run.history is not None else 100
    epochs = max(1, int(fix.get("epochs") or round(n_hist * run.every / run.steps_per_epoch)))
    t0 = time.perf_counter()

    class _Budget:
        def on_step_end(self, state):
            if time.perf_counter() - t0 > budget:
                state.stop = True

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gradwise.train(model, run.loss_fn, opt, (X, run.y), epochs, batch_size=run.batch_size,
                             callbacks=[_Budget()], progress=False, seed=0)
    with gradwise.no_grad():
        loss = float(np.asarray(run.loss_fn(model(X), run.y).data))
    stats = Monitor().probe(model, X)
    return {"loss_end": loss, "epochs": int(res.n_epochs), "activations": stats,
            "seconds": time.perf_counter() - t0, "partial": res.n_epochs < epochs}


def _verify_network(f: Finding, run: Run, budget: float) -> dict | None:
    if (run.model is None or run.loss_fn is None or run.X is None or run.y is None
            or not set(f.fix) <= {"lr", "init", "standardize", "epochs"}):
        return None
    if not run.initial_params and "init" not in f.fix:
        return None  # no start to re-train from (give params0 or a Monitor)
    before = _run_loss(run)
    try:
        out = _retrain(run, f.fix, budget)
    except Exception as e:  # noqa: BLE001 - a failing fix is an outcome, reported as such
        return {"ok": False, "summary": f"re-training with {f.fix} failed: {e}"}
    ok = bool(math.isfinite(out["loss_end"]) and out["loss_end"] < NET_LOSS_GAIN * before)
    extra = ""
    layer_check = {"activations.saturated": ("saturated", rules.SATURATED_MAX),
                   "activations.dead_relu": ("dead", rules.DEAD_MAX)}.get(f.code)
    if layer_check is not None and f.location:  # the re-run must also cure the layer
        stat, limit = layer_check
        frac = out["activations"].get(f.location.split(" ", 1)[-1], {}).get(stat)
        if frac is not None:
            ok = ok and frac <= limit
            extra = f", {100 * frac:.3g}% {stat}"
    out.update(ok=ok, loss_before=before, method="re-train",
               summary=f"{_fmt_fix(f.fix)}: loss {out['loss_end']:.4g} after {out['epochs']:,} "
                       f"epochs (was {before:.4g}){extra}"
                       + (" (budget reached)" if out["partial"] else ""))
    out.pop("activations")
    return out


def _verify_one(f: Finding, run: Run, budget: float) -> dict | None:
    if run.estimator is not None:
        return _verify_estimator(f, run, budget)
    if run.model is not None and run.network:
        return _verify_network(f, run, budget)
    if set(f.fix) <= {"lr", "epochs"} and run.optimizer not in ADAPTIVE:
        return _verify_lr(f, run, budget)
    if f.fix.get("standardize"):
        return _verify_standardize(f, run, budget)
    return None
