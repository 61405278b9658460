"""Rules: turn a run's history and probes into Findings.

Each rule is a function ``rule(run) -> list[Finding]`` over a :class:`Run` (what
``diagnose`` collected). Thresholds are module constants, each with its source or
derivation; a rule never fires on what it cannot see (a rule that needs the
curvature stays silent without a loss function).

Sources
-------
- Stability of GD on a quadratic, ``|1 - ηλ| < 1`` (``η < 2/λmax``), heavy ball
  ``η < 2(1+β)/λmax``: Nesterov, *Lectures on Convex Optimization* (2018) §1.2.3,
  §2.1.5; Polyak (1964). Best constant step ``2/(λmax + λmin)``: Nesterov Thm 2.1.15.
- Edge of stability: for neural networks sharpness rises to about ``2/η`` while the
  loss keeps falling (Cohen et al., "Gradient descent on neural networks typically
  occurs at the edge of stability", ICLR 2021), so ``lr.too_high`` for a
  non-quadratic loss needs observed loss growth.
- Saturation / dead units / initial scale: Glorot & Bengio (2010); He et al.
  (2015); Lu et al. (2019). Thresholds in :mod:`gradwise.diagnostics.monitor`.
- Constant-step SGD settles in a neighbourhood of the optimum whose size is
  proportional to η (Bottou, Curtis & Nocedal, "Optimization methods for
  large-scale machine learning", SIAM Review 2018, Thm 4.6); the excess mean
  squared error of LMS is the misadjustment ``M ≈ η tr(R)/2`` times the minimum
  (Widrow & Stearns, *Adaptive Signal Processing*, 1985, §6.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwise._result import Finding
from gradwise._scaling import standardize
from gradwise._tree import entry_name
from gradwise._util import fmt_number
from gradwise.diagnostics.curvature import (
    Objective,
    Spectrum,
    amplification,
    critical_lr,
    lambda_from_growth,
)
from gradwise.diagnostics.optimum import (
    Optimum,
    condition_number,
    steps_to_tolerance,
    tolerance,
)
from gradwise.optim import ADAPTIVE

__all__ = ["Run", "RULES", "apply_rules", "growth", "safe_lr"]

# ----------------------------------------------------------------------------- thresholds
#: the loss has diverged when it rose to more than DIVERGE_FACTOR × its minimum and
#: still grows at the end. Mini-batch losses fluctuate by O(1) relative amounts, so
#: a factor 10 is beyond noise; a run at lr above 2/λmax passes it within
#: ln(10)/ln(g) steps (5 steps at S5's g = 1.59). The same factor above the loss
#: the run *started* at marks a transient explosion (``blew_up``) when the run also
#: ends above its start: training lowers the loss from its start, so a loss 10×
#: above it is a blow-up even if the loss falls again afterwards (a network whose
#: ReLUs died in the jump). A spike the run recovers from (ending below its start)
#: is the catapult phase of a large step (Lewkowycz et al., "The large learning
#: rate phase of deep learning: the catapult mechanism", 2020), not a fault.
DIVERGE_FACTOR = 10.0
#: fix for a too-high or too-low step on a quadratic: the best constant step
#: 2/(λmax+λmin) (Nesterov Thm 2.1.15), but at most SAFETY × 2/λmax so that a
#: curvature estimate 10% too small still gives a stable step
SAFETY = 0.9
#: for networks, where curvature grows during training (progressive sharpening,
#: Cohen et al. 2021), the suggested larger step is at most HALF of the
#: measured bound and at most MAX_LR_GAIN × the current step
NET_BOUND_FRACTION = 0.5
MAX_LR_GAIN = 100.0
#: lr.too_low: the step is at most this fraction of the best constant step, so a
#: larger stable step converges at least twice as fast (the contraction of the
#: slowest mode, 1 - ηλmin, is linear in η)
TOO_LOW_FRACTION = 0.5
#: lr.oscillation: the top mode contracts by |1-ηλmax| >= OSC_RHO per step (it
#: needs >= 66 steps to shrink 1000×) and is slower than the bottom mode, so the
#: step, not the conditioning, limits progress
OSC_RHO = 0.9
#: network plateau: the loss changed by less than PLATEAU_DROP (relative) over the
#: second half of the run, while the step is below STEP_SMALL × the stability bound. A learning
#: network drops its loss by far more than 5%; ηλmax < 0.1 means a step 20× under
#: the limit.
PLATEAU_DROP = 0.05
STEP_SMALL = 0.1
#: loss.oscillation (from the loss history alone): with a stable step, full-batch
#: gradient descent lowers an L-smooth loss at every step (descent lemma,
#: f(x - ηg) <= f(x) - η(1 - Lη/2)|g|², Nesterov 2018 eq. 1.2.19), so a logged loss
#: that over the second half of the run swings by a factor >= SWING_FACTOR
#: (max/min), crosses its middle (geometric mean of max and min) upwards at least
#: SWING_CROSSINGS times, and climbs back above the median of the first half (no
#: lasting progress; a descending run's later losses stay below its earlier ones) is
#: not descending: the step is too long for the curvature, or the
#: update is not a gradient step (a never-reset gradient accumulator applies the
#: sum of all past gradients: heavy ball with β = 1, an undamped oscillation). A
#: factor 4 is ±60% around the middle, ±2.5 standard deviations of mini-batch noise
#: only at a relative noise of 0.24 or more; known mini-batch runs are skipped.
#: SWING_MIN_LOGS logged values are needed to see repeated swings.
SWING_FACTOR = 4.0
SWING_CROSSINGS = 2
SWING_MIN_LOGS = 20
#: ... and the run is not at a minimum: the Hessian has a negative eigenvalue of at
#: least SADDLE_RATIO × λmax, so the plateau is a saddle, whose unstable direction
#: grows like (1 + η|λmin|)^t (Dauphin et al., "Identifying and attacking the saddle
#: point problem", NeurIPS 2014)
SADDLE_RATIO = 0.01
#: data.ill_conditioned: κ of XᵀX/n above KAPPA_MAX means GD at the best constant
#: step needs more than κ/2·ln(10³) ≈ 3 500 steps per three digits (Nesterov Thm
#: 2.1.15) — more than typical epoch budgets — and standardising must lower it by
#: at least KAPPA_GAIN for the fix to help
KAPPA_MAX = 1e3
KAPPA_GAIN = 10.0
#: rows used for κ on large data sets (a fixed random subsample)
KAPPA_ROWS = 5_000
#: init.scale: the initial weights' root mean square over the Glorot
#: (sigmoid/tanh/linear) or He (ReLU) standard deviation. The variance of pre-activations scales with the square of the ratio
#: per layer; outside [1/INIT_RATIO, INIT_RATIO] (variance gain outside [1/10, 10])
#: activations saturate or vanish within a few layers (Glorot & Bengio 2010, §4.2)
INIT_RATIO = math.sqrt(10.0)
#: activations.saturated / dead_relu: fraction of saturated activations (or dead
#: units) in a layer above which most gradient paths through it are cut (a
#: majority rule: with more than half of the units cut, the layer's Jacobian has
#: lost most of its rank; Lu et al., "Dying ReLU and initialization", 2020, call a
#: network born dead when its units are inactive for all inputs). An empirical
#: line: the healthy runs of the test suite stay far below it, the S4 raw-feature
#: run (100% saturated) far above.
SATURATED_MAX = 0.5
DEAD_MAX = 0.5
#: gradients.vanishing / exploding: RMS gradient of the first weight block over the
#: last one; beyond 1e-4 / 1e4 the first layer learns 10⁴× slower/faster than the
#: last (Glorot & Bengio 2010 Fig. 7 show ratios of about 10 as already uneven)
GRAD_RATIO = 1e4
#: sgd.noise_floor: a stochastic run within NOISE_GAP (relative) of the optimum
#: has reached the neighbourhood constant-step SGD can reach; 1% bounds the LMS
#: misadjustment η tr(R)/2 for the usual η tr(R) <= 0.02. convergence.not_reached
#: also needs a loss gap above NOISE_GAP: a full-batch run within 1% of the optimal
#: loss whose parameters still drift along flat (collinear) directions has fitted
#: the data as well as the model can, to the precision users compare losses at
NOISE_GAP = 0.01
#: the noise floor is also allowed MISADJUSTMENT_MARGIN × the LMS misadjustment
#: M = η tr(H)/(2B) for batch size B (per-sample loss with Hessian H = c·R; the
#: formula is a small-step approximation, hence the margin). For a loss written as
#: a sum over samples tr(H) is n times larger and the floor more lenient.
MISADJUSTMENT_MARGIN = 2.0
#: loss.plateau_chance: the cross-entropy within CHANCE_RTOL of ln C, the loss of
#: predicting the uniform distribution (chance level; Goodfellow, Bengio &
#: Courville 2016, §8.2.3 on plateaus). 2% of ln 2 = 0.014 nats: a model that
#: learned anything beyond the class prior is further away.
CHANCE_RTOL = 0.02
#: model.capacity: at its own optimum the model explains less than this fraction of
#: the baseline loss (best constant predictor), i.e. R² < 0.1 for least squares
#: (a linear model on XOR has R² = 0 at its optimum). An empirical line; it is
#: only applied where the model's optimum is known exactly (linear/logistic).
CAPACITY_GAIN = 0.1


@dataclass
class Run:
    """Everything ``diagnose`` knows about one training run."""

    lr: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.0
    every: int = 1
    history: np.ndarray | None = None
    steps_per_epoch: int = 1
    batch_size: int | None = None
    stochastic: bool = False
    objective: Objective | None = None
    start: np.ndarray | None = None
    spectrum: Spectrum | None = None
    spectrum_start: Spectrum | None = None
    quadratic: Optimum | None = None
    network: bool = False
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    model: Any = None
    loss_fn: Any = None
    activations: dict = field(default_factory=dict)
    initial_params: dict | None = None
    final_params: dict | None = None
    block_grad_norms: dict | None = None
    nonfinite: dict | None = None
    fit_time: float | None = None
    estimator: Any = None
    n_classes: int | None = None
    notes: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    @property
    def adaptive(self) -> bool:
        return self.optimizer in ADAPTIVE

    @property
    def lambda_max(self) -> float | None:
        return None if self.spectrum is None else self.spectrum["lambda_max"]


# ----------------------------------------------------------------------------- helpers
def growth(history: np.ndarray | None, every: int = 1) -> dict | None:
    """Observed per-step growth of a loss history sampled every ``every`` steps.

    The asymptotic rate is the median per-step log ratio over the second half of
    the finite, positive part of the history (the first steps grow more slowly:
    the unstable mode has to dominate first).

    Returns
    -------
    dict or None
        ``per_step`` (loss factor per step), ``diverging`` (bool: the loss rose
        above DIVERGE_FACTOR × its minimum and still grows), ``rise`` (last /
        minimum), ``nonfinite_at`` (index of the first non-finite entry or None),
        ``jump`` (largest loss factor per step between two entries, at entry
        ``jump_at``), ``blew_up`` (bool: the loss rose above DIVERGE_FACTOR × its
        first value at some point and ended above it — a transient explosion);
        None when fewer than 3 finite values.
    """
    if history is None:
        return None
    h = np.asarray(history, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(h))
    nonfinite_at = int(bad[0]) if len(bad) else None
    h = h[: nonfinite_at] if nonfinite_at is not None else h
    if len(h) < 3 or np.any(h <= 0):
        return None if len(h) < 3 else {"per_step": math.nan, "diverging": False, "rise": math.nan,
                                         "nonfinite_at": nonfinite_at, "jump": math.nan,
                                         "jump_at": None, "blew_up": False}
    r = np.diff(np.log(h)) / every
    tail = r[len(r) // 2:]
    per_step = float(np.exp(np.median(tail)))
    rise = float(h[-1] / np.min(h))
    diverging = (rise > DIVERGE_FACTOR and per_step > 1.0) or (
        nonfinite_at is not None and per_step > 1.0)
    k = int(np.argmax(r))
    return {"per_step": per_step, "diverging": bool(diverging), "rise": rise,
            "nonfinite_at": nonfinite_at, "jump": float(np.exp(r[k])), "jump_at": k + 1,
            "blew_up": bool(np.max(h) > DIVERGE_FACTOR * h[0] and h[-1] > h[0])}


def safe_lr(run: Run) -> float | None:
    """The suggested stable step (see SAFETY / NET_BOUND_FRACTION)."""
    sp = run.spectrum_start or run.spectrum
    if run.adaptive or sp is None:
        return None
    lmax = sp["lambda_max"]
    bound = critical_lr(lmax, run.optimizer, run.momentum)
    if bound is None:
        return None
    if run.quadratic is not None:
        lmin = sp.get("lambda_min") or 0.0
        best = 2.0 / (lmax + lmin) * (1.0 + run.momentum) if lmin > 0 else bound
        return min(best, SAFETY * bound)
    return NET_BOUND_FRACTION * bound


def _round_lr(x: float, digits: int = 3) -> float:
    """``x`` rounded *down* to ``digits`` significant digits: a step a user can type
    that stays on the safe side of the bound it came from."""
    x = float(x)
    if not x > 0 or not math.isfinite(x):
        return x
    e = math.floor(math.log10(x)) - digits + 1
    return round(math.floor(x / 10.0**e * (1 + 1e-12)) * 10.0**e, 12 - e)


def _quad_state(run: Run) -> dict | None:
    """Distance of the run's final point to the quadratic optimum (cached)."""
    if run.quadratic is None or run.objective is None:
        return None
    if "quad" in run.cache:
        return run.cache["quad"]
    q = run.quadratic
    x = run.objective.x0
    dist = float(np.linalg.norm(x - q["x"]))
    loss_end = run.objective.value(x)
    out = {"distance": dist, "tolerance": tolerance(q), "loss": loss_end,
           "optimum_loss": q["loss"], "loss_gap": loss_end - q["loss"]}
    run.cache["quad"] = out
    return out


# ----------------------------------------------------------------------------- rules
def rule_nonfinite(run: Run) -> list[Finding]:
    """numeric.nonfinite: the first NaN/inf of the loss (history) or of a block."""
    nf = run.nonfinite
    where = None
    if nf is None and run.history is not None:
        bad = np.flatnonzero(~np.isfinite(np.asarray(run.history, dtype=float)))
        if len(bad):
            nf = {"step": int(bad[0]) * run.every, "block": None, "what": "loss"}
    if nf is None:
        return []
    where = nf.get("block")
    g = growth(run.history, run.every)
    cause = (" It follows exponential loss growth: the learning rate is above the stability "
             "limit (see lr.too_high)." if g and g["per_step"] > 1 else "")
    return [Finding(
        "numeric.nonfinite", "fault",
        f"the {nf.get('what', 'loss')} became non-finite (NaN/inf) at step {nf['step']}"
        + (f" in block {where}" if where else "") + "." + cause,
        evidence={"step": nf["step"], "block": where, "what": nf.get("what")},
        location=where)]


def rule_lr_too_high(run: Run) -> list[Finding]:
    """lr.too_high: step above 2/λmax (quadratic) or observed divergence."""
    if run.lr is None:
        return []
    g = growth(run.history, run.every)
    observed = g["per_step"] if g else None
    diverging = bool(g and g["diverging"])
    # a transient explosion (the loss jumped far above its start, then fell, e.g.
    # because the jump killed the ReLUs): its largest jump is the observed growth
    blew_up = bool(g and g["blew_up"] and not diverging)
    if blew_up:
        observed = g["jump"]
    exploded = diverging or blew_up
    ev: dict[str, Any] = {"lr": run.lr, "optimizer": run.optimizer, "momentum": run.momentum}
    if blew_up:
        ev["jump_at_step"] = g["jump_at"] * run.every
    sp = run.spectrum_start or run.spectrum
    if run.adaptive:
        if not exploded:
            return []
        ev.update(observed_growth=observed, bound=None,
                  rule="none: adaptive methods have no lambda_max bound")
        return [Finding("lr.too_high", "fault",
                        f"the loss grows by x{observed:.4g} per step with {run.optimizer} at lr "
                        f"{run.lr:g}; adaptive methods have no curvature bound, so the step is "
                        "judged by the loss alone: reduce it.",
                        evidence=ev, fix={"lr": run.lr / 10})]
    if run.network and run.spectrum_start is None and exploded:
        sp = None  # the curvature at a blown-up end point is meaningless
    lmax = sp["lambda_max"] if sp is not None else None
    source = "hessian"
    if lmax is None and (run.network or blew_up) and exploded:
        # a network's loss does not grow geometrically, nor does a loss that blew up
        # and fell again: no bound from the growth
        ev.update(observed_growth=observed, bound=None,
                  rule="observed growth; curvature at the start of the run unknown")
        return [Finding("lr.too_high", "fault",
                        f"the loss grows by x{observed:.4g} per step at lr {run.lr:g}: the step "
                        "is above the stability limit of the model (give the initial "
                        "parameters, params0 or a Monitor, for the bound).",
                        evidence=ev, fix={"lr": _round_lr(run.lr / 10)})]
    if lmax is None:
        if not diverging:
            return []
        lmax = lambda_from_growth(observed, run.lr, run.momentum)
        source = "loss growth"
    bound = critical_lr(lmax, run.optimizer, run.momentum)
    if bound is None:
        return []
    rule_text = "2/lambda_max" if not run.momentum else "2(1+beta)/lambda_max"
    ps = _per_sample_bound(run, lmax) if source == "hessian" else None
    if ps is not None and ps < bound:
        bound, rule_text = ps, "2/(c*max_i |x_i|^2), per-sample SGD"
    over = run.lr >= bound
    # edge of stability: for a non-quadratic loss lambda_max alone is not enough
    if not exploded and (run.quadratic is None or not over):
        return []
    if not over and not exploded:
        return []
    amp = amplification(run.lr, lmax, run.momentum)
    pred = amp * amp if amp < 1e150 else math.inf  # a float ** 2 raises OverflowError
    ev.update(lambda_max=lmax, lambda_source=source, bound=bound, rule=rule_text,
              predicted_growth=pred, observed_growth=observed)
    fix_lr = safe_lr(run) if source == "hessian" else SAFETY * bound
    if fix_lr is None or fix_lr >= run.lr:
        fix_lr = min(SAFETY * bound, run.lr / 2)
    fix_lr = min(fix_lr, SAFETY * bound)  # e.g. under the per-sample limit
    msg = (f"learning rate {run.lr:g} is above the stability limit " if over else
           f"the loss grew although learning rate {run.lr:g} is below the stability limit ")
    msg += (f"{fmt_number(bound)} ({ev['rule']}, lambda_max = {fmt_number(lmax)} from the "
            f"{'Hessian' if source == 'hessian' else source}"
            f"{' at the start' if run.spectrum_start is not None else ''})")
    if blew_up:
        msg += (f": the loss jumped x{observed:.4g} "
                f"{'in one step' if run.every == 1 else 'per step'} at step {ev['jump_at_step']} "
                f"(from {run.history[g['jump_at'] - 1]:.4g} to {run.history[g['jump_at']]:.4g}) "
                f"and its last logged value {run.history[-1]:.4g} is still above its start "
                f"{run.history[0]:.4g}"
                + ("" if over else "; the curvature grew during the run"))
    elif source == "hessian":
        where = " at the start" if run.spectrum_start is not None else ""
        msg += f": the loss grows by x{pred:.4g} per step (predicted{where})"
        if observed is not None and math.isfinite(observed):
            msg += f", x{observed:.4g} observed"
    else:
        msg += f": the loss grows by x{observed:.4g} per step"
    if blew_up:
        run.cache["blew_up_fix"] = {"lr": _round_lr(fix_lr)}  # what killed the units
    return [Finding("lr.too_high", "fault", msg + ".", evidence=ev, fix={"lr": _round_lr(fix_lr)})]


def _per_sample_bound(run: Run, lmax: float) -> float | None:
    """Stability limit of per-sample SGD on a least-squares loss: each step is GD on
    one sample's loss, whose Hessian c·xᵢxᵢᵀ has the eigenvalue c‖xᵢ‖², so the step
    must stay below 2/(c·maxᵢ‖xᵢ‖²) (the LMS bound; Widrow & Stearns, *Adaptive
    Signal Processing*, 1985, ch. 6). The constant c is read off the full-batch
    Hessian c·AᵀA/n of the same loss (A = [X, 1]); None when not applicable."""
    if run.batch_size != 1 or run.quadratic is None or run.X is None or run.momentum:
        return None
    from gradwise.diagnostics.optimum import design_matrix, gram

    X = np.asarray(run.X, dtype=float)
    A = design_matrix(X[:, None] if X.ndim == 1 else X)
    if A.shape[1] != run.objective.n:
        return None
    top = float(np.linalg.eigvalsh(gram(A))[-1])
    if top <= 0:
        return None
    c = lmax / top
    return 2.0 / (c * float(np.max(np.einsum("ij,ij->i", A, A))))


def rule_lr_oscillation(run: Run) -> list[Finding]:
    """lr.oscillation: stable step whose top mode barely contracts and limits progress."""
    sp = run.spectrum_start or run.spectrum
    if run.lr is None or sp is None or run.adaptive or run.quadratic is None:
        return []
    lmax, lmin = sp["lambda_max"], sp.get("lambda_min") or 0.0
    bound = critical_lr(lmax, run.optimizer, run.momentum)
    if bound is None or run.lr >= bound:
        return []
    rho_top = amplification(run.lr, lmax, run.momentum)
    rho_bottom = amplification(run.lr, lmin, run.momentum)
    if rho_top < OSC_RHO or rho_top <= rho_bottom or run.lr * lmax <= 1 + run.momentum:
        return []
    st = _quad_state(run)
    if st is not None and st["distance"] <= st["tolerance"]:
        return []
    fix = safe_lr(run)
    return [Finding("lr.oscillation", "warning",
                    f"lr {run.lr:g} is close to the stability limit {fmt_number(bound)}: the error along "
                    f"the sharpest direction flips sign and shrinks only x{rho_top:.3g} per step "
                    f"(lr*lambda_max = {run.lr * lmax:.3g}); the loss zig-zags.",
                    evidence={"lambda_max": lmax, "lr_times_lambda_max": run.lr * lmax,
                              "amplification": rho_top, "bound": bound},
                    fix={"lr": _round_lr(fix)} if fix else None)]


def rule_quadratic_convergence(run: Run) -> list[Finding]:
    """convergence.not_reached / lr.too_low / sgd.noise_floor for a quadratic loss."""
    st = _quad_state(run)
    if st is None or run.lr is None:
        return []
    g = growth(run.history, run.every)
    if g and g["diverging"]:
        return []
    q, sp = run.quadratic, run.spectrum
    if st["distance"] <= st["tolerance"]:
        return []
    rel_gap = st["loss_gap"] / max(abs(st["optimum_loss"]), 1e-300)
    if not run.stochastic and rel_gap <= NOISE_GAP:
        return []  # parameters still moving along flat directions, the loss is there
    misadjustment = run.lr * float(np.sum(q["eigenvalues"])) / (2 * (run.batch_size or 1))
    floor = max(NOISE_GAP, MISADJUSTMENT_MARGIN * misadjustment)
    if run.stochastic and rel_gap <= floor:
        return [Finding("sgd.noise_floor", "info",
                        f"constant-step SGD hovers {st['loss_gap']:.4g} above the optimum "
                        f"{st['optimum_loss']:.6g} (relative {rel_gap:.2g}, expected up to "
                        f"{floor:.2g}): the noise floor of a constant step, not a fault; a "
                        "decaying learning rate reaches the optimum.",
                        evidence={"loss": st["loss"], "optimum_loss": st["optimum_loss"],
                                  "relative_gap": rel_gap, "misadjustment": misadjustment,
                                  "noise_gap_max": floor},
                        fix={"lr_schedule": "decay"})]
    ev_all = np.asarray(q["eigenvalues"])
    U = q["eigenvectors"]
    e0 = run.objective.x0 - q["x"]
    spe = run.steps_per_epoch
    if run.stochastic:
        # the GD recursion does not describe a stochastic run: no step-count forecast
        return [Finding(
            "convergence.not_reached", "fault",
            f"the run ended {st['distance']:.4g} from the optimum: loss {st['loss']:.6g} vs "
            f"{st['optimum_loss']:.6g} (relative gap {rel_gap:.3g}, above the noise floor "
            f"of constant-step SGD, {floor:.2g}). If the loss has settled there, a sample may "
            "never reach the update (gradwise.check_step tells).",
            evidence={"optimum": q["params"], "distance": st["distance"],
                      "loss": st["loss"], "optimum_loss": st["optimum_loss"],
                      "relative_gap": rel_gap})]
    if run.adaptive:
        return [Finding(
            "convergence.not_reached", "fault",
            f"the run stopped {st['distance']:.4g} from the optimum (loss {st['loss']:.6g} vs "
            f"{st['optimum_loss']:.6g} at the optimum).",
            evidence={"optimum": q["params"], "distance": st["distance"],
                      "loss": st["loss"], "optimum_loss": st["optimum_loss"],
                      "loss_gap": st["loss_gap"]})]
    more = steps_to_tolerance(ev_all, U, e0, run.lr, st["tolerance"], run.momentum)
    out = [Finding(
        "convergence.not_reached", "fault",
        f"the run stopped {st['distance']:.4g} from the optimum (loss {st['loss']:.6g} vs "
        f"{st['optimum_loss']:.6g} at the optimum); at lr {run.lr:g} "
        + (f"it needs about {_count(more / spe)} more epochs." if math.isfinite(more)
           else "it does not reach the optimum at all."),
        evidence={"optimum": q["params"], "distance": st["distance"],
                  "tolerance": st["tolerance"], "loss": st["loss"],
                  "optimum_loss": st["optimum_loss"], "loss_gap": st["loss_gap"],
                  "epochs_needed": more / spe},
    )]
    fix_lr = safe_lr(run)
    if fix_lr is not None and not run.adaptive and run.lr <= TOO_LOW_FRACTION * fix_lr:
        fix_lr = _round_lr(fix_lr)
        # a fix is re-run from the start: count the epochs from there (else from the end)
        e_start = (run.start - q["x"]) if run.start is not None else e0
        need = steps_to_tolerance(ev_all, U, e_start, fix_lr, st["tolerance"], run.momentum)
        epochs = int(math.ceil(need / spe)) if math.isfinite(need) else None
        bound = critical_lr(sp["lambda_max"], run.optimizer, run.momentum)
        out.append(Finding(
            "lr.too_low", "fault",
            f"lr {run.lr:g} is {fix_lr / run.lr:.3g}x below a safe step {fmt_number(fix_lr)} (stability "
            f"limit {fmt_number(bound)}); run from the start at {fmt_number(fix_lr)}, it reaches the optimum "
            f"in about {_count(need / spe)} epochs "
            + (f"(at lr {run.lr:g} it still needs {_count(more / spe)} more)."
               if math.isfinite(more) else f"(at lr {run.lr:g} it never does)."),
            evidence={"lambda_max": sp["lambda_max"], "lambda_min": sp.get("lambda_min"),
                      "bound": bound, "epochs_at_lr": more / spe,
                      "epochs_at_fix": need / spe},
            fix={"lr": _round_lr(fix_lr), "epochs": epochs}))
    return out


def _count(x: float) -> str:
    return "infinitely many" if not math.isfinite(x) else f"{int(math.ceil(x)):,}"


def rule_network_plateau(run: Run) -> list[Finding]:
    """lr.too_low for a non-quadratic loss: a flat loss at a saddle, far under the bound."""
    if (run.quadratic is not None or run.lr is None or run.adaptive or run.history is None
            or run.stochastic):  # mini-batch losses are too noisy to call a plateau
        return []
    sp = run.spectrum
    h = np.asarray(run.history, dtype=float)
    if sp is None or len(h) < 10 or not np.all(np.isfinite(h)):
        return []
    half = h[len(h) // 2:]
    drop = (half[0] - half[-1]) / max(abs(half[0]), 1e-300)
    lmax, lmin = sp["lambda_max"], sp.get("lambda_min")
    bound = critical_lr(lmax, run.optimizer, run.momentum)
    if bound is None or not -PLATEAU_DROP < drop < PLATEAU_DROP or run.lr >= STEP_SMALL * bound:
        return []
    if lmin is None and run.objective is not None:
        from gradwise.diagnostics.curvature import spectrum

        sp = run.spectrum = spectrum(run.objective, which="both")
        lmax, lmin = sp["lambda_max"], sp["lambda_min"]
    if (bound is None or lmin is None or not -PLATEAU_DROP < drop < PLATEAU_DROP
            or run.lr >= STEP_SMALL * bound or not lmin < -SADDLE_RATIO * lmax):
        return []
    fix_lr = min(NET_BOUND_FRACTION * bound, MAX_LR_GAIN * run.lr)
    escape = 1.0 / (run.lr * -lmin)
    msg = (f"the loss is on a plateau (it changed {100 * drop:.2g}% over the second half of the "
           f"run) at a saddle point (Hessian eigenvalues from {lmin:.3g} to {lmax:.3g}); at lr "
           f"{run.lr:g}, {bound / run.lr:.3g}x below the stability limit {fmt_number(bound)}, the run "
           f"leaves the saddle only by a factor e every {escape:,.0f} steps "
           f"(1/(lr*|lambda_min|)): a step of {fmt_number(fix_lr)} is safe.")
    return [Finding("lr.too_low", "fault", msg,
                    evidence={"lambda_max": lmax, "lambda_min": lmin, "bound": bound,
                              "relative_drop": drop, "escape_steps": escape},
                    fix={"lr": _round_lr(fix_lr)})]


def rule_loss_oscillation(run: Run) -> list[Finding]:
    """loss.oscillation: the logged loss swings widely without decreasing (history only)."""
    if run.history is None or run.stochastic:
        return []
    h = np.asarray(run.history, dtype=float)
    g = growth(h, run.every)
    if (len(h) < SWING_MIN_LOGS or not np.all(np.isfinite(h)) or np.any(h <= 0)
            or g is None or g["diverging"] or g["blew_up"]):
        return []
    first, second = h[: len(h) // 2], h[len(h) // 2:]
    hi, lo = float(np.max(second)), float(np.min(second))
    mid = math.sqrt(hi * lo)
    ups = int(np.sum((second[:-1] < mid) & (second[1:] >= mid)))
    m1, m2 = float(np.median(first)), float(np.median(second))
    if hi < SWING_FACTOR * lo or ups < SWING_CROSSINGS or hi < m1:
        return []
    lr_text = f" at lr {run.lr:g}" if run.lr is not None else ""
    return [Finding(
        "loss.oscillation", "fault",
        f"the loss swings between {lo:.4g} and {hi:.4g} (x{hi / lo:.3g}) over the second half "
        f"of the run{lr_text} and does not decrease (it climbs back above {m1:.4g}, the median "
        f"of the first half; median {m2:.4g} in the second): the steps do not descend. Either the update is not a "
        "gradient step (e.g. a gradient accumulator that is never reset applies the sum of "
        "all past gradients; gradwise.check_step tells) or the step is too long for the "
        "curvature: try a 10x smaller lr.",
        evidence={"loss_min": lo, "loss_max": hi, "swing": hi / lo, "up_crossings": ups,
                  "median_first_half": m1, "median_second_half": m2,
                  "threshold": SWING_FACTOR},
        fix={"lr": _round_lr(run.lr / 10)} if run.lr is not None else None)]


def rule_ill_conditioned(run: Run) -> list[Finding]:
    """data.ill_conditioned: κ of the (intercept-augmented) design, raw vs standardised."""
    if run.X is None:
        return []
    X = np.asarray(run.X)
    X = X[:, None] if X.ndim == 1 else X
    if X.ndim != 2 or len(X) < 2 or X.dtype.kind not in "fiu":
        return []
    if len(X) > KAPPA_ROWS:  # κ of the feature scales: a fixed subsample estimates it
        X = X[np.sort(np.random.default_rng(0).choice(len(X), KAPPA_ROWS, replace=False))]
    X = X.astype(float)
    if not np.all(np.isfinite(X)):
        return []
    sd = X.std(axis=0)
    const = sd == 0
    if const.sum() == 1 and X.shape[1] > 1 and np.all(X[:, const] == 1):
        # a column of ones is the user's own bias column (x0 = 1): the design below
        # adds the intercept, so judge the other columns
        X, sd = X[:, ~const], sd[~const]
    elif np.any(const):
        return []  # data.constant_feature says it
    k_raw = condition_number(X)
    k_std = condition_number(X, standardize=True)
    if k_raw <= KAPPA_MAX or k_raw < KAPPA_GAIN * k_std:
        return []
    fix: dict[str, Any] = {"standardize": True}
    lr_std = _standardized_lr(run, X)
    if lr_std is not None:
        fix["lr"] = _round_lr(lr_std)
    return [Finding("data.ill_conditioned", "warning",
                    f"the features are badly scaled: the condition number of the least-squares "
                    f"Hessian is {k_raw:.3g} ({k_std:.3g} after standardising); gradient descent "
                    f"then needs about kappa/2 = {k_raw / 2:.3g} steps per factor e of progress.",
                    evidence={"condition": k_raw, "condition_standardized": k_std,
                              "feature_mean": X.mean(axis=0), "feature_std": sd},
                    fix=fix)]


def _standardized_lr(run: Run, X: np.ndarray) -> float | None:
    """A stable step after standardising, when the loss is least squares of a linear
    model on ``X``: its Hessian is ``c·AᵀA/n`` (A = [X, 1]) for one constant c, read
    off λmax and checked on λmin; standardised, λmax becomes ``c·λmax(ZᵀZ/n)`` and
    the step SAFETY × 2/λmax."""
    sp = run.spectrum
    if run.quadratic is None or sp is None or not sp.get("lambda_min"):
        return None
    from gradwise.diagnostics.optimum import design_matrix, gram

    A = design_matrix(X)
    if A.shape[1] != run.objective.n:
        return None
    ev = np.linalg.eigvalsh(gram(A))
    c = sp["lambda_max"] / ev[-1]
    if not math.isclose(c * ev[0], sp["lambda_min"], rel_tol=1e-4):
        return None
    Z = design_matrix(standardize(X)[0])
    lz = c * float(np.linalg.eigvalsh(gram(Z))[-1])
    bound = critical_lr(lz, run.optimizer, run.momentum) if lz > 0 else None
    if bound is not None and run.batch_size == 1 and not run.momentum:
        # per-sample SGD: the limit of the largest single-sample curvature (see
        # _per_sample_bound), on the standardised rows
        bound = min(bound, 2.0 / (c * float(np.max(np.einsum("ij,ij->i", Z, Z)))))
    return None if bound is None else float(bound * SAFETY)  # Adam & co.: no bound


def rule_data(run: Run) -> list[Finding]:
    """data.nonfinite / data.integer / data.constant_feature / data.shape."""
    out: list[Finding] = []
    if run.X is None:
        return out
    X = np.asarray(run.X)
    y = None if run.y is None else np.asarray(run.y)
    for name, a in (("X", X), ("y", y)):
        if a is None:
            continue
        # integer targets are normal class labels; integer features are not
        if a.dtype.kind in "iub" and name == "X":
            out.append(Finding("data.integer", "warning",
                               f"{name} has integer dtype {a.dtype}: powers overflow (x**3 of "
                               "int32), divisions truncate and in-place updates of integer arrays "
                               f"drop the fraction; convert with {name}.astype(float).",
                               evidence={"array": name, "dtype": str(a.dtype)}, location=name,
                               fix={"dtype": "float64"}))
        elif a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))
            out.append(Finding("data.nonfinite", "fault",
                               f"{name} contains {len(bad)} NaN/inf values (first at index "
                               f"{tuple(int(i) for i in bad[0])}); every loss and gradient that "
                               "touches them is NaN.",
                               evidence={"array": name, "count": len(bad), "first": bad[0]},
                               location=entry_name(name, bad[0], a.shape)))
    if y is not None and len(y) != len(X):
        out.append(Finding("data.shape", "fault",
                           f"X has {len(X)} samples but y has {len(y)}.",
                           evidence={"X_shape": X.shape, "y_shape": y.shape}, location="y"))
    elif y is not None and y.ndim == 2 and y.shape[1] == 1 and run.model is None:
        out.append(Finding("data.shape", "warning",
                           f"y has shape {y.shape}: a prediction of shape ({len(y)},) minus y "
                           f"broadcasts to ({len(y)}, {len(y)}) and the loss averages n² wrong "
                           "residuals; use y.ravel() or keep both (n, 1).",
                           evidence={"y_shape": y.shape}, location="y", fix={"y": "ravel"}))
    if X.ndim == 2 and len(X) > 1 and X.dtype.kind in "fiu" and np.all(np.isfinite(X)):
        const = np.flatnonzero(np.ptp(X, axis=0) == 0)
        if run.estimator is None:
            # a hand-written model usually carries its intercept as one constant,
            # non-zero "bias column": that one is fine
            bias = [j for j in const if X[0, j] != 0][:1]
            const = np.array([j for j in const if j not in bias], dtype=int)
        if len(const):
            out.append(Finding("data.constant_feature", "warning",
                               f"feature column(s) {const.tolist()} are constant: with an "
                               "intercept the Hessian is singular (lambda_min = 0) and "
                               "standardising divides by zero; drop them.",
                               evidence={"columns": const}, location=f"X[:, {int(const[0])}]",
                               fix={"drop_columns": const.tolist()}))
    return out


def _glorot_ratio(W: np.ndarray, kind: str | None) -> tuple[float, str]:
    fan_out, fan_in = W.shape
    if kind == "relu":
        ref, name = math.sqrt(2.0 / fan_in), "He"
    else:
        ref, name = math.sqrt(2.0 / (fan_in + fan_out)), "Glorot"
    return _rms(W) / ref, name


def _rms(W: np.ndarray) -> float:
    """Root mean square of the weights: E[w²] sets the pre-activation variance
    (Glorot & Bengio 2010 eq. 5), so a non-zero mean counts (np.random.rand)."""
    return float(np.sqrt(np.mean(np.square(W))))


def _layer_kinds(run: Run) -> dict[str, str | None]:
    """Weight block name -> the activation that follows it (Sequential models)."""
    out: dict[str, str | None] = {}
    if run.model is None or not hasattr(run.model, "named_modules"):
        return out
    mods = [(n, m) for n, m in run.model.named_modules() if n]
    for i, (n, m) in enumerate(mods):
        if hasattr(m, "weight") and getattr(m, "weight", None) is not None:
            nxt = next((getattr(m2, "name", None) for _, m2 in mods[i + 1:]
                        if getattr(m2, "name", None) in ("sigmoid", "tanh", "relu")
                        or hasattr(m2, "weight")), None)
            out[f"{n}.weight"] = nxt if nxt in ("sigmoid", "tanh", "relu") else None
    return out


def rule_init_scale(run: Run) -> list[Finding]:
    """init.scale: hidden weight std vs Glorot/He."""
    if not run.network or not run.initial_params:
        return []
    kinds = _layer_kinds(run)
    out = []
    for name, kind in kinds.items():
        W = run.initial_params.get(name)
        if W is None or np.ndim(W) != 2 or kind is None:
            continue
        r, ref = _glorot_ratio(np.asarray(W), kind)
        if 1.0 / INIT_RATIO <= r <= INIT_RATIO:
            continue
        scheme = "he_normal" if kind == "relu" else "glorot_normal"
        out.append(Finding("init.scale", "fault",
                           f"initial weights of {name} have RMS {_rms(W):.3g}, {r:.3g}x the "
                           f"{ref} scale for a {W.shape[1]}->{W.shape[0]} {kind} layer "
                           f"(variance x{r * r:.3g} per layer).",
                           evidence={"rms": _rms(W), "reference": ref, "ratio": r},
                           location=name, fix={"init": scheme}))
    return out


def rule_activations(run: Run) -> list[Finding]:
    """activations.saturated / activations.dead_relu from per-layer statistics."""
    out = []
    for layer, st in run.activations.items():
        if st.get("kind") in ("sigmoid", "tanh") and st.get("saturated", 0) > SATURATED_MAX:
            fix = {"standardize": True} if run.cache.get("ill_conditioned") else {"init": "glorot_normal"}
            out.append(Finding("activations.saturated", "fault",
                               f"{100 * st['saturated']:.3g}% of the {st['kind']} activations of "
                               f"layer {layer} are saturated (derivative < 4% of its maximum): "
                               "their gradients vanish and the layers below stop learning.",
                               evidence={"fraction": st["saturated"], "kind": st["kind"],
                                         "threshold": SATURATED_MAX},
                               location=f"layer {layer}", fix=fix))
        if st.get("kind") == "relu" and st.get("dead", 0) > DEAD_MAX:
            killed = run.cache.get("blew_up_fix")  # the units died in the loss explosion
            cure = ("they died in the loss explosion (see lr.too_high): lower the lr."
                    if killed else "draw new weights (e.g. He normal, zero biases: units "
                    "that start alive), lower the lr or use a leaky ReLU.")
            out.append(Finding("activations.dead_relu", "fault",
                               f"{100 * st['dead']:.3g}% of the ReLU units of layer {layer} output 0 "
                               f"for every sample: they get no gradient and never recover; {cure}",
                               evidence={"fraction": st["dead"], "threshold": DEAD_MAX},
                               location=f"layer {layer}",
                               fix=dict(killed) if killed else {"init": "he_normal"}))
    return out


def rule_gradient_ratio(run: Run) -> list[Finding]:
    """gradients.vanishing / gradients.exploding: first vs last weight block, RMS gradient."""
    bg = run.block_grad_norms
    if not run.network or not bg or not run.final_params:
        return []
    ws = [k for k in bg if k.endswith("weight") and k in run.final_params]
    if len(ws) < 2:
        return []
    first, last = ws[0], ws[-1]

    def rms(k):
        v = np.asarray(bg[k], dtype=float)
        v = v[np.isfinite(v)]
        tail = v[-max(1, len(v) // 10):]
        return float(np.mean(tail)) / math.sqrt(np.size(run.final_params[k]))

    a, b = rms(first), rms(last)
    if not b > 0 or not math.isfinite(a / b):
        return []
    ratio = a / b
    if ratio < 1.0 / GRAD_RATIO:
        return [Finding("gradients.vanishing", "fault",
                        f"the gradient of {first} is {ratio:.2g}x that of {last} (RMS per entry): "
                        "the first layer barely learns.",
                        evidence={"first": first, "last": last, "ratio": ratio},
                        location=first, fix={"init": "glorot_normal", "activation": "relu"})]
    if ratio > GRAD_RATIO:
        return [Finding("gradients.exploding", "fault",
                        f"the gradient of {first} is {ratio:.2g}x that of {last} (RMS per entry).",
                        evidence={"first": first, "last": last, "ratio": ratio},
                        location=first, fix={"init": "glorot_normal", "clip_grad_norm": 1.0})]
    return []


def rule_loss_pairing(run: Run) -> list[Finding]:
    """loss.pairing: probabilities fed to a loss that expects logits."""
    name = getattr(run.loss_fn, "name", None)
    if run.model is None or run.X is None or name not in ("cross_entropy", "bce_with_logits"):
        return []
    out = run.cache.get("outputs")
    if out is None:
        return []
    o = np.asarray(out, dtype=float)
    if not (np.all(o >= 0) and np.all(o <= 1)):
        return []
    if name == "cross_entropy":
        # logits almost never sum to exactly 1 in every row; probabilities always do
        if o.ndim != 2 or o.shape[1] < 2 or not np.allclose(o.sum(axis=1), 1.0, atol=1e-6):
            return []
        C = o.shape[1]
        what = "softmax probabilities"
    else:
        # logits of a healthy model may happen to lie in [0, 1]: require the model to
        # end in a sigmoid
        last = [m for _, m in run.model.named_modules()][-1]
        if getattr(last, "name", None) != "sigmoid":
            return []
        C = 2
        what = "sigmoid probabilities"
    floor = math.log(1.0 + (C - 1) / math.e)
    return [Finding("loss.pairing", "fault",
                    f"the model outputs {what} but {type(run.loss_fn).__name__} expects logits: "
                    f"it applies softmax/sigmoid again, so the loss cannot fall below "
                    f"ln(1 + (C-1)/e) = {floor:.4g} for C = {C} and the gradients shrink.",
                    evidence={"loss_floor": floor, "n_classes": C, "loss": run.loss_fn.name},
                    location="output layer", fix={"output": "logits"})]


def rule_plateau_chance(run: Run) -> list[Finding]:
    """loss.plateau_chance: cross-entropy stuck at ln C."""
    if run.n_classes is None or run.history is None or run.n_classes < 2:
        return []
    h = np.asarray(run.history, dtype=float)
    if len(h) < 5 or not np.all(np.isfinite(h)):
        return []
    chance = math.log(run.n_classes)
    tail = h[-max(2, len(h) // 5):]
    if np.all(np.abs(tail - chance) <= CHANCE_RTOL * chance):
        return [Finding("loss.plateau_chance", "fault",
                        f"the cross-entropy stays at {tail[-1]:.4g} = ln {run.n_classes} "
                        f"({chance:.4g}), the loss of predicting every class with probability "
                        f"1/{run.n_classes}: the model has learned nothing.",
                        evidence={"loss": float(tail[-1]), "chance": chance},
                        fix=None)]
    return []


def rule_capacity(run: Run) -> list[Finding]:
    """model.capacity: the model's own optimum barely beats the best constant."""
    cap = run.cache.get("capacity")
    if not cap:
        return []
    best, base = cap["best"], cap["baseline"]
    if base <= 0 or (base - best) > CAPACITY_GAIN * base:
        return []
    return [Finding("model.capacity", "warning",
                    f"even at its optimum this model reaches loss {best:.4g}, against "
                    f"{base:.4g} for a constant prediction: it cannot represent the data "
                    f"({cap['model']}); use a model with hidden units or features.",
                    evidence={"best_loss": best, "baseline_loss": base, "model": cap["model"]},
                    fix={"model": "mlp"})]


RULES = [
    rule_data,
    rule_nonfinite,
    rule_lr_too_high,
    rule_lr_oscillation,
    rule_quadratic_convergence,
    rule_network_plateau,
    rule_loss_oscillation,
    rule_ill_conditioned,
    rule_init_scale,
    rule_activations,
    rule_gradient_ratio,
    rule_loss_pairing,
    rule_plateau_chance,
    rule_capacity,
]


def apply_rules(run: Run) -> list[Finding]:
    """All findings for ``run``, in rule order (one finding per code and location)."""
    out: list[Finding] = []
    seen = set()
    for rule in RULES:
        for f in rule(run):
            key = (f.code, f.location)
            if key not in seen:
                seen.add(key)
                out.append(f)
            if f.code == "data.ill_conditioned":
                run.cache["ill_conditioned"] = True
    return out
