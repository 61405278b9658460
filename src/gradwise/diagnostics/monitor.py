"""``Monitor``: what happens inside a training run, step by step.

Per recorded step: the loss, the gradient norm of every parameter block, the
update-to-parameter ratio ``‖Δp‖/‖p‖`` of every block (Karpathy, "CS231n: Neural
Networks Part 3", babysitting the learning process: about 1e-3 is healthy), and
per activation layer the saturated fraction (sigmoid/tanh) or the dead fraction
(ReLU). The first non-finite value is kept with its step and block.

A monitor is a callback of :func:`gradwise.train` (``callbacks=[monitor]``) and
also serves a hand-written loop::

    mon = gradwise.Monitor()
    for step in range(1000):
        ...
        mon.record(step=step, loss=loss, params=params, grads=grads)
    gradwise.diagnose(history=mon, lr=lr)

Thresholds (where a value counts as saturated or dead)
------------------------------------------------------
- Sigmoid: activation outside [0.01, 0.99], i.e. σ'(z) = a(1-a) < 0.0099, below 4%
  of its maximum 1/4 (|z| > 4.6). Tanh: |a| > 0.99, i.e. 1 - a² < 0.02, below 2%
  of its maximum 1. These are the plateaus Glorot & Bengio (2010, "Understanding
  the difficulty of training deep feedforward neural networks", §3) show trapping
  sigmoid networks; a gradient through such a unit is attenuated 25-50×.
- ReLU: a unit is dead on a set of inputs when its output is 0 for every one of
  them (Lu et al. 2019, "Dying ReLU and initialization"); the fraction is over
  units, counted per epoch in :func:`gradwise.train` and per call otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise._tree import flatten
from gradwise._util import to_array

__all__ = ["Monitor", "activation_stats", "SIGMOID_SAT", "TANH_SAT"]

#: sigmoid activations outside [SIGMOID_SAT, 1 - SIGMOID_SAT] are saturated: there
#: σ' = σ(1-σ) < 0.0099, under 4% of its maximum 1/4, so the local gradient is cut
#: by a factor > 25 (the saturation measure of Glorot & Bengio 2010, §3, Fig. 2,
#: which tracks activations near 0 and 1)
SIGMOID_SAT = 0.01
#: tanh activations with |a| > TANH_SAT are saturated: tanh' = 1 - a² < 0.0199,
#: under 2% of its maximum 1 (same measure, Glorot & Bengio 2010, §3)
TANH_SAT = 0.99
_KINDS = ("sigmoid", "tanh", "relu")


def activation_stats(kind: str, a: Any) -> dict:
    """Saturation or death statistics of one layer's activations.

    Parameters
    ----------
    kind : {"sigmoid", "tanh", "relu"}
    a : array_like, shape (n_samples, n_units) or (n_units,)
        The layer's output.

    Returns
    -------
    dict
        sigmoid/tanh: ``{"saturated": fraction of entries saturated,
        "units_saturated": fraction of units saturated on more than half the
        samples}``; relu: ``{"dead": fraction of units with output 0 on every
        sample, "active": per-unit bool array}``.
    """
    a = to_array(a)
    a2 = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
    if kind == "sigmoid":
        sat = (a2 < SIGMOID_SAT) | (a2 > 1.0 - SIGMOID_SAT)
    elif kind == "tanh":
        sat = np.abs(a2) > TANH_SAT
    elif kind == "relu":
        active = np.any(a2 > 0, axis=0)
        return {"dead": float(1.0 - active.mean()), "active": active}
    else:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return {"saturated": float(sat.mean()), "units_saturated": float((sat.mean(axis=0) > 0.5).mean())}


class _Layer:
    """Running statistics of one activation layer."""

    __slots__ = ("kind", "sat_sum", "count", "active", "history")

    def __init__(self, kind: str):
        self.kind = kind
        self.sat_sum = 0.0
        self.count = 0
        self.active = None
        self.history: list[tuple[int, float]] = []

    def add(self, a: Any) -> None:
        a = to_array(a)
        if self.kind == "relu":
            # per-unit running maximum: a unit is active if its max output is > 0
            m = a.reshape(-1, a.shape[-1]).max(axis=0) if a.ndim else a.reshape(1)
            if self.active is None or self.active.shape != m.shape:
                self.active = m.copy()
            else:
                np.maximum(self.active, m, out=self.active)
        else:
            self.sat_sum += activation_stats(self.kind, a)["saturated"]
        self.count += 1

    def close(self, step: int) -> None:
        """End an accumulation window (an epoch): store its value and reset."""
        if not self.count:
            return
        if self.kind == "relu":
            v = float(np.mean(self.active <= 0))
        else:
            v = self.sat_sum / self.count
        self.history.append((step, v))
        self.sat_sum, self.count, self.active = 0.0, 0, None


class Monitor:
    """Record a training run: loss, gradient norms, update ratios, activations.

    Parameters
    ----------
    activations : bool, default True
        Install forward hooks on the model's sigmoid, tanh and ReLU modules
        (``gradwise.train`` only) and record their statistics.
    every : int, default 1
        Record every ``every``-th step (activation statistics are then also
        gathered only on those steps' forward passes).
    ratio_every : int, default 10
        In :func:`gradwise.train`, the update-to-parameter ratio of every block
        costs a subtraction and two dot products per parameter; it is measured on
        every ``ratio_every``-th record (a slowly varying quantity), which keeps
        the monitor under 5% of an epoch. If the training loop reports per-block
        update norms (``state.block_update_norms``) the ratio is recorded at every
        step, with ``‖p‖`` refreshed every ``ratio_every`` records.

    Attributes
    ----------
    steps : list of int
        Step number of each record.
    loss : list of float
    grad_norm : dict of str -> list of float
        Per block (``"0.weight"`` in a model, ``"W"`` for a dict of parameters).
    update_ratio : dict of str -> list of float
        ``‖p_t - p_{t-1}‖ / ‖p_{t-1}‖`` per block (in ``gradwise.train``: on every
        ``ratio_every``-th record, see above).
    lr : list of float
    activations : dict of str -> list of (step, value)
        Per layer name ("1" for the second module of a Sequential): the mean
        saturated fraction of a sigmoid/tanh layer, or the dead-unit fraction of a
        ReLU layer, per epoch (``gradwise.train``) or per :meth:`close_window`.
    activation_kind : dict of str -> str
    nonfinite : dict or None
        ``{"step", "block", "what"}`` of the first NaN/inf seen (``what`` is
        ``"loss"``, ``"grad"`` or ``"param"``).
    initial_params : dict of str -> ndarray or None
        Copies of the parameters at the first record / at ``on_train_begin``.

    Examples
    --------
    >>> import numpy as np, gradwise
    >>> mon = gradwise.Monitor()
    >>> w = np.array([1.0, 2.0])
    >>> for t in range(3):
    ...     g = 2 * w
    ...     mon.record(step=t, loss=float(w @ w), params={"w": w}, grads={"w": g})
    ...     w = w - 0.1 * g
    >>> [round(v, 3) for v in mon.loss]
    [5.0, 3.2, 2.048]
    """

    def __init__(self, *, activations: bool = True, every: int = 1, ratio_every: int = 10):
        for name, v in (("every", every), ("ratio_every", ratio_every)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.ratio_every = int(ratio_every)
        self.track_activations = bool(activations)
        self.every = int(every)
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.lr: list[float] = []
        self.grad_norm: dict[str, list[float]] = {}
        self.update_ratio: dict[str, list[float]] = {}
        self.activations: dict[str, list[tuple[int, float]]] = {}
        self.activation_kind: dict[str, str] = {}
        self.nonfinite: dict | None = None
        self.initial_params: dict[str, np.ndarray] | None = None
        self.model = None
        self.loss_fn = None
        self.optimizer = None
        self._layers: dict[str, _Layer] = {}
        self._handles: list[Any] = []
        self._prev: dict[str, np.ndarray] | None = None
        self._calls = 0
        self._gather = True
        self._scratch: dict[str, np.ndarray] = {}
        self._pnorm: dict[str, float] = {}

    # ------------------------------------------------------------------ user loop API
    def record(
        self,
        step: int | None = None,
        loss: Any = None,
        params: Any = None,
        grads: Any = None,
        lr: float | None = None,
        params_before: Any = None,
    ) -> None:
        """Record one step of a training loop.

        Parameters
        ----------
        step : int, optional
            Step number (default: the number of records so far).
        loss : float or scalar Tensor, optional
            The loss of this step.
        params : array, tuple/list or dict of arrays, optional
            Parameters after the step (the update ratio compares them with the
            previous record's, or with ``params_before``).
        grads : same structure as ``params``, optional
            Gradients of this step. A block whose gradient is None is skipped.
        lr : float, optional
        params_before : same structure as ``params``, optional
            Parameters before the step (saves a copy).

        Raises
        ------
        TypeError
            A step that is not an integer, a loss that is not a number.
        ValueError
            A step not after the last recorded one, a loss that is not a
            scalar, gradients of blocks that ``params`` lacks or of another shape.
        """
        self._calls += 1
        if step is None:
            step = self.steps[-1] + 1 if self.steps else 0
        elif isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an integer, got {step!r}")
        elif self.steps and step <= self.steps[-1]:
            raise ValueError(
                f"step {step} is not after the last recorded step {self.steps[-1]}; steps must "
                "increase (use a new Monitor for a new run)"
            )
        lv = self._loss_value(loss)
        named = self._named(params) if params is not None else None
        named_grads = self._named(grads) if grads is not None else None
        if named is not None and named_grads is not None:
            self._check_grads(named, named_grads)
        if (self._calls - 1) % self.every:
            if params is not None and params_before is None:
                self._prev = None  # ratios need consecutive records
            return
        self.steps.append(int(step))
        self.loss.append(lv)
        self.lr.append(math.nan if lr is None else float(lr))
        if loss is not None and not math.isfinite(lv):
            self._flag(step, None, "loss")
        if named_grads is not None:
            for name, g in named_grads.items():
                # no gradient for this block (unused, frozen): NaN keeps the series aligned
                # with the steps, but it is not a non-finite gradient
                n = math.nan if g is None else float(np.linalg.norm(g))
                self.grad_norm.setdefault(name, []).append(n)
                if g is not None and not math.isfinite(n):
                    self._flag(step, name, "grad")
        if named is not None:
            if self.initial_params is None:
                self.initial_params = {k: np.array(v, dtype=float) for k, v in named.items()}
            before = self._named(params_before) if params_before is not None else self._prev
            for name, p in named.items():
                if before is not None and name in before:
                    self._ratio(step, name, p, before[name])
                elif not np.all(np.isfinite(p)):
                    self._flag(step, name, "param")
            if params_before is None:
                self._prev = {k: np.array(v, dtype=float) for k, v in named.items()}

    @staticmethod
    def _loss_value(loss: Any) -> float:
        """The loss as a float (NaN when not given); a scalar is required."""
        if loss is None:
            return math.nan
        a = np.asarray(to_array(loss))
        if a.dtype.kind not in "biuf":
            raise TypeError(f"loss must be a number or a scalar Tensor, got {loss!r}")
        if a.size != 1:
            raise ValueError(f"loss must be a scalar, got shape {a.shape}; record the mean (or sum) loss")
        return float(a.reshape(()))

    @staticmethod
    def _check_grads(params: dict, grads: dict) -> None:
        """Gradients must name blocks of ``params`` and have their shapes."""
        extra = [k for k in grads if k not in params]
        if extra:
            raise ValueError(
                f"grads has block(s) {extra} that params does not have ({list(params)}); give both "
                "with the same structure"
            )
        for k, g in grads.items():
            if g is not None and params[k] is not None and np.shape(g) != np.shape(params[k]):
                raise ValueError(
                    f"the gradient of {k!r} has shape {np.shape(g)} but the parameter has shape "
                    f"{np.shape(params[k])}"
                )

    def record_activation(self, layer: str, kind: str, a: Any) -> None:
        """Add one batch of activations of a hand-written layer (``kind`` is
        "sigmoid", "tanh" or "relu"); :meth:`close_window` turns what was added
        into one value per layer."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        lay = self._layers.get(layer)
        if lay is None:
            lay = self._layers[layer] = _Layer(kind)
            self.activation_kind[layer] = kind
            self.activations[layer] = lay.history
        lay.add(a)

    def close_window(self, step: int | None = None) -> None:
        """Store the activation statistics gathered since the last call (one value
        per layer) and start a new window."""
        s = self.steps[-1] if step is None and self.steps else (step or 0)
        for lay in self._layers.values():
            lay.close(s)

    def _ratio(self, step: int, name: str, p: np.ndarray, b: np.ndarray) -> None:
        """Append ``‖p - b‖/‖b‖`` (NaN for a zero block) and flag a non-finite update."""
        nd = float(np.linalg.norm(p - b))
        nb = float(np.linalg.norm(b))
        self.update_ratio.setdefault(name, []).append(nd / nb if nb > 0 else math.nan)
        if not math.isfinite(nd):
            self._flag(step, name, "param")

    def _flag(self, step: int, block: str | None, what: str) -> None:
        if self.nonfinite is None:
            self.nonfinite = {"step": int(step), "block": block, "what": what}

    @staticmethod
    def _named(tree: Any) -> dict[str, np.ndarray]:
        if isinstance(tree, dict) and all(isinstance(k, str) for k in tree):
            return {k: (None if v is None else to_array(v)) for k, v in tree.items()}
        leaves, info, _ = flatten(tree)
        return {leaf.name: (None if v is None else to_array(v)) for v, leaf in zip(leaves, info)}

    # ------------------------------------------------------------------ gradwise.train callbacks
    def on_train_begin(self, state: Any) -> None:
        """Keep references to the model, loss and optimizer, copy the initial
        parameters and install the activation hooks."""
        self.model, self.loss_fn, self.optimizer = state.model, state.loss_fn, state.optimizer
        self.initial_params = {k: np.array(v, dtype=float) for k, v in state.params.items()}
        if self.track_activations:
            self.attach(state.model)

    def on_step_end(self, state: Any) -> None:
        """Record the step from the :class:`~gradwise.training.TrainState`."""
        self._gather = (state.step % self.every) == 0
        if (state.step - 1) % self.every:
            self._pnorm.clear()  # ‖b‖ must then be computed afresh
            return
        self.steps.append(int(state.step))
        self.loss.append(float(state.loss))
        self.lr.append(float(state.lr))
        if not math.isfinite(state.loss):
            self._flag(state.step, None, "loss")
        for name, n in state.block_grad_norms.items():
            self.grad_norm.setdefault(name, []).append(n)
            if not math.isfinite(n):
                self._flag(state.step, name, "grad")
        loop_norms = getattr(state, "block_update_norms", None)
        if loop_norms:  # the loop measured ‖Δp‖ per block already: only ‖p‖ is left
            self._ratios_from(state, loop_norms)
            return
        if (len(self.steps) - 1) % self.ratio_every:
            return
        before = state.params_before
        scratch, norms = self._scratch, self._pnorm
        for name, p in state.params.items():
            # ‖p - b‖ into a reused buffer; ‖b‖ is last step's ‖p‖ (cached), so
            # one subtraction and two dot products per block and step
            b = before[name]
            buf = scratch.get(name)
            if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
                buf = scratch[name] = np.empty_like(p)
            np.subtract(p, b, out=buf)
            flat = buf.reshape(-1)
            nd = math.sqrt(float(np.dot(flat, flat)))
            nb = norms.get(name)
            if nb is None:
                bf = b.reshape(-1)
                nb = math.sqrt(float(np.dot(bf, bf)))
            pf = p.reshape(-1)
            norms[name] = math.sqrt(float(np.dot(pf, pf)))
            self.update_ratio.setdefault(name, []).append(nd / nb if nb > 0 else math.nan)
            if not math.isfinite(nd):
                self._flag(state.step, name, "param")

    def _ratios_from(self, state: Any, update_norms: dict) -> None:
        """Update ratios ‖Δp‖/‖p_before‖ from the loop's per-block update norms;
        ‖p_before‖ (one dot product per block) is refreshed every ``ratio_every``
        records."""
        refresh = (len(self.steps) - 1) % self.ratio_every == 0 or not self._pnorm
        params = state.params_before if refresh else None
        for name, nd in update_norms.items():
            if refresh:
                pf = params[name].reshape(-1)
                self._pnorm[name] = math.sqrt(float(np.dot(pf, pf)))
            nb = self._pnorm.get(name, 0.0)
            self.update_ratio.setdefault(name, []).append(nd / nb if nb > 0 else math.nan)
            if not math.isfinite(nd):
                self._flag(state.step, name, "param")

    def on_epoch_end(self, state: Any) -> None:
        """Close the activation window of the epoch."""
        self.close_window(state.step)

    def on_train_end(self, state: Any) -> None:
        """Close the last window and remove the hooks."""
        if any(lay.count for lay in self._layers.values()):
            self.close_window(state.step)
        self.detach()

    # ------------------------------------------------------------------ hooks on a model
    def attach(self, model: Any) -> None:
        """Install forward hooks on every sigmoid/tanh/ReLU module of ``model``
        (modules whose ``name`` attribute is one of them)."""
        self.detach()
        for name, mod in model.named_modules():
            kind = getattr(mod, "name", None)
            if kind in _KINDS:
                layer = name or type(mod).__name__
                self._handles.append(mod.register_forward_hook(self._hook(layer, kind)))

    def detach(self) -> None:
        """Remove the hooks installed by :meth:`attach`."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, layer: str, kind: str):
        def hook(module, inputs, output):
            if self._gather:
                self.record_activation(layer, kind, output)

        return hook

    def probe(self, model: Any, X: Any) -> dict[str, dict]:
        """Activation statistics of one forward pass of ``model`` on ``X``.

        Returns
        -------
        dict of layer name -> dict
            ``{"kind", "saturated"}`` or ``{"kind", "dead"}`` (see
            :func:`activation_stats`); nothing is added to the monitor's history.
        """
        out: dict[str, dict] = {}
        handles = []
        for name, mod in model.named_modules():
            kind = getattr(mod, "name", None)
            if kind in _KINDS:
                def hook(module, inputs, output, layer=name or type(mod).__name__, kind=kind):
                    st = activation_stats(kind, output)
                    st.pop("active", None)
                    out[layer] = {"kind": kind, **st}

                handles.append(mod.register_forward_hook(hook))
        try:
            import gradwise

            with gradwise.no_grad():
                model(np.asarray(X, dtype=float))
        finally:
            for h in handles:
                h.remove()
        return out

    # ------------------------------------------------------------------ views
    def history(self) -> np.ndarray:
        """The recorded losses as a float64 array (one per recorded step)."""
        return np.asarray(self.loss, dtype=float)

    def last_activations(self) -> dict[str, dict]:
        """The latest value per activation layer: ``{"kind", "saturated"|"dead"}``."""
        out = {}
        for layer, hist in self.activations.items():
            if hist:
                kind = self.activation_kind[layer]
                key = "dead" if kind == "relu" else "saturated"
                out[layer] = {"kind": kind, key: hist[-1][1]}
        return out

    def to_dict(self) -> dict:
        """Plain-data snapshot (JSON-safe with :func:`gradwise._result.jsonable`)."""
        return {
            "steps": list(self.steps),
            "loss": list(self.loss),
            "lr": list(self.lr),
            "grad_norm": {k: list(v) for k, v in self.grad_norm.items()},
            "update_ratio": {k: list(v) for k, v in self.update_ratio.items()},
            "activations": {k: list(v) for k, v in self.activations.items()},
            "activation_kind": dict(self.activation_kind),
            "nonfinite": self.nonfinite,
        }

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_handles"] = []
        d["_scratch"] = {}
        d["model"] = d["loss_fn"] = d["optimizer"] = None
        return d

    def __repr__(self) -> str:
        return (f"<Monitor steps={len(self.steps)} blocks={list(self.grad_norm)} "
                f"layers={list(self.activations)} nonfinite={self.nonfinite}>")
