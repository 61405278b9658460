"""``diagnose``: why a training run explodes, bounces or stalls — with numbers and a
verified fix.

Three ways in:

1. a gradwise training result (``diagnose(result, model=..., loss_fn=..., X=..., y=...)``,
   or automatically as ``estimator.diagnosis_`` after ``fit``);
2. a user's loss function, parameters and learning rate, optionally with the
   loss history of their own loop (``diagnose(loss=f, params=p, lr=0.01, history=h)``);
3. a printed loss log alone (``diagnose(history=[24.33, 355.9, ...], every=10, lr=0.01)``):
   the growth rate gives λmax and so the bound.

The probes (curvature, reference optimum, activation statistics) are collected
into a :class:`~gradwise.diagnostics.rules.Run`; :mod:`~gradwise.diagnostics.rules`
turns them into findings and :mod:`~gradwise.diagnostics.fixes` verifies the fixes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from gradwise._result import Result, jsonable
from gradwise.diagnostics import fixes, rules
from gradwise.diagnostics.curvature import (
    Objective,
    check_objective,
    critical_lr,
    spectrum,
)
from gradwise.diagnostics.monitor import Monitor
from gradwise.diagnostics.optimum import quadratic_optimum
from gradwise.optim import normalize

__all__ = ["diagnose", "Diagnosis", "model_objective"]

#: the reference optimum by Newton's method is attempted up to this many parameters
#: (n Hessian-vector products)
QUADRATIC_MAX_PARAMS = 200
#: a network's curvature and activations are probed on at most this many rows (a
#: fixed random subsample): the Hessian of a mean loss is a sample average, so
#: its λmax is estimated to a few percent, and a probe on 60 000 rows would cost
#: more than the fit
PROBE_SAMPLES = 1024


class Diagnosis(Result):
    """What :func:`diagnose` found (a :class:`~gradwise.Result`).

    Keys
    ----
    findings : list of Finding
        Each with ``code``, ``severity``, ``message``, ``evidence``, ``fix``,
        ``location`` and, where a re-run checked the fix, ``verified``.
    lr, optimizer, momentum : the step that was diagnosed.
    lambda_max, lambda_min, condition : curvature at the run's start for a
        diverged or blown-up network (its end point says nothing about the step
        that blew it up), else at its final point (None when no loss function was
        available).
    lambda_max_end : float or None
        λmax at the final point when ``lambda_max`` was measured at the start.
    bound : float or None
        Largest stable learning rate for that optimizer (None for adaptive ones).
    optimum : dict or None
        Reference optimum (parameters and loss) when one exists.
    reference : dict or None
        The ``reference`` passed to :func:`diagnose` (the model's own optimum in the
        user's units, see there), JSON-safe.
    growth : float or None
        Observed asymptotic loss factor per step.
    jump : float or None
        Largest loss factor between two logged losses (per step) when the loss blew
        up above its start (see :func:`gradwise.diagnostics.rules.growth`).
    seconds : float
        Time the diagnosis took; ``verify_seconds`` the part spent re-running fixes.
    """

    title = "Diagnosis"

    def _summary_lines(self) -> list[str]:
        out = []
        if self.get("lr") is not None:
            out.append(f"lr {self.lr:g} ({self.optimizer}"
                       + (f", momentum {self.momentum:g}" if self.get("momentum") else "") + ")")
        if self.get("lambda_max") is not None:
            s = f"lambda_max {self.lambda_max:.6g}"
            if self.get("lambda_max_end") is not None:
                s += f" at the start ({self.lambda_max_end:.6g} at the end)"
            if self.get("bound") is not None:
                s += f", stable lr < {self.bound:.4g}"
            if self.get("condition") is not None:
                s += f", condition number {self.condition:.4g}"
            out.append(s)
        if self.get("growth") is not None and math.isfinite(self.growth):
            out.append(f"observed loss factor per step: {self.growth:.4g}")
        if self.get("jump") is not None:
            out.append(f"largest loss jump: x{self.jump:.4g} per step")
        out += [f"note: {n}" for n in self.get("notes") or []]
        return out


# ----------------------------------------------------------------------------- models
#: a loss log alone with fewer values than this cannot show a trend or a swing
#: (rules.growth needs 3 to fit a rate; a swing needs several periods)
MIN_HISTORY = 5

def model_objective(model: Any, loss_fn: Any, X: Any, y: Any) -> tuple[Any, dict]:
    """The loss of a :class:`gradwise.nn.Module` as a function of its parameters.

    Parameters
    ----------
    model : gradwise.nn.Module
    loss_fn : callable
        ``loss_fn(output, y)`` → scalar Tensor.
    X, y : ndarray
        The data (full batch).

    Returns
    -------
    f : callable
        ``f(params)`` with ``params`` a dict of dotted name → array/Tensor; the
        model's own parameters are swapped in for the call and restored after.
    params : dict of str -> ndarray
        Copies of the model's current trainable parameters.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    owners = []
    for n, _ in named:
        mod = model
        *path, attr = n.split(".")
        for part in path:
            mod = mod._modules[part]
        owners.append((mod, attr))
    Xa = np.asarray(X, dtype=float)

    def f(params):
        old = [mod.__dict__[attr] for mod, attr in owners]
        try:
            for (mod, attr), (n, _) in zip(owners, named):
                object.__setattr__(mod, attr, params[n])
            return loss_fn(model(Xa), y)
        finally:
            for (mod, attr), o in zip(owners, old):
                object.__setattr__(mod, attr, o)

    return f, {n: np.array(p.data, dtype=float) for n, p in named}


def _optimizer_info(optimizer: Any, momentum: float) -> tuple[str, float, float | None]:
    """(name, momentum, lr) of a string or a gradwise/torch optimizer object."""
    name, beta = normalize(optimizer, momentum)
    if isinstance(optimizer, str):
        return name, beta, None
    lr = (getattr(optimizer, "param_groups", None) or [{}])[0].get("lr")
    return name, beta, None if lr is None else float(lr)


def _check_inputs(lr, history, every, loss, params):
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float, np.number))
                           or not lr > 0 or not math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be a positive integer (steps between logged losses), "
                         f"got {every!r}")
    if loss is not None and params is None:
        raise ValueError("a loss function needs its parameters: diagnose(loss=f, params=p, lr=...)")
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a function of the parameters, got {type(loss).__name__}")
    if history is not None and not isinstance(history, Monitor):
        h = np.asarray(history, dtype=float)
        if h.ndim != 1:
            raise ValueError(f"history must be a 1-D sequence of loss values, got shape {h.shape}")


def _as_history(history: Any) -> np.ndarray | None:
    if history is None:
        return None
    if isinstance(history, Monitor):
        return history.history()
    return np.asarray(history, dtype=float).ravel()


def diagnose(
    result: Any = None,
    *,
    loss: Any = None,
    params: Any = None,
    lr: float | None = None,
    history: Any = None,
    every: int = 1,
    optimizer: Any = "sgd",
    momentum: float = 0.0,
    X: Any = None,
    y: Any = None,
    params0: Any = None,
    batch_size: int | None = None,
    model: Any = None,
    loss_fn: Any = None,
    monitor: Monitor | None = None,
    estimator: Any = None,
    refit_data: tuple | None = None,
    n_classes: int | None = None,
    reference: dict | None = None,
    verify: bool = True,
    budget: float | None = None,
) -> Diagnosis:
    """Diagnose a training run: what is wrong, the numbers, and a verified fix.

    Parameters
    ----------
    result : TrainResult, optional
        A :func:`gradwise.train` result (history per step, final parameters). Give
        ``model`` and ``loss_fn`` (and ``X``, ``y``) for curvature and activation
        probes.
    loss : callable, optional
        ``loss(params) -> scalar`` — the user's loss as a function of the
        parameters (data closed over). Traced by the engine; a loss that cannot be
        traced (``float()``, pandas, loops over Python floats) is differentiated by
        finite differences.
    params : array, tuple/list or dict of arrays, optional
        Where the run is now (its last parameters).
    lr : float, optional
        The learning rate of the run (read from ``result``/``optimizer`` if absent).
    history : sequence of float or Monitor, optional
        The run's losses, one every ``every`` steps. With ``lr`` alone (no loss) it
        is enough for ``lr.too_high``: the asymptotic growth ``g`` per step gives
        ``λmax = (1 + β + √g + β/√g)/η`` (see
        :func:`gradwise.diagnostics.curvature.lambda_from_growth`).
    every : int, default 1
        Steps between two entries of ``history``.
    optimizer : str or optimizer object, default "sgd"
        ``"sgd"`` (with ``momentum`` β: heavy ball) or an adaptive method
        (``"adam"``, ``"rmsprop"``, ...: no curvature bound, only observed
        behaviour counts).
    momentum : float, default 0.0
    X, y : array_like, optional
        The training data: checked (``data.*``), conditioning
        (``data.ill_conditioned``), least-squares reference.
    params0 : same structure as ``params``, optional
        Where the run started; verified re-runs start there (default ``params``).
        With a ``model``: a dict of parameter name -> initial array (sharpness at
        the start of a diverged run, ``init.scale``).
    batch_size : int, optional
        Mini-batch size of the run (``None`` = full batch). With ``X`` it sets the
        number of steps per epoch; a stochastic run is told apart from a stalled
        one by the SGD noise floor.
    model, loss_fn : gradwise.nn.Module and loss module, optional
        The network trained by ``result`` (probes: curvature, activations,
        initial scale, output/loss pairing).
    monitor : Monitor, optional
        A monitor that watched the run (activations, initial parameters, first
        non-finite value).
    estimator : fitted gradwise estimator, optional
        Fixes are then verified by re-fitting a clone.
    refit_data : (X, y), optional
        The data to re-fit ``estimator`` with, as passed to its ``fit`` (default
        ``X``, ``y``; the fit hook passes the raw data while ``X`` holds the
        expanded, standardised features the model saw).
    n_classes : int, optional
        Number of classes of a cross-entropy loss (``loss.plateau_chance``: the
        loss stuck at ln C).
    reference : dict, optional
        The model's own optimum in the user's units, ``{"coef", "intercept",
        "loss", "baseline", "model"}`` (``baseline``: the loss of the best constant
        prediction): verified re-fits are compared with it and ``model.capacity``
        uses it. The fit hook computes it for linear and logistic regression. With
        ``"separable": True`` (linearly separable classes: no finite optimum) it is
        only reported. Kept, JSON-safe, as ``Diagnosis.reference``.
    verify : bool, default True
        Re-run cheap fixes and report the outcome in ``finding.verified``.
    budget : float, optional
        Seconds the re-runs may take (default: 20% of the fit's time, see
        :mod:`gradwise.diagnostics.fixes`).

    Returns
    -------
    Diagnosis

    Raises
    ------
    ValueError, TypeError
        Nothing to diagnose; a non-positive ``lr``; ``every`` < 1; a loss without
        parameters; a history that is not 1-D; ``params`` with NaN/inf or a loss
        that is not a finite scalar at ``params``; momentum outside [0, 1).

    Examples
    --------
    A printed loss log (every 10 steps, lr 0.01) is enough to find the limit:

    >>> import gradwise
    >>> d = gradwise.diagnose(history=[24.33, 355.9, 3.73e4, 3.94e6, 4.17e8], every=10, lr=0.01)
    >>> d.codes(), round(d.findings[0].evidence["bound"], 5)
    (['lr.too_high'], 0.00884)
    """
    t_start = time.perf_counter()
    _check_inputs(lr, history, every, loss, params)
    if result is None and loss is None and history is None and model is None and monitor is None:
        raise ValueError("nothing to diagnose: give a training result, a loss function with "
                         "params and lr, or a loss history with lr")
    opt_name, beta, opt_lr = _optimizer_info(optimizer, momentum)
    run = rules.Run(optimizer=opt_name, momentum=beta, every=int(every), batch_size=batch_size,
                    estimator=estimator, n_classes=n_classes)
    if estimator is not None:
        run.cache["refit_data"] = refit_data if refit_data is not None else (X, y)
    if reference is not None and not reference.get("separable"):
        run.cache["reference"] = reference
        if reference.get("baseline") is not None:
            run.cache["capacity"] = {"best": reference["loss"], "baseline": reference["baseline"],
                                     "model": reference.get("model", "linear model")}
    if isinstance(history, Monitor) and monitor is None:
        monitor = history
    run.history = _as_history(history)
    run.lr = float(lr) if lr is not None else opt_lr
    if X is not None:
        run.X = np.asarray(X)
    if y is not None:
        run.y = np.asarray(y)
    if result is not None:
        _from_result(run, result)
    if monitor is not None:
        _from_monitor(run, monitor)
    if model is not None:
        run.model, run.loss_fn = model, loss_fn
    if params0 is not None and loss is None:
        if not isinstance(params0, dict):
            raise TypeError("with a model, params0 must be a dict of parameter name -> array "
                            "(as model.named_parameters() names them)")
        run.initial_params = {k: np.asarray(v, dtype=float) for k, v in params0.items()}
    if run.X is not None and batch_size:
        run.steps_per_epoch = max(1, math.ceil(len(run.X) / batch_size))
        run.stochastic = batch_size < len(run.X)
    if loss is not None:
        # a loss returning None or a vector is always an error; a NaN point only when
        # there is nothing else (history, start) to diagnose the run from
        run.objective = check_objective(Objective(loss, params), finite=history is None and params0 is None)
        run.start = run.objective.flat(params0) if params0 is not None else run.objective.x0.copy()
    elif run.model is not None and run.loss_fn is not None and run.X is not None and run.y is not None:
        _from_model(run)
    _probe(run)
    if (loss is None and run.model is None and run.history is not None
            and len(run.history) < MIN_HISTORY):
        run.notes.append(f"only {len(run.history)} logged loss values and nothing else to go on: "
                         f"too few to judge the run (give at least {MIN_HISTORY}, or the loss "
                         "function and parameters)")
    findings = rules.apply_rules(run)
    verify_seconds = 0.0
    if verify:
        verify_seconds = fixes.verify_fixes(findings, run, budget)
    sp = run.spectrum_start or run.spectrum
    bound = None
    if sp is not None and not run.adaptive:
        bound = critical_lr(sp["lambda_max"], run.optimizer, run.momentum)
    g = rules.growth(run.history, run.every)
    q = run.quadratic
    return Diagnosis(
        findings=findings,
        lr=run.lr,
        optimizer=run.optimizer,
        momentum=run.momentum,
        lambda_max=None if sp is None else sp["lambda_max"],
        lambda_min=None if sp is None else sp.get("lambda_min"),
        condition=None if sp is None else sp.get("condition"),
        bound=bound,
        optimum=None if q is None else {"params": q["params"], "loss": q["loss"]},
        reference=None if reference is None else jsonable(reference),
        growth=None if g is None else g["per_step"],
        jump=g["jump"] if g and g["blew_up"] else None,
        lambda_max_end=(run.spectrum["lambda_max"] if run.spectrum_start is not None
                        and run.spectrum is not None and run.spectrum_start is not run.spectrum
                        else None),
        notes=run.notes,
        seconds=time.perf_counter() - t_start,
        verify_seconds=verify_seconds,
    )


def _from_result(run: rules.Run, result: Any) -> None:
    get = result.get if hasattr(result, "get") else (lambda k, d=None: getattr(result, k, d))
    if isinstance(result, (str, bytes)) or (get("step_loss") is None and get("loss_curve") is None):
        # a list of losses given as `result` was diagnosed as an empty, healthy run
        raise TypeError(
            f"result must be a gradwise.train result (or a dict with 'step_loss' or 'loss_curve'), "
            f"got {type(result).__name__}; for a list of logged losses use history=..., every=..."
        )
    n_steps, n_epochs = get("n_steps"), get("n_epochs")
    per_epoch = np.asarray(get("loss_curve") if get("loss_curve") is not None else [], dtype=float)
    mini_batch = bool(n_steps and n_epochs and n_steps > n_epochs and len(per_epoch) >= 3)
    if run.history is None and get("step_loss") is not None and not mini_batch:
        run.history = np.asarray(get("step_loss"), dtype=float)
        run.every = 1
    elif run.history is None:
        # per-epoch losses: a mini-batch (or per-sample) step loss is the loss of a
        # different batch at every step, whose spread is no sign of divergence; the
        # epoch means are (one entry per epoch of steps)
        run.history = np.asarray(get("loss_curve"), dtype=float)
        n_steps, n_epochs = get("n_steps"), get("n_epochs")
        run.every = max(1, round(n_steps / n_epochs)) if n_steps and n_epochs else 1
    lrs = get("lr")
    if run.lr is None and lrs is not None and len(np.atleast_1d(lrs)):
        run.lr = float(np.atleast_1d(lrs)[-1])
    n_steps, n_epochs = get("n_steps"), get("n_epochs")
    if n_steps and n_epochs:
        run.steps_per_epoch = max(1, round(n_steps / n_epochs))
        run.stochastic = run.steps_per_epoch > 1
    run.fit_time = get("total_time")
    run.final_params = get("params")
    run.block_grad_norms = get("block_grad_norms")
    if get("nonfinite_step") is not None:
        prior = [f for f in (get("findings") or []) if getattr(f, "code", "") == "numeric.nonfinite"]
        what = prior[0].evidence.get("what", "loss") if prior else "loss"
        run.nonfinite = {"step": int(get("nonfinite_step")),
                         "block": prior[0].location if prior else None, "what": what}


def _from_monitor(run: rules.Run, mon: Monitor) -> None:
    if run.history is None:
        run.history = mon.history()
        run.every = mon.every
    if mon.nonfinite is not None:
        run.nonfinite = dict(mon.nonfinite)
    if mon.initial_params is not None:
        run.initial_params = mon.initial_params
    run.activations.update(mon.last_activations())
    if run.block_grad_norms is None and mon.grad_norm:
        run.block_grad_norms = mon.grad_norm
    if run.model is None and mon.model is not None:
        run.model, run.loss_fn = mon.model, mon.loss_fn
    if run.lr is None and mon.lr and math.isfinite(mon.lr[-1]):
        run.lr = mon.lr[-1]


def _from_model(run: rules.Run) -> None:
    """Curvature and activation probes of a model on the data (a fixed subsample
    of PROBE_SAMPLES rows for a network on a large data set)."""
    # only an affine model under a squared error is quadratic in its parameters:
    # anything else skips the Newton probe (n HVPs). A loss without a name (a user's
    # function, e.g. lambda out, y: mse(out.reshape(-1), y)) on an affine model gets
    # the probe, which itself says whether the loss is quadratic (such a run was
    # treated as a network: no optimum, no convergence.not_reached)
    kinds = {type(m).__name__ for _, m in run.model.named_modules()}
    run.network = not (kinds <= {"Linear", "Sequential", "Identity"}
                       and getattr(run.loss_fn, "name", "mse") == "mse")
    Xp, yp, scale = run.X, run.y, 1.0
    if run.network and len(run.X) > PROBE_SAMPLES:
        idx = np.sort(np.random.default_rng(0).choice(len(run.X), PROBE_SAMPLES, replace=False))
        Xp, yp = run.X[idx], run.y[idx]
        if getattr(run.loss_fn, "reduction", "mean") == "sum":
            scale = len(run.X) / PROBE_SAMPLES  # a summed loss scales with the rows
        run.notes.append(f"curvature and activations probed on {PROBE_SAMPLES} of "
                         f"{len(run.X)} samples")
    f, p = model_objective(run.model, run.loss_fn, Xp, yp)
    if scale != 1.0:
        f0 = f
        f = lambda q: f0(q) * scale  # noqa: E731
    if run.final_params:
        p = {k: np.array(run.final_params.get(k, v), dtype=float) for k, v in p.items()}
    run.objective = Objective(f, p)
    run.final_params = p
    if Xp is not run.X:  # the loss at the end on ALL rows, as reports and fixes quote it
        f_all, _ = model_objective(run.model, run.loss_fn, run.X, run.y)
        try:
            run.cache["final_loss"] = float(np.asarray(getattr(v := f_all(p), "data", v)))
        except (FloatingPointError, OverflowError, ValueError):
            pass
    start = run.initial_params
    run.start = (run.objective.flat({k: start.get(k, v) for k, v in p.items()})
                 if start else None)
    stats = Monitor().probe(run.model, Xp)
    for k, v in stats.items():
        run.activations.setdefault(k, v)
    try:
        import gradwise

        with gradwise.no_grad():
            out = run.model(np.asarray(Xp, dtype=float))
        run.cache["outputs"] = np.asarray(out.data if hasattr(out, "data") else out)
    except Exception as e:  # noqa: BLE001 - a probe that fails only loses a rule
        run.notes.append(f"output probe failed: {e}")


def _lower_point(obj: Objective, start: np.ndarray | None) -> np.ndarray:
    """Of the run's start and end, the point with the smaller finite loss."""
    if start is None:
        return obj.x0
    try:
        f_end, f_start = obj.value(obj.x0), obj.value(start)
    except (FloatingPointError, OverflowError, ValueError):
        return obj.x0
    if not np.isfinite(f_end) or (np.isfinite(f_start) and f_start < f_end):
        return start
    return obj.x0


def _probe(run: rules.Run) -> None:
    """Curvature and, for a small quadratic loss, the exact optimum."""
    obj = run.objective
    if obj is None:
        return
    try:
        if not run.network and obj.n <= QUADRATIC_MAX_PARAMS:
            run.quadratic = quadratic_optimum(obj, max_params=QUADRATIC_MAX_PARAMS,
                                              at=_lower_point(obj, run.start))
        run.network = run.network or run.quadratic is None
        if run.quadratic is not None:
            ev = run.quadratic["eigenvalues"]
            run.spectrum = {"lambda_max": float(ev[-1]), "lambda_min": float(ev[0]),
                            "condition": float(ev[-1] / ev[0]), "method": "exact"}
        else:
            # λmin costs a second Lanczos run; only the plateau rule needs it (lazily)
            run.spectrum = spectrum(obj, which="both" if obj.n <= 50 else "max")
            g = rules.growth(run.history, run.every)
            if run.start is not None and np.array_equal(run.start, obj.x0):
                run.spectrum_start = run.spectrum
            elif g and (g["diverging"] or g["blew_up"]) and run.start is not None:
                # a diverged (or blown-up, then dead) network's last point says nothing
                # about the step that blew it up: measure the sharpness where it started
                at_start = Objective(obj.loss, obj.unflat(run.start))
                run.spectrum_start = spectrum(at_start, which="max")
    except (FloatingPointError, OverflowError, ValueError, np.linalg.LinAlgError) as e:
        run.notes.append(f"curvature probe failed: {e}")
