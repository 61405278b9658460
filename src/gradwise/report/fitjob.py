"""The main job behind ``gradwise fit``: validate, load, train, check, diagnose, report.

:func:`prepare` validates everything (options, data, model/loss/target
combination, output folder) and raises :class:`BadInput` with one line before
anything is written; :func:`run` trains with a progress bar, checks the model's
gradient at the start, takes the diagnosis, and writes ``report.json``,
``loss.png`` and ``gradients.png``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BadInput",
    "InternalError",
    "FitOptions",
    "ModelSpec",
    "Job",
    "DEFAULT_RUN",
    "parse_model_spec",
    "parse_batch_size",
    "parse_patience",
    "stop_text",
    "infer_task",
    "prepare",
    "run",
]


class BadInput(ValueError):
    """Bad usage or bad input; the message is one line naming the problem and the fix."""


class InternalError(RuntimeError):
    """gradwise itself failed (e.g. the diagnosis of a finished run); nothing is written."""


@dataclass
class FitOptions:
    """The options of ``gradwise fit`` as given on the command line (``None``: not given)."""

    data: str | None = None
    target: str | None = None
    features: str | None = None
    model: str | None = None
    activation: str | None = None
    loss: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    epochs: int | None = None
    batch_size: str | None = None
    standardize: bool = False
    seed: int | None = None
    out: Path | None = None
    force: bool = False
    dropna: bool = False
    init: str | None = None
    patience: str | None = None


#: The run without DATA: scenario S2 on real data — scikit-learn's diabetes data in
#: raw units, BMI → disease progression, a line fit by plain gradient descent with
#: the settings people use (lr 1e-4, 1000 epochs). gradwise shows that it has not
#: converged, why (κ ≈ 2.6e4) and a verified fix.
DEFAULT_RUN = {"dataset": "diabetes_bmi", "model": "linear", "lr": 1e-4, "epochs": 1000}

#: A numeric target with more distinct values than this is not taken as class labels
#: (a classifier with one output per value would be meaningless; text labels are
#: always classes).
MAX_NUMERIC_CLASSES = 50

_MODEL_HELP = "use linear, poly:N, logistic or mlp:H1[,H2...] (e.g. mlp:16,8)"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value.

    Attributes
    ----------
    kind : {"linear", "poly", "logistic", "mlp"}
    degree : int or None
        Polynomial degree for ``poly``.
    hidden : tuple of int or None
        Hidden layer sizes for ``mlp`` (``None``: the estimator's default).
    text : str
        The value as given.
    """

    kind: str
    degree: int | None = None
    hidden: tuple[int, ...] | None = None
    text: str = ""


def _is_int(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` is also true for '²', which ``int`` rejects)."""
    t = text.strip()
    return t.isascii() and t.isdigit()


def parse_model_spec(text: str) -> ModelSpec:
    """Parse ``linear``, ``poly:N``, ``logistic`` or ``mlp:H1[,H2...]``.

    Raises
    ------
    BadInput
        Unknown model, or a degree / layer size that is not a positive integer.
    """
    kind, colon, arg = text.strip().lower().partition(":")
    if kind in ("linear", "logistic") and not colon:
        return ModelSpec(kind, text=text)
    if kind == "poly":
        if not _is_int(arg) or int(arg) < 1:
            raise BadInput(f"--model {text!r}: the degree must be a positive integer, e.g. poly:3")
        return ModelSpec("poly", degree=int(arg), text=text)
    if kind == "mlp":
        if not colon:
            return ModelSpec("mlp", text=text)
        sizes = [s.strip() for s in arg.split(",")]
        if not all(_is_int(s) and int(s) >= 1 for s in sizes):
            raise BadInput(f"--model {text!r}: hidden layer sizes must be positive integers, e.g. mlp:16,8")
        return ModelSpec("mlp", hidden=tuple(int(s) for s in sizes), text=text)
    raise BadInput(f"unknown --model {text!r}: {_MODEL_HELP}")


def parse_batch_size(text: str | None, n_samples: int) -> int | None:
    """``None`` or ``"full"`` → ``None`` (full batch); else a size in 1..n_samples.

    Raises
    ------
    BadInput
        Not ``full`` nor a positive integer, or larger than the number of rows.
    """
    if text is None or text.strip().lower() == "full":
        return None
    t = text.strip()
    if not _is_int(t) or int(t) < 1:
        raise BadInput(f"--batch-size {text!r}: give a positive integer or 'full'")
    if int(t) > n_samples:
        raise BadInput(f"--batch-size {t} is larger than the {n_samples} rows; use --batch-size full")
    return int(t)


def _is_labels(y: np.ndarray) -> bool:
    return y.dtype.kind in "USO"


def _is_01(y: np.ndarray) -> bool:
    return not _is_labels(y) and set(np.unique(y).tolist()) == {0, 1}


def infer_task(y: np.ndarray, spec: ModelSpec | None, loss: str | None, dataset_task: str | None) -> str:
    """Decide regression, binary or multiclass classification and check the combination.

    Rules: ``--loss mse`` or ``--model linear|poly:N`` mean regression;
    ``--loss bce|ce`` or ``--model logistic`` mean classification; otherwise
    text labels, a 0/1 target or a bundled classification dataset mean
    classification, anything else regression.

    Raises
    ------
    BadInput
        An impossible combination: a classification loss with a regression model
        (or the reverse), a regression on text labels, classification of a
        target with non-integer values, ``bce`` with more than two classes.
    """
    kind = spec.kind if spec else None
    if loss in ("bce", "ce") and kind in ("linear", "poly"):
        raise BadInput(
            f"--loss {loss} is a classification loss but --model {spec.text} is a least-squares "
            "regression (mse); use --model logistic or mlp:H for classes, or drop --loss"
        )
    if loss == "mse" and kind == "logistic":
        raise BadInput(
            "--loss mse does not go with --model logistic (fit by log-loss); use --model linear "
            "for a numeric target, or --loss bce/ce"
        )
    if loss == "mse" or kind in ("linear", "poly"):
        classify = False
    elif loss in ("bce", "ce") or kind == "logistic":
        classify = True
    else:
        classify = _is_labels(y) or _is_01(y) or dataset_task == "classification"
    if not classify:
        if _is_labels(y):
            raise BadInput(
                f"the target has text labels ({', '.join(map(str, np.unique(y)[:3]))}, ...), which a "
                "regression cannot fit; use --model logistic or mlp:H"
            )
        return "regression"
    if not _is_labels(y) and not np.all(np.mod(y, 1) == 0):
        raise BadInput(
            "classification needs class labels, but the target has non-integer values "
            f"(e.g. {y[np.flatnonzero(np.mod(y, 1))[0]]:g}); use --model linear (or --loss mse) for a numeric target"
        )
    n_classes = len(np.unique(y))
    if _is_labels(y) and n_classes > 2 and n_classes > len(y) / 2:
        raise BadInput(
            f"the target has {n_classes} different text values in {len(y)} rows ({', '.join(map(str, y[:2]))}, "
            "...): class labels repeat, so it looks like an identifier or a date; choose another --target"
        )
    if not _is_labels(y) and n_classes > MAX_NUMERIC_CLASSES:
        raise BadInput(
            f"the target has {n_classes} distinct numeric values, which look like a quantity, not class "
            "labels; use --model linear (or --loss mse) for a numeric target"
        )
    if loss == "bce" and n_classes > 2:
        raise BadInput(f"--loss bce needs two classes but the target has {n_classes}; use --loss ce")
    return "binary" if n_classes == 2 else "multiclass"


@dataclass
class Job:
    """A validated fit job, ready to :func:`run`."""

    options: FitOptions
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    source: str
    task: str
    spec: ModelSpec
    estimator: Any
    out_dir: Path
    classes: list = field(default_factory=list)
    note: str | None = None  # a hint about an inferred setting (printed on stderr)


def _dataset_names() -> list[str]:
    from gradwise.data import list_datasets

    return list_datasets()


def _load(options: FitOptions) -> tuple[np.ndarray, np.ndarray, list[str], str, str, str | None]:
    """X, y, feature names, target name, source text, dataset task (None for CSV)."""
    from gradwise.data import DataError, load_csv, load_dataset
    from gradwise.data._csv import header as csv_header

    feats = [f.strip() for f in options.features.split(",")] if options.features is not None else None
    if feats is not None and (not all(feats) or len(set(feats)) != len(feats)):
        raise BadInput(f"--features {options.features!r}: give distinct column names separated by commas")
    name = options.data or DEFAULT_RUN["dataset"]
    is_dataset = options.data is None or (name in _dataset_names() and not os.path.exists(name))
    if not is_dataset and not os.path.exists(name) and not Path(name).suffix and os.sep not in name:
        raise BadInput(
            f"{name!r} is neither a file nor a bundled dataset; bundled: {', '.join(_dataset_names())}"
        )
    try:
        if not is_dataset:
            X, y, names = load_csv(name, target=options.target, features=feats, dropna=options.dropna)
            target = options.target or csv_header(name)[-1]
            return X, y, names, target, name, None
        d = load_dataset(name)
    except DataError as e:
        raise BadInput(str(e).replace("dropna=True", "--dropna")) from None
    if options.target is not None and options.target != d.target_name:
        raise BadInput(
            f"--target {options.target!r}: the bundled dataset {name!r} has the target {d.target_name!r}; "
            "--target selects a column of a CSV file"
        )
    X, names = d.X, list(d.feature_names)
    if feats is not None:
        unknown = [f for f in feats if f not in names]
        if unknown:
            raise BadInput(
                f"feature {unknown[0]!r} not found in dataset {name!r}; available: {', '.join(names)}"
            )
        X = X[:, [names.index(f) for f in feats]]
        names = feats
    return X, d.y, names, d.target_name, f"dataset:{name}", d.task


def n_parameters(spec: ModelSpec, n_features: int, n_classes: int) -> int | None:
    """Number of parameters of a linear-in-parameters model (None for an MLP)."""
    if spec.kind == "linear":
        return n_features + 1
    if spec.kind == "poly":
        return math.comb(n_features + spec.degree, spec.degree)
    if spec.kind == "logistic":
        return (n_features + 1) * (1 if n_classes <= 2 else n_classes)
    return None


def _out_dir(out: Path | None, force: bool) -> Path:
    """The output folder; validated (never overwritten without ``force``), not created."""
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("gradwise-out") / stamp
        path, k = base, 1
        while path.exists():  # two runs in the same second: a fresh folder, never overwrite
            k += 1
            path = base.with_name(f"{stamp}-{k}")
    else:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise BadInput(f"--out {path}: exists and is not a folder; choose another --out")
        if path.exists() and not force:
            raise BadInput(f"output folder {path} already exists; use --force to overwrite it or choose another --out")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(f"--out {path}: {parent} is a file, not a folder; choose another --out")
    if not os.access(parent, os.W_OK):
        raise BadInput(f"cannot write to {parent}: permission denied; choose another --out")
    return path


def _check_numbers(options: FitOptions) -> None:
    if options.lr is not None and not (math.isfinite(options.lr) and options.lr > 0):
        raise BadInput(f"--lr {options.lr:g}: the learning rate must be a positive number")
    if options.epochs is not None and options.epochs < 1:
        raise BadInput(f"--epochs {options.epochs}: give at least 1 epoch")
    if options.seed is not None and not 0 <= options.seed < 2**32:
        raise BadInput(f"--seed {options.seed}: the seed must be a non-negative integer up to {2**32 - 1}")
    parse_patience(options.patience)


def parse_patience(text: str | None) -> int | None | str:
    """``--patience``: ``"none"`` → None (no early stopping), ``"N"`` → N epochs;
    not given → ``"default"`` (the estimator's own).

    Raises
    ------
    BadInput
        Neither ``none`` nor a positive integer.
    """
    if text is None:
        return "default"
    t = text.strip().lower()
    if t == "none":
        return None
    if not t.isdigit() or int(t) < 1:
        raise BadInput(f"--patience {text!r}: give a positive number of epochs or 'none' (no early stopping)")
    return int(t)


#: Rough cost model of one training run, measured on this code (2 cores, float64;
#: within 2x, on the safe side, for 30x2 linear up to 60000x784 MLP epochs): about
#: 60 µs of fixed cost per optimizer step (autodiff graph, optimizer, loop), 0.2 ns
#: per row and parameter (matrix products of forward and backward pass) and 8 ns
#: per row and unit (element-wise activations and their gradients).
STEP_SECONDS = 6e-5
ROW_PARAMETER_SECONDS = 2e-10
ROW_UNIT_SECONDS = 8e-9
#: A run estimated to take longer than this is refused (it would look like a hang,
#: and no run that needs it is a sensible gradient descent from the command line).
MAX_SECONDS = 3600.0
#: A network whose parameters, gradients, optimizer state and activations would
#: take more than this many bytes is refused before anything is allocated.
MAX_BYTES = 2 * 1024**3


def _mlp_sizes(spec: ModelSpec, estimator: Any, n_features: int, n_outputs: int) -> tuple[int, int]:
    """(number of parameters, hidden units) of the network the estimator will build."""
    hidden = spec.hidden if spec.hidden is not None else estimator.hidden_layer_sizes
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    sizes = (n_features, *hidden, n_outputs)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])), sum(hidden)


def _check_cost(spec: ModelSpec, estimator: Any, n_rows: int, n_features: int, n_classes: int) -> None:
    """Refuse a run that would not fit in memory or would take hours (see MAX_BYTES, MAX_SECONDS)."""
    n_outputs = 1 if n_classes <= 2 else n_classes
    n_par = n_parameters(spec, n_features, n_classes)
    batch = estimator.batch_size or n_rows
    units = n_outputs
    if n_par is None:
        n_par, units = _mlp_sizes(spec, estimator, n_features, n_outputs)
        units += n_outputs
        need = 8 * (4 * n_par + 3 * batch * units)
        if need > MAX_BYTES:
            raise BadInput(
                f"--model {spec.text} has {n_par:,} parameters and would need about {need / 1024**3:.0f} GB "
                f"of memory for batches of {batch} rows; use fewer hidden units or a smaller --batch-size"
            )
    steps = estimator.epochs * math.ceil(n_rows / batch)
    per_row = n_par * ROW_PARAMETER_SECONDS + units * ROW_UNIT_SECONDS
    seconds = steps * STEP_SECONDS + estimator.epochs * n_rows * per_row
    if seconds > MAX_SECONDS:
        hours = seconds / 3600
        took = f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:,.0f} days"
        raise BadInput(
            f"--epochs {estimator.epochs} would take about {took} ({steps:,} steps on {n_rows} rows); "
            "use fewer epochs — a run that needs so many needs a larger --lr or --standardize"
        )


#: Largest magnitude accepted in the data: the squared error of a larger value
#: overflows float64 (sqrt(1.8e308) = 1.3e154; the margin covers sums over rows).
MAX_ABS_VALUE = 1e150


def _check_magnitude(X: np.ndarray, y: np.ndarray, names: list[str], target: str) -> None:
    columns = [(names[j], X[:, j]) for j in range(X.shape[1])]
    if not _is_labels(y):
        columns.append((target, y))
    for name, col in columns:
        big = float(np.max(np.abs(col))) if col.size else 0.0
        if big > MAX_ABS_VALUE:
            raise BadInput(
                f"column {name!r} has values as large as {big:.3g}: their squares overflow float64 "
                "(largest 1.8e308); rescale the column, e.g. divide it by a power of ten"
            )


def _estimator(spec: ModelSpec, task: str, options: FitOptions, batch_size: int | None) -> Any:
    from gradwise import models

    params: dict[str, Any] = {"standardize": options.standardize}
    if options.batch_size is not None:  # else the estimator's default (full batch; 32 for an mlp)
        params["batch_size"] = batch_size
    for key in ("lr", "epochs", "optimizer", "activation"):
        value = getattr(options, key)
        if value is not None:
            params[key] = value
    params["random_state"] = 0 if options.seed is None else options.seed
    if options.activation is not None and spec.kind != "mlp":
        raise BadInput(f"--activation applies to the hidden layers of an mlp; --model {spec.text} has none")
    if options.init is not None:
        if spec.kind != "mlp":
            raise BadInput(f"--init applies to the hidden layers of an mlp; --model {spec.text} has none")
        params["init"] = options.init
    patience = parse_patience(options.patience)
    if patience != "default":
        params["n_iter_no_change"] = patience
    if spec.kind == "linear":
        return models.LinearRegression(**params)
    if spec.kind == "poly":
        return models.PolynomialRegression(degree=spec.degree, **params)
    if spec.kind == "logistic":
        return models.LogisticRegression(**params)
    if spec.hidden is not None:
        params["hidden_layer_sizes"] = spec.hidden
    if task == "regression":
        return models.MLPRegressor(**params)
    return models.MLPClassifier(**params)  # loss None = log-loss: bce for 2 classes, ce for more


def prepare(options: FitOptions) -> Job:
    """Validate everything and load the data; nothing is written.

    Parameters
    ----------
    options : FitOptions

    Returns
    -------
    Job

    Raises
    ------
    BadInput
        Any bad option, bad data or impossible combination, and an existing
        output folder without ``force`` — with a one-line message.
    """
    if options.data is None:  # the bundled showcase: its settings unless given
        options = replace(options, **{k: DEFAULT_RUN[k] for k in ("lr", "epochs", "model") if getattr(options, k) is None})
    _check_numbers(options)
    spec = parse_model_spec(options.model) if options.model else None
    X, y, names, target, source, dataset_task = _load(options)
    _check_magnitude(X, y, names, target)
    task = infer_task(y, spec, options.loss, dataset_task)
    if spec is None:
        kind = "linear" if task == "regression" else "logistic"
        spec = ModelSpec(kind, text=kind)
    classes = np.unique(y).tolist() if task != "regression" else []
    n_par = n_parameters(spec, X.shape[1], len(classes))
    if n_par is not None and X.shape[0] < n_par:
        raise BadInput(
            f"{X.shape[0]} rows but --model {spec.text} has {n_par} parameters: the fit is not determined; "
            "use more rows, fewer features or a smaller model"
        )
    batch_size = parse_batch_size(options.batch_size, X.shape[0])
    out_dir = _out_dir(options.out, options.force)
    estimator = _estimator(spec, task, options, batch_size)
    _check_cost(spec, estimator, X.shape[0], X.shape[1], len(classes))
    return Job(options, X, y, names, target, source, task, spec, estimator, out_dir, classes,
               _task_note(y, task, options, target))


def _task_note(y: np.ndarray, task: str, options: FitOptions, target: str) -> str | None:
    """A hint when a target of a few integer codes is fitted as a regression only
    because nothing said otherwise (scikit-learn's ``type_of_target`` would call it
    multiclass)."""
    if task != "regression" or options.loss or options.model or _is_labels(y):
        return None
    k = len(np.unique(y))
    if 3 <= k <= 20 and np.all(np.mod(y, 1) == 0):
        return (f"the target {target!r} has {k} integer values and is fitted as a regression "
                "(--model linear); if they are classes, pass --loss ce (or --model logistic)")
    return None


# ----------------------------------------------------------------------------- run


def _gradient_check(module: Any, loss_fn: Any, X: np.ndarray, y: Any, start: dict) -> dict:
    """Check the model's autodiff gradient against finite differences at ``start``.

    The model's parameters are restored afterwards. A fault here would be a bug in
    gradwise's engine; it is reported like any other finding.
    """
    import gradwise
    from gradwise.diagnostics import check_gradient

    named = list(module.named_parameters())
    current = {name: p.data.copy() for name, p in named}
    Xt = gradwise.Tensor(X)

    def _set(params):
        for name, p in named:
            p.data[...] = params[name]

    def loss(params):
        _set(params)
        with gradwise.no_grad():
            return float(loss_fn(module(Xt), y).item())

    def grad(params):
        _set(params)
        module.zero_grad()
        loss_fn(module(Xt), y).backward()
        return {name: p.grad.data.copy() for name, p in named}

    try:
        res = check_gradient(loss, grad, {k: np.array(v, dtype=float) for k, v in start.items()}, autodiff=False)
    finally:
        _set(current)
        module.zero_grad()
    blocks = res.get("blocks", [])
    abs_err = [b["max_abs_error"] for b in blocks if b.get("max_abs_error") is not None]
    return {
        "ok": res.ok,
        "max_abs_error": max(abs_err) if abs_err else None,
        "n_loss_evals": res.get("n_loss_evals"),
        "method": res.get("method"),
        "findings": list(res.findings),
    }


#: Rows of the first batch used by the gradient check at the start: the check is
#: about the gradient code (autodiff), which does not depend on how many rows
#: there are; 64 rows keep it well under a second for a 1000-parameter model.
CHECK_ROWS = 64


class _StartCheck:
    """Training callback: after the first step, check the gradient on (up to
    ``CHECK_ROWS`` rows of) that step's batch at the initial parameters
    (``state.params_before``)."""

    def __init__(self):
        self.result: dict | None = None

    def on_step_end(self, state) -> None:
        if state.step == 1:
            Xb, yb = state.batch
            self.result = _gradient_check(
                state.model, state.loss_fn, Xb[:CHECK_ROWS], yb[:CHECK_ROWS], state.params_before
            )


def _terms(job: Job, est: Any) -> list[str] | None:
    """Names of the entries of ``coef_``: the features, or the monomials of a
    polynomial model (``x``, ``x^2``, ``x1*x2`` ...); None for an MLP."""
    if job.spec.kind in ("linear", "logistic"):
        return list(job.feature_names)
    if job.spec.kind == "poly":
        return [
            "*".join(f if k == 1 else f"{f}^{k}" for f, k in zip(job.feature_names, row) if k) for row in est.powers_
        ]
    return None


#: What ``training.final_loss`` (the loss the estimator minimises, at the final
#: parameters, on all rows) is, by task: the same number as the metric of that name.
LOSS_NAMES = {
    "regression": "mse: mean squared error per sample, in target units squared",
    "binary": "log_loss: mean log-loss (cross-entropy) per sample, in nats",
    "multiclass": "log_loss: mean log-loss (cross-entropy) per sample, in nats",
}


def _metrics(job: Job, est: Any) -> dict:
    """Training-set metrics at the final parameters: MSE and R² for a regression,
    mean log-loss and accuracy for a classifier.

    The log-loss is computed from the logits (``decision_function``) without
    clipping, so it is the loss training minimised. scikit-learn's ``log_loss``
    clips probabilities to [1e-15, 1 - 1e-15], i.e. at most 34.5 nats per sample,
    and understates a confidently wrong model by orders of magnitude.
    """
    if job.task == "regression":
        resid = np.asarray(est.predict(job.X), dtype=float).ravel() - job.y
        mse = float(np.mean(resid**2))
        return {"mse": mse, "r2": 1.0 - mse / float(np.var(job.y))}
    from scipy.special import logsumexp

    z = np.asarray(est.decision_function(job.X), dtype=float)
    idx = np.searchsorted(est.classes_, job.y)
    if z.ndim == 1:  # binary: positive class classes_[1]
        per_sample = np.logaddexp(0.0, z) - (idx == 1) * z
    else:
        per_sample = logsumexp(z, axis=1) - z[np.arange(len(z)), idx]
    return {
        "log_loss": float(np.mean(per_sample)),
        "accuracy": float(np.mean(est.predict(job.X) == job.y)),
    }


def _parameters(job: Job, est: Any, result: Any) -> dict[str, Any]:
    """Fitted blocks in the user's terms: coef/intercept for the linear models
    (original units), the network's blocks by dotted name for an MLP."""
    if job.spec.kind in ("linear", "poly", "logistic"):
        return {"coef": np.asarray(est.coef_), "intercept": np.asarray(est.intercept_)}
    return dict(result.params)


def _optimum(job: Job, est: Any, metrics: dict, diagnosis: Any) -> dict | None:
    """The reference optimum in the data's original units, and the run's distance
    to it: ordinary least squares for linear/polynomial regression, Newton (IRLS) for
    binary logistic regression, as the fit's diagnosis computed it
    (``diagnosis.reference``, see :mod:`gradwise.diagnostics.fit_hook`); for other
    models the optimum loss the diagnosis found, if any."""
    ref = diagnosis.get("reference") if diagnosis is not None else None
    if ref is not None and ref.get("separable"):
        return {"loss": 0.0, "separable": True,
                "note": "the classes are linearly separable: there is no finite optimum; the "
                        "log-loss tends to 0 (its infimum) as the weights grow without bound "
                        "(||w|| -> infinity), so gradient descent never converges; add an L2 "
                        "penalty for a finite optimum"}
    if ref is None:
        opt = diagnosis.get("optimum") if diagnosis is not None else None
        return {"loss": float(opt["loss"])} if opt and opt.get("loss") is not None else None
    final = metrics["mse" if job.task == "regression" else "log_loss"]
    star = np.r_[np.ravel(ref["coef"]), np.ravel(ref["intercept"])]
    theta = np.r_[np.ravel(est.coef_), np.ravel(est.intercept_)]
    return {
        "loss": float(ref["loss"]),
        "parameters": star,
        "distance": float(np.linalg.norm(theta - star)),
        "loss_gap": float(final - ref["loss"]),
    }


def stop_text(result: Any, est: Any, advice: bool = True) -> str:
    """Why training ended, in words, with how to change it (``--patience``,
    ``n_iter_no_change``) when early stopping ended it.

    ``TrainResult.stopped_reason`` is one of :data:`gradwise.training.STOP_REASONS`:
    ``"no_improvement"`` (the loss did not beat its best for ``n_iter_no_change``
    epochs) and ``"converged"`` (it became flat) are early stopping; ``advice``
    adds how to train longer.
    """
    reason = str(result.get("stopped_reason"))
    epochs, budget = result.get("n_epochs"), getattr(est, "epochs", None)
    patience = getattr(est, "n_iter_no_change", None)
    tol = getattr(est, "tol", None)
    how = (f"; to train all {budget} epochs: --patience none (in Python n_iter_no_change=None), "
           f"or wait longer: --patience N") if advice else ""
    if reason == "max_epochs":
        return f"ran the whole budget of {budget} epochs"
    if reason.startswith("nonfinite"):
        what = reason.removeprefix("nonfinite_")
        return (f"stopped: the {what} became NaN/inf at step {result.get('nonfinite_step')} "
                f"(epoch {epochs}); the parameters of the last finite loss were kept")
    if reason == "no_improvement":
        return (f"stopped early after {epochs} of {budget} epochs: the loss did not improve on its "
                f"best by tol={tol:g} (relative) for {patience} epochs (early stopping, "
                f"n_iter_no_change={patience}), although it had not converged" + how)
    if reason == "converged":
        return (f"stopped early after {epochs} of {budget} epochs: the loss changed by less than "
                f"tol={tol:g} (relative) over {patience} epochs (early stopping, "
                f"n_iter_no_change={patience})" + how)
    if reason == "callback":
        return f"stopped by a callback after {epochs} epochs"
    return f"stopped after {epochs} epochs: {reason}"


def _stop_note(result: Any, est: Any) -> str | None:
    """Why training ended early, for the loss plot (None after the full budget)."""
    if result.get("stopped_reason") in (None, "max_epochs"):
        return None
    return "training " + stop_text(result, est, advice=False)


def _write(job: Job, report: dict, result: Any, optimum: dict | None) -> None:
    if optimum is not None and optimum.get("separable"):
        optimum = None  # the infimum 0 is not a line to draw
    from gradwise.report.plots import plot_gradients, plot_loss

    out = job.out_dir
    out.mkdir(parents=True, exist_ok=True)
    p = report["model"]["params"]
    title = f"{Path(job.source).name} — {job.spec.text}, {p.get('optimizer', 'sgd')}, lr {p.get('lr'):g}"
    plot_loss(
        out / "loss.png",
        result.loss_curve,
        optimum=None if optimum is None else optimum["loss"],
        optimum_label="optimum" if optimum is None else f"reference optimum (loss {optimum['loss']:.6g})",
        title=title,
        ylabel="mean loss" if job.task == "regression" else "mean log-loss",
        note=_stop_note(result, job.estimator),
    )
    plot_gradients(out / "gradients.png", dict(result.block_grad_norms), title=f"Gradient norm per block — {title}")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def run(job: Job, progress: bool = True) -> dict:
    """Train, check the gradient at the start, diagnose, and write the outputs.

    Parameters
    ----------
    job : Job
        From :func:`prepare`.
    progress : bool, default True
        Show the training loop's progress bar (only on a terminal).

    Returns
    -------
    dict
        The report (also written to ``job.out_dir / "report.json"``).
    """
    import gradwise
    from gradwise.report.jsonreport import fit_report, parameter_blocks

    est = job.estimator
    est.set_params(verbose=progress)
    start_check = _StartCheck()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(job.X, job.y, callbacks=[start_check])
    elapsed = time.perf_counter() - t0
    gc = start_check.result
    result = est.result_
    diagnosis = getattr(est, "diagnosis_", None)
    if diagnosis is None:  # the diagnosis itself failed: say so rather than report "no faults"
        why = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        raise InternalError("the diagnosis of the run failed" + (f": {why[-1]}" if why else ""))
    loss_curve = np.asarray(result.loss_curve, dtype=float)
    with np.errstate(all="ignore"):  # a diverged run's metrics are inf, shown as such
        metrics = _metrics(job, est)
        optimum = _optimum(job, est, metrics, diagnosis)
    report = fit_report(
        data={
            "source": job.source,
            "n_samples": int(job.X.shape[0]),
            "n_features": int(job.X.shape[1]),
            "features": job.feature_names,
            "target": job.target_name,
            "task": job.task,
            **({"classes": job.classes} if job.classes else {}),
        },
        model={
            "spec": job.spec.text,
            "estimator": type(est).__name__,
            "params": est.get_params(),
            "n_parameters": int(sum(np.size(v) for v in result.params.values())),
            **({"terms": terms} if (terms := _terms(job, est)) else {}),
        },
        training={
            "epochs_run": int(result.n_epochs),
            "final_loss": metrics["mse" if job.task == "regression" else "log_loss"],
            "loss": LOSS_NAMES[job.task],
            "last_epoch_loss": float(loss_curve[-1]) if len(loss_curve) else math.nan,
            "loss_curve": loss_curve,
            "stopped_reason": str(result.get("stopped_reason")),
            "stop": stop_text(result, est),
            "time_s": float(result.get("total_time", elapsed)),
            "total_s": elapsed,
        },
        metrics=metrics,
        parameters=parameter_blocks(_parameters(job, est, result)),
        optimum=optimum,
        gradient_check=gc,
        diagnosis=diagnosis,
        files={"out_dir": str(job.out_dir), "report": "report.json", "loss_plot": "loss.png",
               "gradients_plot": "gradients.png"},
        version=gradwise.__version__,
    )
    _write(job, report, result, optimum)
    return report
