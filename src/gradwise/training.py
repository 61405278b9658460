"""The one training loop: :func:`train`, its history :class:`TrainResult`, and the
:class:`TrainState` that callbacks see.

Every estimator in :mod:`gradwise.models` trains through :func:`train`, and the
diagnostics layer (``gradwise.Monitor``) watches a run through callbacks, so the
loop, its history and its stopping rules are defined here once.

One step (one mini-batch)::

    optimizer.zero_grad()
    output = model(X_batch)
    loss = loss_fn(output, y_batch)        # at the parameters before the update
    loss.backward()
    optimizer.step()

Callbacks
---------
A callback is any object with some of these methods (missing ones are skipped)::

    on_train_begin(state)   once, before the first step
    on_step_end(state)      after every optimizer step
    on_epoch_end(state)     after every epoch (after the scheduler step)
    on_train_end(state)     once, after the last step (also after a stop)

Setting ``state.stop = True`` in a callback ends training after the current step
(``stopped_reason == "callback"``).

TrainState fields (stable; the Monitor relies on them)
------------------------------------------------------
model : Module
    The model being trained.
optimizer : Optimizer
    The optimizer (``gradwise.optim``); ``state.lr`` reads its current rate.
loss_fn : callable
    ``loss_fn(output, target)`` → scalar Tensor.
epoch : int
    0-based index of the current epoch.
step : int
    Number of optimizer steps taken so far (1 at the first ``on_step_end``).
batch : tuple (X_batch, y_batch)
    The current mini-batch (NumPy arrays; views, do not modify).
output : Tensor or None
    The model's output on the current batch.
loss : float
    Loss of the current batch, evaluated at the parameters *before* the step.
epoch_loss : float
    Mean loss over the epoch just finished (``on_epoch_end``), NaN before.
grad_norm : float
    Global L2 norm of the gradient of this step (all blocks together).
block_grad_norms : dict of str -> float
    L2 norm of each block's gradient (``"0.weight"``, ...).
update_norm : float
    L2 norm of the parameter change made by this step.
block_update_norms : dict of str -> float
    L2 norm of each block's change made by this step.
params : dict of str -> ndarray (property)
    Current parameter arrays by dotted name (live arrays, after the step).
params_before : dict of str -> ndarray (property)
    Copies of the parameters before the step (the point where ``loss`` and
    ``grads`` were evaluated).
grads : dict of str -> ndarray or None (property)
    Gradients of this step by dotted name (``None`` for a frozen block).
lr : float (property)
    Learning rate of the optimizer's first parameter group.
history : TrainResult
    The object :func:`train` will return; its fields are filled when training
    ends (during training, record what you need from the fields above).
stop : bool
    Set to True to end training after the current step.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwise._result import Finding, Result
from gradwise.data import Batches, Dataset

__all__ = [
    "train", "TrainResult", "TrainState", "loss_converged", "loss_stalled", "DivergenceWarning",
]


class DivergenceWarning(RuntimeWarning):
    """Training stopped because the loss or the gradient became NaN/inf.

    Emitted by the estimators of :mod:`gradwise.models` (``fit`` never raises
    because training diverged); :func:`train` itself only records the event
    (``TrainResult.nonfinite_step`` and a ``numeric.nonfinite`` finding) and
    leaves warning to its caller.
    """


#: Reasons a run can end with, as stored in ``TrainResult.stopped_reason``.
STOP_REASONS = (
    "max_epochs",  # the epoch budget was used up
    "converged",  # stop_when_converged and the loss curve became flat (see loss_converged)
    "no_improvement",  # stop_when_converged and the loss stayed above its earlier best
    #                   for n_iter_no_change epochs (early stopping; not converged)
    "nonfinite_loss",  # the loss became NaN/inf; the parameters of the last finite loss restored
    "nonfinite_gradient",  # the gradient became NaN/inf; the step was not taken
    "callback",  # a callback set state.stop
)


def _lr_of(optimizer: Any) -> float:
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        return float(groups[0]["lr"])
    lr = getattr(optimizer, "lr", None)
    return float(lr) if lr is not None else math.nan


@dataclass(eq=False)
class TrainState:
    """What a callback sees; the fields are documented in the module docstring of
    :mod:`gradwise.training` and are stable."""

    model: Any
    optimizer: Any
    loss_fn: Any
    history: TrainResult
    names: list[str] = field(repr=False)
    parameters: list[Any] = field(repr=False)
    _before: list[np.ndarray] = field(repr=False)
    epoch: int = 0
    step: int = 0
    batch: tuple | None = field(default=None, repr=False)
    output: Any = field(default=None, repr=False)
    loss: float = math.nan
    epoch_loss: float = math.nan
    grad_norm: float = math.nan
    block_grad_norms: dict = field(default_factory=dict)
    update_norm: float = math.nan
    block_update_norms: dict = field(default_factory=dict)
    stop: bool = False

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Current parameter arrays by dotted name (live, after the step)."""
        return {n: p.data for n, p in zip(self.names, self.parameters)}

    @property
    def params_before(self) -> dict[str, np.ndarray]:
        """Parameters before the current step (where ``loss`` and ``grads`` were taken)."""
        return dict(zip(self.names, self._before))

    @property
    def grads(self) -> dict[str, np.ndarray | None]:
        """Gradients of the current step by dotted name."""
        return {
            n: (None if p.grad is None else p.grad.data)
            for n, p in zip(self.names, self.parameters)
        }

    @property
    def lr(self) -> float:
        """Current learning rate (first parameter group)."""
        return _lr_of(self.optimizer)


class TrainResult(Result):
    """History of one :func:`train` run (a :class:`gradwise.Result`).

    Attributes
    ----------
    loss_curve : ndarray, shape (n_epochs,)
        Mean loss of each epoch: the batch losses weighted by batch size, each
        taken at the parameters before its step (scikit-learn's ``loss_curve_``).
    step_loss, grad_norm, update_norm : ndarray, shape (n_steps,)
        Per step: batch loss, global gradient L2 norm, L2 norm of the parameter
        change. When a run stops on a non-finite value, that step's loss (and
        gradient norm) is the last entry; its update norm is 0 (no step taken).
    block_grad_norms, block_update_norms : dict of str -> ndarray, shape (n_steps,)
        Gradient / update L2 norm of each parameter block by dotted name.
    initial_params : dict of str -> ndarray
        The parameters training started from (copies).
    lr : ndarray, shape (n_epochs,)
        Learning rate used in each epoch.
    epoch_time : ndarray, shape (n_epochs,)
        Wall-clock seconds per epoch; ``total_time`` is the whole run.
    n_epochs, n_steps : int
        Epochs begun and optimizer steps taken.
    stopped_reason : str
        One of ``"max_epochs"``, ``"converged"``, ``"no_improvement"``, ``"nonfinite_loss"``,
        ``"nonfinite_gradient"``, ``"callback"``.
    nonfinite_step : int or None
        0-based index of the step whose loss or gradient was not finite.
    converged : bool
        :func:`loss_converged` on ``loss_curve`` with the run's ``tol`` and
        ``n_iter_no_change``.
    params : dict of str -> ndarray
        Final parameters (copies); after a non-finite stop, the last finite ones.
    findings : list of Finding
        ``numeric.nonfinite`` (fault) when the run stopped on NaN/inf.
    """

    title = "Training"

    def _summary_lines(self) -> list[str]:
        lc = self.get("loss_curve", np.array([]))
        lines = [
            f"epochs: {self.get('n_epochs')}   steps: {self.get('n_steps')}   "
            f"stopped: {self.get('stopped_reason')}   converged: {self.get('converged')}",
        ]
        if len(lc):
            lines.append(f"loss: first epoch {lc[0]:.6g}, last epoch {lc[-1]:.6g}")
        lines.append(f"time: {self.get('total_time', 0.0):.3f} s")
        return lines


def loss_converged(
    loss_curve: Sequence[float], tol: float = 1e-4, n_iter_no_change: int = 10
) -> bool:
    """Whether a loss curve has stopped improving.

    The criterion of scikit-learn's ``MLPClassifier`` (``tol``,
    ``n_iter_no_change``; ``sklearn/neural_network/_multilayer_perceptron.py``)
    with the improvement measured as in L-BFGS-B's ``ftol`` test (Byrd, Lu,
    Nocedal & Zhu 1995; ``scipy.optimize.minimize(method="L-BFGS-B")``):
    relative for losses above 1, absolute below. Converged when none of the
    last ``n_iter_no_change`` epochs lowered the best loss seen before them by
    more than ``tol * max(|best|, 1)``.

    Parameters
    ----------
    loss_curve : sequence of float
        Epoch losses.
    tol : float, default 1e-4
        Improvement (relative to ``max(|best|, 1)``) below which an epoch counts
        as "no change".
    n_iter_no_change : int, default 10
        Epochs without such an improvement needed to call it converged.

    Returns
    -------
    bool
        False for curves shorter than ``n_iter_no_change + 1`` or containing
        non-finite values.

    Notes
    -----
    A loss-based criterion cannot tell a true optimum from a very slow approach
    (scenario S2: a tiny step on badly conditioned features); that needs the
    curvature, which :func:`gradwise.diagnose` measures.
    """
    gain = _recent_gain(loss_curve, tol, n_iter_no_change)
    # flat: no real gain, and not stuck far above the earlier best either (a run that
    # blew up and is now slowly coming down has not converged)
    return gain is not None and abs(gain) <= 1.0


def loss_stalled(
    loss_curve: Sequence[float], tol: float = 1e-4, n_iter_no_change: int = 10
) -> bool:
    """Whether none of the last ``n_iter_no_change`` epochs beat the best loss before
    them by more than ``tol * max(|best|, 1)`` — scikit-learn's early-stopping
    rule. True also when the recent losses are far *above* that best (the run got
    worse), which :func:`loss_converged` does not call converged."""
    gain = _recent_gain(loss_curve, tol, n_iter_no_change)
    return gain is not None and gain <= 1.0


class _Plateau:
    """:func:`_recent_gain` of a growing loss curve, updated in O(1) per epoch
    (a running minimum of the older epochs and a window of the last n)."""

    def __init__(self, tol: float, n: int):
        self.tol, self.n = tol, n
        self.best_before = math.inf
        self.recent: deque = deque(maxlen=n)
        self.finite = True

    def add(self, loss: float) -> float | None:
        self.finite = self.finite and math.isfinite(loss)
        if len(self.recent) == self.n:
            self.best_before = min(self.best_before, self.recent[0])
        self.recent.append(loss)
        if not self.finite or self.best_before == math.inf:
            return None
        scale = self.tol * max(abs(self.best_before), 1.0)
        return (self.best_before - min(self.recent)) / scale


def _recent_gain(loss_curve, tol, n_iter_no_change) -> float | None:
    """(best before the last n epochs - best of the last n) / (tol·max(|best|, 1)),
    None for curves of at most n epochs or with non-finite values (one definition:
    the :class:`_Plateau` the training loop updates epoch by epoch)."""
    plateau = _Plateau(tol, n_iter_no_change)
    gain = None
    for v in loss_curve:
        gain = plateau.add(float(v))
    return gain


_CALLBACK_METHODS = ("on_train_begin", "on_step_end", "on_epoch_end", "on_train_end")


def _callback_methods(callbacks: Iterable[Any], name: str) -> list:
    for cb in callbacks:
        if not any(callable(getattr(cb, m, None)) for m in _CALLBACK_METHODS):
            raise TypeError(
                f"callback {cb!r} has none of the methods {', '.join(_CALLBACK_METHODS)}; a callback "
                "is an object with some of them (a plain function would never be called)"
            )
    return [m for cb in callbacks if callable(m := getattr(cb, name, None))]


def _check_optimizer(optimizer: Any, params: list, model_name: str) -> None:
    """The optimizer must update at least one of the model's trainable parameters
    (an optimizer built over another model's parameters trained nothing, silently)."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        return  # a user's optimizer without param_groups: nothing to compare
    held = {id(p) for g in groups for p in g.get("params", ())}
    if not any(id(p) in held for p in params):
        raise ValueError(
            f"the optimizer holds none of the parameters of {model_name}; build it from this "
            "model's parameters, e.g. optim.SGD(model.parameters(), lr=...)"
        )


def _loss_value(L: Any) -> float:
    """The float value of the loss Tensor, after checking it is a scalar Tensor."""
    data = getattr(L, "data", None)
    if not hasattr(L, "backward") or not isinstance(data, np.ndarray):
        raise TypeError(
            f"loss(output, y) must return a scalar gradwise Tensor, got {type(L).__name__}; compute "
            "it with gradwise operations (e.g. gradwise.nn.MSELoss()) so that it can be differentiated"
        )
    if data.size != 1:
        raise ValueError(
            f"loss(output, y) must return a scalar, got shape {data.shape}; reduce it, e.g. with "
            ".mean() or .sum() (or reduction='mean' in a gradwise.nn loss)"
        )
    return float(data.reshape(()))


def _as_batches(data: Any, batch_size: int | None, shuffle: bool, seed: Any,
                dtype: Any = None) -> Any:
    if isinstance(data, Dataset):
        data = (data.X, data.y)
    if isinstance(data, np.ndarray) or hasattr(data, "backward"):
        raise TypeError(
            f"data is a single array of shape {np.shape(data)}; give the pair (X, y), a Dataset or "
            "an iterable of (X_batch, y_batch)"
        )
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(
                f"data must be a pair (X, y), a Dataset or a Batches object; got a tuple of "
                f"{len(data)} items"
            )
        X, y = (_to_dtype(a, dtype) for a in data)
        return Batches(X, y, batch_size, shuffle=shuffle, seed=seed)
    if batch_size is not None:
        raise ValueError(
            "batch_size applies when data is (X, y) or a Dataset; a Batches/iterable already "
            "defines its batches"
        )
    if isinstance(data, Batches) or (hasattr(data, "__iter__") and not hasattr(data, "__next__")):
        return data
    raise TypeError(
        f"data must be (X, y), a gradwise.data.Dataset or a re-iterable of (X_batch, y_batch) "
        f"batches such as gradwise.data.Batches; got {type(data).__name__}"
    )


def _to_dtype(a: Any, dtype: Any) -> Any:
    """Floating data in the parameters' float dtype (float32 parameters train in
    float32 end to end instead of being silently promoted by float64 data);
    integer data (class labels) and non-arrays are left alone."""
    if dtype is None or not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        return a
    return a if a.dtype == dtype else a.astype(dtype)


def _progress(progress: bool | None, epochs: int):
    """A rich progress bar over epochs, or None when disabled / not a terminal."""
    enabled = sys.stdout.isatty() if progress is None else bool(progress) and sys.stdout.isatty()
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=True,
    )
    bar.start()
    task = bar.add_task("", total=epochs)
    return bar, task


def _sq_norm(a: np.ndarray) -> float:
    """Squared L2 norm. ``ravel("K")`` is a view for C- and F-contiguous arrays (a
    transposed gradient), so this is one BLAS dot and no copy. A float32 dot
    overflows for entries above ~1.8e19; such a result is recomputed in float64."""
    v = a.ravel("K")
    sq = float(np.dot(v, v))
    if not math.isfinite(sq) and v.dtype != np.float64:
        v = v.astype(np.float64)
        sq = float(np.dot(v, v))
    return sq


def _records_updates(optimizer: Any) -> bool:
    """True for gradwise's optimizers that report each update (``record_updates``);
    a subclass that overrides the update falls back to copying."""
    cls = type(optimizer)
    upd = getattr(cls, "_update_group", None)
    return bool(getattr(cls, "reports_updates", False)) and getattr(
        upd, "__module__", "").startswith("gradwise.optim")


def _step(optimizer, params, before, scratch) -> list[float]:
    """One ``optimizer.step()`` after copying the parameters into ``before``;
    returns the squared L2 norm of each block's update: from the updates the
    optimizer reports (``scratch`` is None), else from the difference."""
    for p, b in zip(params, before):
        np.copyto(b, p.data)
    if scratch is None:
        recorded: list = []
        optimizer.record_updates = recorded
        try:
            optimizer.step()
        finally:
            optimizer.record_updates = None
        sq = {id(p): _sq_norm(delta) for p, delta in recorded}
        return [sq.get(id(p), 0.0) for p in params]
    optimizer.step()
    usq = []
    for p, b, s in zip(params, before, scratch):
        np.subtract(p.data, b, out=s)
        usq.append(_sq_norm(s))
    return usq


def _scheduler_stepper(scheduler: Any):
    """A function ``f(epoch_loss)`` that steps ``scheduler`` once per epoch: with the
    epoch loss when its ``step`` requires an argument (``ReduceLROnPlateau``)."""
    if scheduler is None:
        return None
    params = inspect.signature(scheduler.step).parameters.values()
    needs_metric = any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in params
    )
    return (lambda loss: scheduler.step(loss)) if needs_metric else (lambda loss: scheduler.step())


def _forward(model, loss, compiled):
    """``(xb, yb) -> (output, loss)``: eager, or one compiled call (output not kept)."""
    if not compiled:
        def run(xb, yb):
            out = model(xb)
            return out, loss(out, yb)

        return run
    from gradwise.autodiff.compile import GraphBreakWarning
    from gradwise.autodiff.compile import compile as compile_fn

    modules = model.modules() if callable(getattr(model, "modules", None)) else ()
    if any(getattr(m, "_forward_hooks", None) for m in modules):
        warnings.warn("gradwise.train(compile=True): the model has forward hooks (e.g. a "
                      "Monitor's), which a compiled step would skip; training eagerly",
                      GraphBreakWarning, stacklevel=3)
        return _forward(model, loss, False)
    step = compile_fn(lambda xb, yb: loss(model(xb), yb))
    return lambda xb, yb: (None, step(xb, yb))


def train(
    model: Any,
    loss: Any,
    optimizer: Any,
    data: Any,
    epochs: int,
    *,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    scheduler: Any = None,
    callbacks: Sequence[Any] = (),
    progress: bool | None = None,
    stop_on_nonfinite: bool = True,
    tol: float = 1e-4,
    n_iter_no_change: int = 10,
    stop_when_converged: bool = False,
    compile: bool = False,  # noqa: A002  (torch.compile's name)
) -> TrainResult:
    """Train ``model`` by minimising ``loss`` with ``optimizer`` — the one training loop.

    Parameters
    ----------
    model : gradwise.nn.Module
        Called as ``model(X_batch)``; its ``named_parameters()`` are recorded.
    loss : callable
        ``loss(output, y_batch)`` → scalar Tensor, e.g. ``gradwise.nn.MSELoss()``.
    optimizer : gradwise.optim optimizer
        Holds the model's parameters; ``zero_grad()`` and ``step()`` are called
        once per batch.
    data : (X, y), Dataset, Batches or re-iterable of (X_batch, y_batch)
        The training data. A pair or a Dataset is batched here with
        ``batch_size``, ``shuffle`` and ``seed``.
    epochs : int
        Number of passes over the data (>= 1).
    batch_size : int or None, default None
        ``None`` = full batch (gradient descent); ``1`` = per-sample SGD.
    shuffle : bool, default True
        Reshuffle mini-batches every epoch (no effect on the full batch).
    seed : int, numpy.random.Generator or None
        Seed of the shuffling.
    scheduler : gradwise.optim scheduler, optional
        Stepped once per epoch (``ReduceLROnPlateau`` gets the epoch loss).
    callbacks : sequence of objects
        See the module docstring (``on_train_begin``, ``on_step_end``,
        ``on_epoch_end``, ``on_train_end``).
    progress : bool or None, default None
        Show a rich progress bar; ``None`` = only when stdout is a terminal.
        Never shown when stdout is not a terminal.
    stop_on_nonfinite : bool, default True
        Stop at the first NaN/inf loss (restoring the parameters at which the
        loss was last finite) or NaN/inf gradient (before stepping). The caller
        decides whether to warn; the result records ``nonfinite_step`` and a
        ``numeric.nonfinite`` finding.
    tol, n_iter_no_change : float, int
        Convergence criterion on the epoch losses, see :func:`loss_converged`.
    stop_when_converged : bool, default False
        End training early once the criterion holds (otherwise every epoch of
        the budget runs and ``converged`` is only reported).
    compile : bool, default False
        Run ``loss(model(X_batch), y_batch)`` and its backward pass through
        :func:`gradwise.compile` (one trace per batch shape, replayed as
        straight-line NumPy code: the same numbers with less Python overhead per
        step). Callbacks then see ``state.output = None``; a model that cannot be
        traced (forward hooks, value-dependent branches) trains eagerly with a
        ``GraphBreakWarning``.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError, TypeError
        For an invalid ``epochs``, ``data`` or batch size, or a model without
        trainable parameters.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    loader = _as_batches(data, batch_size, shuffle, seed, named[0][1].data.dtype)
    names = [n for n, _ in named]
    params = [p for _, p in named]
    _check_optimizer(optimizer, params, type(model).__name__)
    initial_params = {n: p.data.copy() for n, p in zip(names, params)}
    # a copy of the parameters before each step (the exact restore point after a
    # non-finite loss); the update itself is read from the optimizer when it reports
    # it, else measured against that copy
    before = [np.empty_like(p.data) for p in params]
    scratch = None if _records_updates(optimizer) else [np.empty_like(p.data) for p in params]

    result = TrainResult()
    state = TrainState(model, optimizer, loss, result, names, params, before)
    cb_begin, cb_step, cb_epoch, cb_end = (_callback_methods(callbacks, m) for m in _CALLBACK_METHODS)
    step_loss: list[float] = []
    grad_sq: list[list[float]] = []  # per step, per block squared norms
    update_norm: list[float] = []
    upd_sq: list[list[float]] = []  # per step, per block squared update norms
    loss_curve: list[float] = []
    lrs: list[float] = []
    epoch_time: list[float] = []
    stopped_reason = "max_epochs"
    nonfinite_step = None
    bad_block = None
    step_scheduler = _scheduler_stepper(scheduler)
    plateau = _Plateau(tol, n_iter_no_change) if stop_when_converged else None
    bar = _progress(progress, int(epochs))

    if hasattr(model, "train"):
        model.train()
    t_start = time.perf_counter()
    for cb in cb_begin:
        cb(state)
    forward = _forward(model, loss, compile)  # after the callbacks attached their hooks
    try:
        for epoch in range(int(epochs)):
            t0 = time.perf_counter()
            state.epoch = epoch
            lrs.append(_lr_of(optimizer))
            total, count = 0.0, 0
            for xb, yb in loader:
                optimizer.zero_grad()
                out, L = forward(xb, yb)
                lv = _loss_value(L)
                n_b = len(xb)
                if not math.isfinite(lv) and stop_on_nonfinite:
                    nonfinite_step, stopped_reason = len(step_loss), "nonfinite_loss"
                    step_loss.append(lv)
                    grad_sq.append([math.nan] * len(params))
                    update_norm.append(0.0)
                    upd_sq.append([0.0] * len(params))
                    if len(step_loss) > 1:  # restore the last finite point
                        for p, b in zip(params, before):
                            np.copyto(p.data, b)
                    break
                L.backward()
                sq = [0.0 if p.grad is None else _sq_norm(p.grad.data) for p in params]
                gsq = math.fsum(sq)
                step_loss.append(lv)
                grad_sq.append(sq)
                if not math.isfinite(gsq) and stop_on_nonfinite:
                    bad = [
                        n
                        for n, p in zip(names, params)
                        if p.grad is not None and not np.all(np.isfinite(p.grad.data))
                    ]
                    if bad:  # (a finite gradient whose norm overflows float64 trains on)
                        nonfinite_step, stopped_reason = len(step_loss) - 1, "nonfinite_gradient"
                        bad_block = bad[0]
                        update_norm.append(0.0)
                        upd_sq.append([0.0] * len(params))
                        break
                usq = _step(optimizer, params, before, scratch)
                upd_sq.append(usq)
                update_norm.append(math.sqrt(math.fsum(usq)))
                total += lv * n_b
                count += n_b
                if cb_step:
                    state.step = len(update_norm)
                    state.batch, state.output, state.loss = (xb, yb), out, lv
                    state.grad_norm = math.sqrt(gsq)
                    state.block_grad_norms = dict(zip(names, map(math.sqrt, sq)))
                    state.update_norm = update_norm[-1]
                    state.block_update_norms = dict(zip(names, map(math.sqrt, usq)))
                    for cb in cb_step:
                        cb(state)
                    if state.stop:
                        stopped_reason = "callback"
                        break
            epoch_time.append(time.perf_counter() - t0)
            if count:
                loss_curve.append(total / count)
            if stopped_reason != "max_epochs":
                break
            state.epoch_loss = loss_curve[-1]
            if step_scheduler is not None:
                step_scheduler(state.epoch_loss)
            for cb in cb_epoch:
                cb(state)
            if bar is not None:
                bar[0].update(bar[1], advance=1, description=f"loss {state.epoch_loss:.4g}")
            if state.stop:
                stopped_reason = "callback"
                break
            if stop_when_converged:
                gain = plateau.add(loss_curve[-1]) if count else None
                if gain is not None and gain <= 1.0:  # loss_stalled, in O(1) per epoch
                    stopped_reason = "converged" if abs(gain) <= 1.0 else "no_improvement"
                    break
    finally:
        if bar is not None:
            bar[0].stop()

    sq_arr = np.sqrt(np.asarray(grad_sq, dtype=np.float64).reshape(len(grad_sq), len(params)))
    up_arr = np.sqrt(np.asarray(upd_sq, dtype=np.float64).reshape(len(upd_sq), len(params)))
    result.update(
        loss_curve=np.asarray(loss_curve, dtype=np.float64),
        step_loss=np.asarray(step_loss, dtype=np.float64),
        grad_norm=np.sqrt(np.sum(sq_arr**2, axis=1)),
        update_norm=np.asarray(update_norm, dtype=np.float64),
        block_grad_norms={n: sq_arr[:, i] for i, n in enumerate(names)},
        block_update_norms={n: up_arr[:, i] for i, n in enumerate(names)},
        initial_params=initial_params,
        lr=np.asarray(lrs, dtype=np.float64),
        epoch_time=np.asarray(epoch_time),
        total_time=time.perf_counter() - t_start,
        n_epochs=len(epoch_time),
        n_steps=len(update_norm) - (nonfinite_step is not None),
        stopped_reason=stopped_reason,
        nonfinite_step=nonfinite_step,
        converged=loss_converged(loss_curve, tol, n_iter_no_change),
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        params={n: p.data.copy() for n, p in zip(names, params)},
    )
    if nonfinite_step is not None:
        result.findings.append(_nonfinite_finding(result, bad_block))
    state.stop = True
    for cb in cb_end:
        cb(state)
    return result


def _nonfinite_finding(result: TrainResult, block: str | None) -> Finding:
    step = result.nonfinite_step
    what = "gradient" if block else "loss"
    finite = result.step_loss[np.isfinite(result.step_loss)]
    last = float(finite[-1]) if len(finite) else None
    msg = (
        f"the {what} became non-finite (NaN/inf) at step {step} (epoch {result.n_epochs - 1}); "
        "training stopped and the parameters of the last finite loss were kept"
    )
    if last is not None:
        msg += f" (last finite loss {last:.6g})"
    return Finding(
        code="numeric.nonfinite",
        severity="fault",
        message=msg + ". Usual cause: a learning rate above the stability limit.",
        evidence={
            "step": step,
            "epoch": result.n_epochs - 1,
            "what": what,
            "last_finite_loss": last,
        },
        location=block,
    )
