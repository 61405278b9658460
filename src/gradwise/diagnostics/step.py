"""Check a user's own update code: :func:`check_step`.

How: replay. gradwise computes the updates the step *should* make from
per-sample gradients of the user's own loss, and the updates that the common
faults make, and reports the variant that explains the user's update, with
the residual of each candidate as evidence.

Candidates (per parameter block, each with a least-squares step size when
``lr`` is not given):

- full-batch gradient descent, gradients at the start point or after the other
  blocks were updated (block-by-block order, legitimate);
- sequential per-sample SGD in sample order (legitimate; a constant-step SGD
  epoch is not first-order in the step, so it is replayed exactly);
- sample ``k`` left out (batch and sequential), only the last sample
  (``update.last_sample_only``), components of a block updated one after
  another from already-updated values (``update.sequential``), a block left
  unchanged (``update.frozen``), the legitimate update with the wrong sign
  (``update.ascent``) or size (``update.scale``).

The step is then called a second time with the same input: a stateless step
returns the same result; a step that re-applies the previous gradient in full
has an accumulator that is never reset (``update.accumulates``); a fraction
β < 1 of it is momentum (not a fault).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from gradwise._result import Finding, Result
from gradwise._tree import entry_name, unflatten
from gradwise._util import to_array
from gradwise.diagnostics._classify import describe_factor
from gradwise.diagnostics.check import (
    _as_vector,
    _copies,
    _expected,
    _extra_entries,
    _leaves_like,
    _precision,
    _prepare,
    _scalar_list,
)
from gradwise.diagnostics.finite_diff import (
    CountedFunction,
    NonFiniteLoss,
    check_deterministic,
    directional_derivative,
    numeric_gradient,
)

__all__ = ["check_step", "StepCheck"]

#: "sample k left out" replays of an SGD epoch (n replays of n steps) up to this many rows
MAX_SEQUENTIAL = 64
#: the plain sequential per-sample SGD replay (n steps per trial step size) up to this many
#: rows; above it an unexplained update is only a warning (the replay was not tried)
MAX_REPLAY = 512
#: component-by-component replays are tried for blocks up to this size
MAX_COMPONENTS = 64
#: a block whose gradient norm is below this fraction of its norm a small step away is at a
#: stationary point: a zero update there is right
STATIONARY = 1e-8
#: autodiff gradients are verified entry by entry up to this many entries (else along a
#: random direction) before they are trusted
MAX_VERIFY = 2000


class StepCheck(Result):
    """Result of :func:`check_step`.

    Keys (also attributes)
    ----------------------
    findings : list of Finding
        Codes ``update.*`` from FAULTS.md and ``input.integer_dtype``.
    blocks : list of dict
        Per parameter block: ``block``, ``verdict`` (``"ok"`` or a code),
        ``explained_by`` (the candidate that reproduces the update),
        ``residual`` (relative), ``lr_fit`` (step size that candidate needs),
        ``candidates`` (the best few: ``label`` and ``residual``).
    lr : float
        The step size used (given, or estimated from the update).
    lr_estimated : bool
        True when ``lr`` was not given.
    loss_reduction : {"sum", "mean", None}
        How ``loss`` combines rows (None: neither, e.g. a penalty term; then
        sample-level variants are not tried).
    stateful : dict or None
        When a second call with the same input gave another result: the
        carried-over fraction per block.
    gradient_method : str
        ``"autodiff"`` or ``"finite differences"``.
    n_step_calls, n_gradient_evals : int
    """

    title = "Update check"

    def _summary_lines(self):
        est = " (estimated from your update)" if self.get("lr_estimated") else ""
        red = self.get("loss_reduction") or "neither sum nor mean of the rows (one row, too "\
            "many rows, or a penalty term): sample-level variants not tried"
        lines = [f"lr: {self.get('lr'):.6g}{est}; loss over rows: {red}; "
                 f"gradients: {self.get('gradient_method')}"]
        for b in self.get("blocks", []):
            res = b.get("residual")
            rs = f", residual {res:.2e}" if res is not None else ""
            how = b.get("explained_by") or "no replayed variant"
            lines.append(f"{b['block']}: {b['verdict']} — {how}{rs}")
        lines += [f"note: {n}" for n in self.get("notes", [])]
        return lines


# ----------------------------------------------------------------------------- gradients


class _Gradients:
    """Gradients of ``loss(params, X[rows], y[rows])``: autodiff when the loss can be
    traced (verified once against finite differences), finite differences otherwise."""

    def __init__(self, loss, treedef, info, X, y, eps=np.finfo(np.float64).eps):
        self.loss, self.treedef, self.info, self.X, self.y = loss, treedef, info, X, y
        self.eps = eps  # precision the loss computes with (float32 parameters: float32)
        self.method: str | None = None
        self.count = 0
        self.cache: dict = {}

    def value(self, leaves, rows):
        Xr, yr = self._rows(rows)
        out = self.loss(unflatten(self.treedef, _copies(leaves)), Xr, yr)
        return CountedFunction(None, "loss")._scalar(out)

    def _rows(self, rows):
        return _take_rows(self.X, rows), _take_rows(self.y, rows)

    def _numeric(self, leaves, rows):
        Xr, yr = self._rows(rows)
        fc = CountedFunction(lambda lv: self.loss(unflatten(self.treedef, lv), _copy_data(Xr),
                                                  _copy_data(yr)), "loss", eps=self.eps)
        return numeric_gradient(fc, leaves).value

    def _autodiff(self, leaves, rows):
        from gradwise.autodiff import grad as ad_grad

        Xr, yr = self._rows(rows)
        g = ad_grad(lambda p: self.loss(p, Xr, yr))(unflatten(self.treedef, _copies(leaves)))
        return [np.asarray(a, dtype=np.float64) for a in _leaves_like(g, self.info, "autodiff")]

    def _first(self, leaves, rows):
        """Choose the method: autodiff if the loss traces and agrees with finite
        differences (every entry up to MAX_VERIFY entries, else along a random
        direction), finite differences otherwise."""
        self.method = "finite differences"
        try:
            ad = self._autodiff(leaves, rows)
            if any(a.shape != x.shape or not np.all(np.isfinite(a)) for a, x in zip(ad, leaves)):
                raise ValueError("autodiff gradient has the wrong shape")
        except Exception:
            return self._numeric(leaves, rows)
        Xr, yr = self._rows(rows)
        fc = CountedFunction(lambda lv: self.loss(unflatten(self.treedef, lv), _copy_data(Xr),
                                                  _copy_data(yr)), "loss", eps=self.eps)
        if sum(a.size for a in leaves) <= MAX_VERIFY:
            num = numeric_gradient(fc, leaves).value
            scale = max(max((float(np.max(np.abs(n))) for n in num if n.size), default=0.0),
                        1e-300)
            ok = all(np.allclose(a, n, rtol=1e-6, atol=1e-7 * scale) for a, n in zip(ad, num))
            if not ok:
                return num
        else:
            v = [np.random.default_rng(0).standard_normal(a.shape) for a in leaves]
            d = directional_derivative(fc, leaves, v)
            pred = sum(float(np.vdot(a, vv)) for a, vv in zip(ad, v))
            ok = abs(pred - d.value) <= 1e-6 * (abs(pred) + abs(d.value)) + 10 * d.error
            if not ok:
                return self._numeric(leaves, rows)
        self.method = "autodiff"
        return ad

    def __call__(self, leaves, rows=None):
        key = (rows, tuple(a.tobytes() for a in leaves))
        if key in self.cache:
            return self.cache[key]
        self.count += 1
        if self.method is None:
            out = self._first(leaves, rows)
        elif self.method == "autodiff":
            out = self._autodiff(leaves, rows)
        else:
            out = self._numeric(leaves, rows)
        self.cache[key] = out
        return out


def _copy_data(data):
    """A copy of X or y: pandas objects stay pandas objects, anything else (lists ...)
    becomes an ndarray (which supports list-style ``X[i][j]`` indexing too)."""
    if hasattr(data, "iloc"):
        return data.copy()
    return np.array(data, copy=True)


def _take_rows(data, rows):
    """Rows ``rows`` (None: all) of X or y, keeping its type; pandas rows are renumbered
    from 0 so that code indexing ``y[i]`` by position still works on the subset."""
    if rows is None:
        return _copy_data(data)
    idx = np.asarray(rows, dtype=int)
    if hasattr(data, "iloc"):
        return data.iloc[idx].reset_index(drop=True)
    return np.asarray(data)[idx].copy()


# ----------------------------------------------------------------------------- candidates


@dataclass
class _Cand:
    label: str
    code: str | None  # None: legitimate
    pred: Callable[[float], list[np.ndarray]] | None  # lr -> predicted new leaves (nonlinear)
    direction: list[np.ndarray] | None = None  # linear: new = theta + lr * direction
    samples: list[int] | None = None
    blocks: list[int] | None = None  # blocks this candidate is about (None: all)
    batch: int | None = None  # mini-batch size of a mini-batch epoch replay


def _rel(resid, delta, pred_delta):
    den = max(float(np.linalg.norm(delta)), float(np.linalg.norm(pred_delta)), 1e-300)
    return float(np.linalg.norm(resid)) / den


def _score_linear(delta_b, d_b, lr):
    """(lr_fit, residual at lr_fit, residual at lr) of delta ≈ lr · d."""
    dd = float(np.vdot(d_b, d_b))
    if dd == 0:
        r0 = 0.0 if not np.any(delta_b) else 1.0
        return 0.0, r0, r0
    lr_fit = float(np.vdot(delta_b, d_b)) / dd
    r_fit = _rel(delta_b - lr_fit * d_b, delta_b, lr_fit * d_b)
    r_given = None if lr is None else _rel(delta_b - lr * d_b, delta_b, lr * d_b)
    return lr_fit, r_fit, r_given


# ----------------------------------------------------------------------------- public


def _is_tensor(x: Any) -> bool:
    from gradwise.autodiff import Tensor

    return isinstance(x, Tensor)


def _live_tensors(params: Any) -> list | None:
    """New gradwise Tensors (same dtype and requires_grad) for a parameter
    structure given as Tensors, or None when it holds plain arrays."""
    from gradwise._tree import flatten

    leaves = flatten(params)[0]
    if not any(_is_tensor(a) for a in leaves):
        return None
    from gradwise.autodiff import Tensor

    return [Tensor(np.array(a.data if _is_tensor(a) else a, copy=True),
                   requires_grad=bool(getattr(a, "requires_grad", False)))
            for a in leaves]


def check_step(
    step: Callable[[Any, Any, Any], Any],
    loss: Callable[[Any, Any, Any], float],
    params: Any,
    X: Any,
    y: Any,
    lr: float | None = None,
    *,
    rtol: float = 1e-4,
    max_sequential: int = MAX_SEQUENTIAL,
) -> StepCheck:
    """Check one hand-written update step by replaying what it should do.

    Parameters
    ----------
    step : callable
        ``step(params, X, y) -> new params``: one update as you wrote it (one
        epoch of per-sample SGD, or one full-batch/mini-batch step). It gets
        copies, so in-place updates are fine; a step that updates in place and
        returns None is read from the arrays it was given. It is called three
        times with the same input (the calls must give the same result unless
        the step keeps state, like momentum). It must be deterministic: a step that shuffles
        the rows itself cannot be replayed (shuffle outside and pass the rows in
        their order), and stateful steps are expected in their initial state.
    loss : callable
        ``loss(params, X, y) -> float``: your loss over the given rows (sum or
        mean over rows). Gradients come from gradwise autodiff when it accepts
        Tensors, else from finite differences.
    params : ndarray, tuple/list or dict of ndarrays
        Parameters before the step. Never modified.
    X, y : array_like
        The rows the step uses (``len(X) == len(y)``). Never modified. Your
        functions get copies: pandas objects stay pandas objects (row subsets
        renumbered from 0), anything else becomes an ndarray.
    lr : float, optional
        The step size your code uses. When omitted it is estimated from the
        update (least squares per block; the reported ``lr`` is the size-weighted
        median over blocks, i.e. the step most entries take) and
        ``update.scale`` then only compares blocks with each other.
    rtol : float, default 1e-4
        A candidate explains the update when ``‖Δ_user − Δ_candidate‖`` is at most
        ``rtol`` times the larger of their norms (raised to the rounding of the
        parameters' dtype: ``10·eps·‖θ_new‖/‖Δ‖``, and ``100·eps^(4/5)`` for the
        finite-difference reference, for float32 parameters or steps).
    max_sequential : int, default 64
        "Sample k left out" replays of an SGD epoch are tried up to this many
        rows. The plain sequential per-sample SGD replay is tried up to
        ``MAX_REPLAY`` (512) rows; above that an update no variant explains
        is reported as a warning, not a fault.

    Returns
    -------
    StepCheck
        ``ok``, ``findings`` (``update.skipped_samples``,
        ``update.last_sample_only``, ``update.accumulates``, ``update.scale``,
        ``update.ascent``, ``update.frozen``, ``update.sequential``,
        ``update.shape_changed``, ``update.mismatch``), ``blocks``, ``lr``.

    Raises
    ------
    ValueError
        ``X`` and ``y`` differ in length or have no rows, ``lr`` is not a
        positive number, or ``step`` returns a different structure than ``params``.
    """
    if lr is not None and not (isinstance(lr, numbers.Real) and not isinstance(lr, bool)
                               and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number or None, got {lr!r}")
    if not (isinstance(rtol, numbers.Real) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a float in (0, 1), got {rtol!r}")
    if not (isinstance(max_sequential, numbers.Integral) and max_sequential >= 0):
        raise ValueError(f"max_sequential must be a non-negative int, got {max_sequential!r}")
    if _scalar_list(params):
        # a plain list of numbers is one parameter vector, as the user's loops index
        # it (P6 with theta = [0., 0., 0., 0.]): check it as one block
        kind = type(params)
        step0, loss0 = step, loss
        step = lambda p, X, y: _as_vector(step0(kind(p.tolist()), X, y))  # noqa: E731
        loss = lambda p, X, y: loss0(kind(np.asarray(p).tolist()), X, y)  # noqa: E731
        params = np.array([float(v) for v in params])
    arrays, info, treedef, findings, notes = _prepare(params)
    Xa, ya = np.asarray(X), np.asarray(y)
    if Xa.ndim == 0 or ya.ndim == 0 or len(Xa) != len(ya):
        raise ValueError(
            f"X and y must have the same number of rows, got shapes {Xa.shape} and {ya.shape}"
        )
    if len(Xa) == 0:
        raise ValueError(f"X and y have no rows (shapes {Xa.shape} and {ya.shape}); pass the "
                         "rows the step uses")
    Xo, yo = _copy_data(X), _copy_data(y)  # the user's types (DataFrame, list ...) are kept
    n = len(Xa)
    names = [li.name for li in info]
    live = _live_tensors(params)

    def call_step():
        if live is None:
            given = unflatten(treedef, _copies(arrays))
        else:
            # a step written with gradwise Tensors (loss.backward(), p -= lr * p.grad)
            # gets the same Tensor objects on every call, as in the user's own loop: a
            # .grad it never resets carries over and is seen (scenario P5)
            for t, a in zip(live, _copies(arrays)):
                t.data = a.astype(t.data.dtype)
            given = unflatten(treedef, live)
        out = step(given, _copy_data(Xo), _copy_data(yo))
        if out is None:  # an in-place update: read the arrays the step was given
            if not all(isinstance(a, np.ndarray) or _is_tensor(a)
                       for a in _leaves_like(given, info, "params")):
                raise ValueError(f"step returned None; it must return the new parameters "
                                 f"({_expected(info)})")
            note = ("step returned None: the parameters it updated in place were used (a step "
                    "that changes nothing is then reported as update.frozen)")
            if note not in notes:
                notes.append(note)
            out = given
        elif not extra_noted:
            notes.extend(_extra_entries(out, info, "step"))
            extra_noted.append(True)
        return [to_array(a, "step output") for a in _leaves_like(out, info, "step")]

    extra_noted: list = []
    new1_raw, new2_raw, new3_raw = call_step(), call_step(), call_step()
    for nm, a in zip(names, new1_raw):
        if a.dtype.kind in "iub":
            findings.append(Finding(
                "input.integer_dtype", "fault",
                f"Your step returns {nm} as {a.dtype}: the update is truncated to integers.",
                evidence={"array": nm, "dtype": str(a.dtype)}, fix={"dtype": "float64"},
                location=nm))
    new1 = [np.asarray(a, dtype=np.float64) for a in new1_raw]
    new2 = [np.asarray(a, dtype=np.float64) for a in new2_raw]
    new3 = [np.asarray(a, dtype=np.float64) for a in new3_raw]
    G = _Gradients(loss, treedef, info, Xo, yo, eps=_precision(params))
    whole = CountedFunction(lambda lv: G.value(lv, None), "loss")
    check_deterministic(whole, arrays, whole(arrays))
    eps = [max(G.eps, float(np.finfo(a.dtype).eps) if a.dtype.kind == "f" else 0.0)
           for a in new1_raw]
    ctx = _Context(G, arrays, new1, names, n, lr, rtol, max_sequential, eps)
    try:
        blocks, block_findings = ctx.analyse()
    except NonFiniteLoss as e:  # name the entry in the user's terms
        if e.leaf is not None and e.label is None:
            e.label = entry_name(names[e.leaf], e.index, arrays[e.leaf].shape)
        raise
    findings += block_findings
    notes += ctx.notes
    stateful, st_findings = _stateful(arrays, new1, new2, new3, names)
    findings += st_findings
    for f in st_findings:
        for b in blocks:
            if b["block"] == f.location and b["verdict"] == "ok":
                b["verdict"] = f.code
    random_blocks = [nm for nm, st in (stateful or {}).items()
                     if not st["geometric"] and st["schedule_factor"] is None]
    for nm, st in (stateful or {}).items():
        if not st["geometric"] and st["schedule_factor"] is not None:
            notes.append(f"successive calls with the same input scale the update of {nm} by "
                         f"{st['schedule_factor']:.4g} (a learning-rate schedule inside the "
                         "step?); the first call was checked")
    if random_blocks:
        notes.insert(0, f"your step gave different results for {', '.join(random_blocks)} when "
                        "called three times with the same input, not like momentum or an "
                        "accumulator: it is random (shuffles rows, draws a random step?). The "
                        "replay assumes a deterministic step, so the verdicts above may be wrong: "
                        "seed it, or shuffle outside the step and pass the rows in their order")
    for nm, st in (stateful or {}).items():
        if 0 < st["carried_fraction"] < 0.95 and st["residual"] <= 0.05 and st["geometric"]:
            notes.append(f"the step is stateful: a second call carries over "
                         f"{st['carried_fraction']:.3g} of the previous update of {nm} "
                         "(momentum); not a fault")
    return StepCheck(
        findings=findings,
        blocks=blocks,
        lr=ctx.lr_ref,
        lr_estimated=lr is None,
        loss_reduction=ctx.reduction,
        stateful=stateful,
        gradient_method=G.method,
        n_step_calls=3,
        n_gradient_evals=G.count,
        notes=notes,
    )


class _Context:
    """The replay of one step: candidates, scores and the verdict per block."""

    def __init__(self, G, theta, new, names, n, lr, rtol, max_sequential, eps):
        self.G, self.theta, self.new, self.names = G, theta, new, names
        self.n, self.lr, self.rtol, self.max_seq = n, lr, rtol, max_sequential
        self.delta = [b - a if b.shape == a.shape else None for a, b in zip(theta, new)]
        # per block: the update is only known to the rounding of the new parameters
        self.tol = [max(rtol, 100 * e ** 0.8, 10 * e * float(np.linalg.norm(nw)) / dn)
                    if d is not None and (dn := float(np.linalg.norm(d))) > 0 else rtol
                    for d, nw, e in zip(self.delta, new, eps)]
        self.reduction = self._reduction()
        self.lr_ref = lr
        self.notes: list[str] = []

    # -- how the loss combines rows
    def _reduction(self):
        if self.n < 2 or self.n > 4 * self.max_seq:
            return None
        total = self.G.value(self.theta, None)
        parts = [self.G.value(self.theta, (i,)) for i in range(self.n)]
        s = sum(parts)
        for name, v in (("sum", s), ("mean", s / self.n)):
            if abs(total - v) <= 1e-9 * max(abs(total), abs(v), 1e-300):
                return name
        return None

    def _per_sample(self, leaves):
        return [self.G(leaves, (i,)) for i in range(self.n)]

    def _batch_cands(self, leaves, where):
        """Linear candidates with gradients at ``leaves``."""
        full = self.G(leaves)
        cands = [_Cand(f"full-batch gradient descent ({where})", None, None,
                       [-g for g in full])]
        if self.reduction is not None and self.n >= 2:
            c = 1.0 if self.reduction == "sum" else 1.0 / self.n
            gi = self._per_sample(leaves)
            tot = [sum(g[k] for g in gi) for k in range(len(leaves))]
            for i in range(self.n):
                cands.append(_Cand(f"sample {i} left out ({where})", "update.skipped_samples",
                                   None, [-c * (t - gi[i][k]) for k, t in enumerate(tot)],
                                   samples=[i]))
            cands.append(_Cand(f"only the last sample ({where})", "update.last_sample_only",
                               None, [-g for g in gi[-1]], samples=[self.n - 1]))
        return cands

    def _contexts(self):
        out = [(self.theta, "gradients at the start point")]
        if len(self.theta) > 1:
            for b in range(len(self.theta)):
                others = [self.new[k] if (k != b and self.delta[k] is not None) else self.theta[k]
                          for k in range(len(self.theta))]
                out.append((others, f"after the other blocks were updated, for {self.names[b]}",
                            b))
        return out

    def _score_cands(self, cands, only_block=None):
        """rows[b] = list of (residual, given_ok, legit, lr_fit, cand)."""
        rows = {b: [] for b in range(len(self.theta))}
        for c in cands:
            for b, d in enumerate(self.delta):
                if d is None or (only_block is not None and b != only_block):
                    continue
                if c.direction is not None:
                    lr_fit, r_fit, r_given = _score_linear(d, c.direction[b], self.lr)
                    rows[b].append((r_fit, r_given, lr_fit, c))
        return rows

    def analyse(self):
        nb = len(self.theta)
        scores = {b: [] for b in range(nb)}
        for item in self._contexts():
            leaves, where = item[0], item[1]
            only = item[2] if len(item) > 2 else None
            if only is not None:
                if self._explained(scores[only], only):  # explained from the start point
                    continue
                where = "after the other blocks were updated"
            for b, rows in self._score_cands(self._batch_cands(leaves, where), only).items():
                scores[b] += rows
        if any(not self._explained(scores[b], b) for b in range(nb)
               if self.delta[b] is not None):
            self._sequential(scores)
        return self._verdicts(scores)

    def _explained(self, rows, b):
        return any(r[0] <= self.tol[b] for r in rows)

    # -- nonlinear replays
    def _replay_sgd(self, lr, skip=None, beta=0.0):
        """Per-sample SGD over the rows in order; with heavy-ball momentum
        ``v = βv + g, θ −= lr·v`` (PyTorch's convention, velocity starting at 0) when
        ``beta`` > 0."""
        th = _copies(self.theta)
        v = [np.zeros_like(a) for a in th]
        for i in range(self.n):
            if i == skip:
                continue
            g = self.G(th, (i,))
            v = [beta * vk + gk for vk, gk in zip(v, g)]
            th = [a - lr * vk for a, vk in zip(th, v)]
        return th

    def _momentum(self, scores, blocks, lr0):
        """Per-sample SGD with momentum within the epoch (velocity starting at 0, as on
        the first call of a step that keeps it): β (and lr when not given, or when the
        given one does not fit) fitted by least squares of the residual."""
        if not lr0 or lr0 <= 0 or sum(self.theta[b].size for b in blocks) < 4:
            return  # two fitted numbers explain any update of fewer than ~4 entries

        def total(lr, beta):
            pred = self._replay_sgd(lr, beta=min(max(beta, 0.0), 0.9999))
            return sum(_rel(pred[b] - self.new[b], self.delta[b], pred[b] - self.theta[b]) ** 2
                       for b in blocks)

        fits = []
        if self.lr is not None:
            res = minimize_scalar(lambda be: total(self.lr, be), bounds=(0.0, 0.9999),
                                  method="bounded", options={"xatol": 1e-10})
            fits.append((self.lr, float(res.x)))
        if self.lr is None or np.sqrt(total(*fits[0])) > min(self.tol[b] for b in blocks):
            start = [np.log(self.lr or lr0), 0.5]
            res = minimize(lambda z: total(float(np.exp(z[0])), z[1]), start,
                           method="Nelder-Mead",
                           options={"xatol": 1e-10, "fatol": 1e-24, "maxiter": 600})
            fits.append((float(np.exp(res.x[0])), float(min(max(res.x[1], 0.0), 0.9999))))
        lr_fit, beta = min(fits, key=lambda f: total(*f))
        pred = self._replay_sgd(lr_fit, beta=beta)
        given = None
        if self.lr is not None:
            pg = self._replay_sgd(self.lr, beta=beta)
            given = {b: _rel(pg[b] - self.new[b], self.delta[b], pg[b] - self.theta[b])
                     for b in blocks}
        cand = _Cand(f"sequential per-sample SGD with momentum β = {beta:.4g} (velocity "
                     "starting at 0)", None, None, None)
        for b in blocks:
            r = _rel(pred[b] - self.new[b], self.delta[b], pred[b] - self.theta[b])
            scores[b].append((r, None if given is None else given[b], lr_fit, cand))

    def _replay_minibatch(self, lr, size, drop_last=False):
        th = _copies(self.theta)
        starts = list(range(0, self.n, size))[: -1 if drop_last else None]
        for s in starts:
            g = self.G(th, tuple(range(s, min(s + size, self.n))))
            th = [a - lr * gk for a, gk in zip(th, g)]
        return th

    def _batch_sizes(self):
        """Mini-batch sizes tried: all for up to max_sequential rows, else powers of 2,
        divisors of n and round sizes."""
        if self.n <= self.max_seq:
            return list(range(2, self.n))
        cand = {2 ** k for k in range(1, 20)} | {d for d in range(2, self.n) if self.n % d == 0}
        cand |= {10, 20, 25, 50, 100, 200, 250, 500, 1000}
        return sorted(b for b in cand if b < self.n)

    def _minibatch(self, scores, blocks):
        """An epoch of mini-batch SGD over the rows in order (legitimate), and the same
        with the last batch dropped (an off-by-one ``range(0, n - B, B)``)."""
        for size in self._batch_sizes():
            batches = [tuple(range(s, min(s + size, self.n))) for s in range(0, self.n, size)]
            tot = [sum(g[k] for g in (self.G(self.theta, r) for r in batches))
                   for k in range(len(self.theta))]
            lr0 = _joint_lr(self.delta, tot, blocks)
            self._add_nonlinear(scores, f"mini-batch SGD epoch in row order (batch size {size})",
                                None, lambda lr, s=size: self._replay_minibatch(lr, s),
                                blocks, lr0, batch=size)
            if all(self._explained(scores[b], b) for b in blocks):
                return
            self._add_nonlinear(
                scores, f"mini-batch SGD epoch (batch size {size}) with the last batch left out",
                "update.skipped_samples",
                lambda lr, s=size: self._replay_minibatch(lr, s, drop_last=True), blocks, lr0,
                samples=list(batches[-1]), batch=size)
            if all(self._explained(scores[b], b) for b in blocks):
                return

    def _replay_components(self, b, lr):
        th = _copies(self.theta)
        flat = th[b].reshape(-1)
        for j in range(flat.size):
            g = self.G([t.copy() for t in th])[b].reshape(-1)
            flat[j] -= lr * g[j]
        return th

    def _fit_lr(self, fun, lr0, blocks):
        """Minimise the joint residual of a nonlinear replay over log(lr)."""
        def total(log_lr):
            pred = fun(float(np.exp(log_lr)))
            return sum(_rel(pred[b] - self.new[b], self.delta[b], pred[b] - self.theta[b]) ** 2
                       for b in blocks)
        if lr0 is None or lr0 <= 0:
            return None
        res = minimize_scalar(total, bounds=(np.log(lr0) - 1.5, np.log(lr0) + 1.5),
                              method="bounded", options={"xatol": 1e-10})
        return float(np.exp(res.x))

    def _add_nonlinear(self, scores, label, code, fun, blocks, lr0, samples=None, batch=None):
        lr_try = self.lr if self.lr is not None else self._fit_lr(fun, lr0, blocks)
        if lr_try is None:
            return
        pred = fun(lr_try)
        given_ok = self.lr is not None
        fitted = lr_try
        r = {b: _rel(pred[b] - self.new[b], self.delta[b], pred[b] - self.theta[b]) for b in blocks}
        if given_ok and any(r[b] > self.tol[b] for b in blocks) and lr0 and lr0 > 0:
            f2 = self._fit_lr(fun, lr0, blocks)
            if f2 is not None:
                pred2 = fun(f2)
                r2 = {b: _rel(pred2[b] - self.new[b], self.delta[b], pred2[b] - self.theta[b])
                      for b in blocks}
                if max(r2.values()) < max(r.values()):
                    fitted = f2
                    for b in blocks:
                        scores[b].append((r2[b], r[b], fitted,
                                          _Cand(label, code, None, None, samples, batch=batch)))
                    return
        for b in blocks:
            scores[b].append((r[b], r[b] if given_ok else None, fitted,
                              _Cand(label, code, None, None, samples, batch=batch)))

    def _sequential(self, scores):
        blocks = [b for b in range(len(self.theta)) if self.delta[b] is not None]
        # first-order step-size guess: Δ ≈ −lr Σ g_i for an SGD epoch
        if self.n <= MAX_REPLAY:
            gi = self._per_sample(self.theta)
            tot = [sum(g[k] for g in gi) for k in range(len(self.theta))]
            lr0 = _joint_lr(self.delta, tot, blocks)
            self._add_nonlinear(scores, "sequential per-sample SGD in sample order", None,
                                self._replay_sgd, blocks, lr0)
            if not all(self._explained(scores[b], b) for b in blocks):
                self._minibatch(scores, blocks)
            if not all(self._explained(scores[b], b) for b in blocks) and \
                    2 <= self.n <= self.max_seq:
                for i in range(self.n):
                    self._add_nonlinear(
                        scores, f"sequential SGD with sample {i} left out",
                        "update.skipped_samples",
                        lambda lr, i=i: self._replay_sgd(lr, skip=i), blocks, lr0, samples=[i])
            if not all(self._explained(scores[b], b) for b in blocks) and \
                    2 <= self.n <= self.max_seq:
                self._momentum(scores, blocks, lr0)
        full = self.G(self.theta)
        for b in blocks:
            if self._explained(scores[b], b) or self.theta[b].size > MAX_COMPONENTS or \
                    self.theta[b].size < 2:
                continue
            g0 = full[b].reshape(-1)
            j = int(np.argmax(np.abs(g0)))
            if j != 0 and g0[0] != 0:
                j = 0
            lr0 = -self.delta[b].reshape(-1)[j] / g0[j] if g0[j] != 0 else None
            self._add_nonlinear(
                scores, "components updated one after another from already-updated values",
                "update.sequential", lambda lr, b=b: self._replay_components(b, lr), [b], lr0)

    # -- verdicts
    def _verdicts(self, scores):
        blocks, findings = [], []
        full0 = self.G(self.theta)
        legit_fits = []
        chosen = {}
        for b in range(len(self.names)):
            if self.delta[b] is None:
                continue
            rows = sorted(scores[b], key=lambda r: r[0])
            ok = [r for r in rows if r[0] <= self.tol[b]]
            if ok:
                given = [r for r in ok if r[1] is not None and r[1] <= self.tol[b]]
                pool = given or ok
                # legitimate first; "sample k left out" before "only the last sample" when
                # both fit (the same for n = 2); the residual decides only among the rest
                pool.sort(key=lambda r: (r[3].code is not None,
                                         r[3].code == "update.last_sample_only", r[0]))
                chosen[b] = (pool[0], rows)
                if pool[0][3].code is None and pool[0][2] > 0:
                    legit_fits.append((pool[0][2], self.theta[b].size))
            else:
                chosen[b] = (None, rows)
        if self.lr_ref is None:
            fits = legit_fits or [(c[0][2], 1) for c in chosen.values() if c[0] is not None]
            self.lr_ref = _weighted_median(fits) if fits else float("nan")
        for b, nm in enumerate(self.names):
            entry = {"block": nm}
            if self.delta[b] is None:
                entry.update(verdict="update.shape_changed", explained_by=None)
                findings.append(Finding(
                    "update.shape_changed", "fault",
                    f"Your step changes the shape of {nm} from {self.theta[b].shape} to "
                    f"{self.new[b].shape} (broadcasting, e.g. a gradient not reduced over the "
                    "batch axis in an out-of-place update).",
                    evidence={"old_shape": list(self.theta[b].shape),
                              "new_shape": list(self.new[b].shape)},
                    location=nm))
                blocks.append(entry)
                continue
            gnorm = float(np.linalg.norm(full0[b]))
            if float(np.linalg.norm(self.delta[b])) <= STATIONARY * max(
                    1.0, float(np.linalg.norm(self.theta[b]))) and self._stationary(b, gnorm):
                entry.update(verdict="ok", explained_by="no (or a rounding-size) change at a "
                             "stationary point", residual=0.0)
                self.notes.append(
                    f"the gradient of {nm} is zero to rounding at params (‖∇‖ = {gnorm:.3g}): a "
                    "stationary point, where a right step and a frozen one look the same; check "
                    "from another point to test the update of this block")
                blocks.append(entry)
                continue
            if not np.any(self.delta[b]) and gnorm > 0:
                entry.update(verdict="update.frozen", explained_by="no change", residual=0.0)
                findings.append(Finding(
                    "update.frozen", "fault",
                    f"Your step leaves {nm} unchanged although its gradient is not zero "
                    f"(‖∇‖ = {gnorm:.3g}).",
                    evidence={"gradient_norm": gnorm}, location=nm))
                blocks.append(entry)
                continue
            best, rows = chosen[b]
            entry["candidates"] = [{"label": r[3].label, "residual": r[0], "lr_fit": r[2]}
                                   for r in _unique(rows)[:4]]
            if best is None:
                entry.update(verdict="update.mismatch", explained_by=None,
                             residual=rows[0][0] if rows else None)
                hint = self._attribution(b)
                msg = (f"The update of {nm} matches none of the replayed variants (best: "
                       f"{rows[0][3].label}, relative residual {rows[0][0]:.3g}).")
                severity = "fault"
                if self.n > MAX_REPLAY:
                    severity = "warning"
                    msg += (f" A per-sample SGD epoch over {self.n} rows is not replayed (limit "
                            f"{MAX_REPLAY}): if your step loops over the samples, check it on "
                            f"fewer rows (X[:{MAX_SEQUENTIAL}], y[:{MAX_SEQUENTIAL}]).")
                if hint and hint["residual"] < 1e-6:
                    w = ", ".join(f"{x:.3g}" for x in hint["weights"])
                    msg += (f" To first order it weights the samples' gradients [{w}] "
                            "(1 = each sample once).")
                decay = self._weight_decay(b, full0[b])
                if decay is not None:
                    msg += (f" It is exactly gradient descent (lr {decay['lr']:.4g}) on loss + "
                            f"(λ/2)·‖{nm}‖² with λ = {decay['weight_decay']:.4g}: weight decay "
                            "that `loss` does not include; add the term to loss if intended.")
                findings.append(Finding(
                    "update.mismatch", severity, msg,
                    evidence={"candidates": entry["candidates"], "attribution_hint": hint,
                              "weight_decay_hint": decay},
                    location=nm))
                blocks.append(entry)
                continue
            r_fit, r_given, lr_fit, cand = best
            entry.update(explained_by=cand.label, residual=r_fit, lr_fit=lr_fit)
            code = cand.code
            if code is None:
                code = self._legit_code(lr_fit, r_given, b)
            entry["verdict"] = code or "ok"
            blocks.append(entry)
            if code:
                findings.append(self._finding(code, nm, cand, lr_fit, entry))
        return blocks, _merge(findings)

    def _stationary(self, b, gnorm):
        """The block's gradient is zero to rounding: below STATIONARY times its norm at a
        point a small random step away (relative size 1e-3), where the gradient of any
        smooth loss near a stationary point is about H·δ."""
        if gnorm == 0:
            return True
        if not hasattr(self, "_near"):
            rng = np.random.default_rng(0)
            self._near = self.G([t + 1e-3 * max(1.0, float(np.max(np.abs(t)) if t.size else 1))
                                 * rng.standard_normal(t.shape) for t in self.theta])
        return gnorm <= STATIONARY * float(np.linalg.norm(self._near[b]))

    def _weight_decay(self, b, g):
        """Δθ_b = −lr·(g_b + λ·θ_b) (least squares in lr and lr·λ, λ > 0), or None."""
        th, d = self.theta[b].ravel(), self.delta[b].ravel()
        A = -np.column_stack([g.ravel(), th])
        if d.size < 3 or not np.any(th) or np.linalg.matrix_rank(A) < 2:
            return None
        (a, c), *_ = np.linalg.lstsq(A, d, rcond=None)
        fit = A @ np.array([a, c])
        if a <= 0 or c <= 0 or _rel(fit - d, d, fit) > self.tol[b]:
            return None
        return {"lr": float(a), "weight_decay": float(c / a)}

    def _attribution(self, b):
        """First-order hint: weights c_i with Δθ_b ≈ −lr Σ c_i ∇ℓ_i(θ0) (least squares).

        Only a hint (a sequential SGD epoch is not first-order in lr); None when the
        block has fewer entries than there are samples or the loss is not a sum/mean.
        """
        if self.reduction is None or self.theta[b].size < self.n or self.n > self.max_seq:
            return None
        lr = self.lr_ref if self.lr_ref and np.isfinite(self.lr_ref) else None
        if lr is None:
            return None
        Gb = np.stack([g[b].ravel() for g in self._per_sample(self.theta)], axis=1)
        c, *_ = np.linalg.lstsq(-lr * Gb, self.delta[b].ravel(), rcond=None)
        fit = -lr * Gb @ c
        return {"weights": [float(x) for x in c],
                "residual": _rel(fit - self.delta[b].ravel(), self.delta[b], fit)}

    def _legit_code(self, lr_fit, r_given, b):
        if lr_fit < 0:
            return "update.ascent"
        if self.lr is not None:
            return None if (r_given is not None and r_given <= self.tol[b]) else "update.scale"
        ref = self.lr_ref
        if ref and np.isfinite(ref) and abs(lr_fit / ref - 1) > 10 * self.tol[b]:
            return "update.scale"
        return None

    def _finding(self, code, nm, cand, lr_fit, entry):
        ev = {"block": nm, "explained_by": cand.label, "residual": entry["residual"],
              "lr_fit": lr_fit, "candidates": entry["candidates"]}
        if code == "update.ascent":
            return Finding(code, "fault",
                           f"Your update of {nm} climbs the loss: it moves along +gradient "
                           f"(effective lr {lr_fit:.4g}); use θ −= lr·g.",
                           evidence=ev, location=nm)
        if code == "update.scale":
            ratio = lr_fit / self.lr_ref
            dims = {"samples": self.n, **({"batch size": cand.batch} if cand.batch else {})}
            desc = describe_factor(ratio, dims)
            ev.update(effective_lr=lr_fit, expected_lr=self.lr_ref, factor=ratio)
            return Finding(code, "fault",
                           f"Your update of {nm} is {desc} times the expected step: effective "
                           f"lr {lr_fit:.4g} instead of {self.lr_ref:.4g} (sum vs mean over the "
                           "batch, or the batch size applied twice?).",
                           evidence=ev, fix={"multiply_update_by": float(f"{1 / ratio:.6g}")},
                           location=nm)
        if code == "update.skipped_samples":
            s = cand.samples
            return Finding(code, "fault",
                           f"Sample{'s' if len(s) > 1 else ''} {s} (0-based row of X) never "
                           f"contribute{'' if len(s) > 1 else 's'} to your update of {nm} "
                           "(off-by-one loop or wrong range?).",
                           evidence={**ev, "samples": s},
                           location=f"X[{s[0]}]" if len(s) == 1 else f"X[{s}]")
        if code == "update.last_sample_only":
            return Finding(code, "fault",
                           f"Your update of {nm} uses only the last sample's gradient: the "
                           "accumulator is assigned (=) inside the sample loop instead of summed "
                           "(+=).", evidence={**ev, "samples": cand.samples}, location=nm)
        if code == "update.sequential":
            return Finding(code, "fault",
                           f"The components of {nm} are updated one after another, each from "
                           "already-updated values (in-place aliasing: the 'temporary' vector is "
                           "the parameter itself). Compute the whole gradient first, then update.",
                           evidence=ev, fix={"copy_before_update": True}, location=nm)
        raise AssertionError(code)  # pragma: no cover


def _weighted_median(pairs):
    """Median of values weighted by block size: the step most parameter entries take
    (the larger block wins a tie, e.g. weights over a scalar bias)."""
    pairs = sorted(pairs, key=lambda p: p[0])
    total = sum(w for _, w in pairs)
    acc = 0
    for v, w in pairs:
        acc += w
        if acc * 2 > total:
            return float(v)
    return float(max(pairs, key=lambda p: p[1])[0])


def _joint_lr(delta, direction_neg, blocks):
    num = sum(float(np.vdot(delta[b], -direction_neg[b])) for b in blocks)
    den = sum(float(np.vdot(direction_neg[b], direction_neg[b])) for b in blocks)
    return num / den if den > 0 else None


def _unique(rows):
    seen, out = set(), []
    for r in rows:
        if r[3].label not in seen:
            seen.add(r[3].label)
            out.append(r)
    return out


def _merge(findings):
    """One finding per sample-level fault covering all blocks it explains."""
    out, by_key = [], {}
    for f in findings:
        if f.code == "update.skipped_samples":
            key = (f.code, tuple(f.evidence["samples"]))
            if key in by_key:
                by_key[key].evidence.setdefault("blocks", [by_key[key].evidence["block"]])
                by_key[key].evidence["blocks"].append(f.evidence["block"])
                continue
            by_key[key] = f
        out.append(f)
    for f in by_key.values():
        blocks = f.evidence.get("blocks")
        if blocks:
            f.message = f.message.replace(f"update of {f.evidence['block']}",
                                          f"update of {', '.join(blocks)}")
    return out


def _stateful(theta, new1, new2, new3, names):
    """Calls two and three with the same input: is part of the previous update carried over?

    Momentum (``v = βv + g``) and a never-reset accumulator (β = 1) carry over a
    geometric sequence: with ``c_k = Δ_k − Δ_{k−1}``, ``c_2 = β Δ_1`` and
    ``c_3 = β c_2``. A learning-rate schedule inside the step scales the update:
    ``Δ_2 = γ Δ_1``, ``Δ_3 = γ Δ_2`` (``schedule_factor``). A step whose calls
    differ otherwise is random."""
    if all(a.shape == b.shape == c.shape and np.array_equal(a, b) and np.array_equal(a, c)
           for a, b, c in zip(new1, new2, new3)):
        return None, []
    info, findings = {}, []
    for b, nm in enumerate(names):
        if any(x[b].shape != theta[b].shape for x in (new1, new2, new3)):
            continue
        d1, d2, d3 = (x[b] - theta[b] for x in (new1, new2, new3))
        if np.array_equal(d1, d2) and np.array_equal(d2, d3):
            continue
        carried, carried3 = d2 - d1, d3 - d2
        dd = float(np.vdot(d1, d1))
        beta = float(np.vdot(carried, d1)) / dd if dd > 0 else float("nan")
        resid = _rel(carried - beta * d1, carried, beta * d1) if dd > 0 else 1.0
        resid3 = _rel(carried3 - beta * carried, carried3, beta * carried) if dd > 0 else 1.0
        gamma = float(np.vdot(d2, d1)) / dd if dd > 0 else float("nan")
        sched = dd > 0 and max(_rel(d2 - gamma * d1, d2, gamma * d1),
                               _rel(d3 - gamma * d2, d3, gamma * d2)) <= 0.05
        info[nm] = {"carried_fraction": beta, "residual": resid, "third_call_residual": resid3,
                    "geometric": bool(resid <= 0.05 and resid3 <= 0.05),
                    "schedule_factor": gamma if sched else None,
                    "first_update_norm": float(np.sqrt(dd)),
                    "second_update_norm": float(np.linalg.norm(d2))}
        if abs(beta - 1) <= 0.05 and resid <= 0.05 and resid3 <= 0.05:
            findings.append(Finding(
                "update.accumulates", "fault",
                f"Your step is stateful: called twice with the same input, the second update "
                f"of {nm} re-applies the previous gradient in full (carried-over fraction "
                f"{beta:.3g}): the accumulated gradient is never reset (zero it before each "
                "step, e.g. p.grad = None).",
                evidence={"block": nm, **info[nm]}, fix={"zero_grad": True}, location=nm))
    return info, findings
