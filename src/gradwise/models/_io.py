"""Saving and loading fitted estimators without pickle.

A model file is a NumPy ``.npz`` archive holding only numeric/str arrays:

- ``__meta__``: UTF-8 JSON (as uint8 bytes) with ``format``, ``version``,
  ``class``, ``params`` (``get_params()``), ``n_features_in_``, ``n_iter_``,
  ``n_outputs``, ``single_output`` and ``feature_names_in_``;
- ``model/<name>``: the network's ``state_dict()`` (``model/weight``, ``model/0.bias``…);
- optionally ``x_mean``, ``x_scale`` (standardisation), ``classes`` (labels),
  ``loss_curve``.

Loading reads the archive with ``allow_pickle=False`` (no object arrays, so no
code can run), accepts only the estimator classes of :mod:`gradwise.models`,
validates every parameter and every array's key, dtype and shape, and rebuilds
the network from the parameters.
"""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np
from sklearn.base import ClassifierMixin

from gradwise.models.linear import LinearRegression, LogisticRegression, PolynomialRegression
from gradwise.models.mlp import MLPClassifier, MLPRegressor

__all__ = ["save", "load", "ModelFileError", "FORMAT", "VERSION"]

FORMAT = "gradwise.model"
VERSION = 1
_CLASSES = {
    c.__name__: c
    for c in (
        LinearRegression,
        PolynomialRegression,
        LogisticRegression,
        MLPRegressor,
        MLPClassifier,
    )
}


class ModelFileError(ValueError):
    """A file is not a valid gradwise model file (one-line message: what is wrong)."""


def _json_param(name: str, value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, tuple):
        return [_json_param(name, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    raise TypeError(
        f"cannot save parameter {name}={value!r}: only numbers, strings, None and tuples can be "
        "stored (set random_state to an int or None)"
    )


def save(estimator, path, *, overwrite: bool = False) -> None:
    """Save a fitted gradwise estimator to an ``.npz`` file (no pickle).

    Parameters
    ----------
    estimator : LinearRegression, PolynomialRegression, LogisticRegression, MLPRegressor or MLPClassifier
        A fitted estimator.
    path : str or os.PathLike
        Destination file (written exactly at this path; the name is not changed).
    overwrite : bool, default False
        Replace an existing file; otherwise an existing file is never touched.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    IsADirectoryError
        ``path`` is a directory.
    TypeError
        Not a gradwise estimator, or a parameter that cannot be stored.
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.
    """
    from sklearn.utils.validation import check_is_fitted

    cls = type(estimator).__name__
    if _CLASSES.get(cls) is not type(estimator):
        raise TypeError(f"save() stores gradwise.models estimators only, got {cls}")
    check_is_fitted(estimator, "model_")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "class": cls,
        "params": {k: _json_param(k, v) for k, v in estimator.get_params(deep=False).items()},
        "n_features_in_": int(estimator.n_features_in_),
        "n_iter_": int(estimator.n_iter_),
        "n_outputs": int(estimator.model_.state_dict()[_last_bias(estimator)].shape[0]),
        "single_output": bool(getattr(estimator, "_single_output", True)),
        "feature_names_in_": (
            [str(f) for f in estimator.feature_names_in_]
            if hasattr(estimator, "feature_names_in_")
            else None
        ),
    }
    arrays = {"__meta__": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"model/{k}": v for k, v in estimator.model_.state_dict().items()})
    if estimator.x_mean_ is not None:
        arrays["x_mean"], arrays["x_scale"] = estimator.x_mean_, estimator.x_scale_
    if hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
        if classes.dtype.kind not in "biufU":
            classes = classes.astype(str)
        arrays["classes"] = classes
    arrays["loss_curve"] = np.asarray(estimator.loss_curve_, dtype=np.float64)
    if os.path.isdir(os.fspath(path)):
        raise IsADirectoryError(f"{os.fspath(path)} is a directory; give a file path, e.g. model.npz")
    try:
        f = open(os.fspath(path), "wb" if overwrite else "xb")  # "x": never replace silently
    except FileExistsError:
        raise FileExistsError(
            f"{os.fspath(path)} already exists; pass overwrite=True to replace it"
        ) from None
    with f:
        np.savez(f, **arrays)


def _last_bias(estimator) -> str:
    return [k for k in estimator.model_.state_dict() if k.endswith("bias")][-1]


def _fail(path, what: str):
    raise ModelFileError(f"{os.fspath(path)} is not a valid gradwise model file: {what}")


def _read(path) -> dict[str, np.ndarray]:
    name = os.fspath(path)
    if os.path.isdir(name):
        raise IsADirectoryError(f"{name} is a directory; give the path of a model file saved by save()")
    if not os.path.isfile(name):
        raise FileNotFoundError(f"no such model file: {name}")
    with open(name, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        _fail(path, "it is a single .npy array, not an .npz archive")
    if not magic.startswith(b"PK"):
        _fail(path, "cannot read it as an .npz archive (no zip signature)")
    try:
        _check_declared_sizes(path, name)
        z = np.load(name, allow_pickle=False)
        with z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, ModelFileError):
            raise
        if "pickle" in str(e).lower():
            _fail(path, "it contains pickled (object) data, which is never loaded")
        _fail(path, f"cannot read it as an .npz archive ({type(e).__name__})")


#: Largest total size of the arrays a model file may declare (a compressed archive
#: can declare terabytes in a few kilobytes; NumPy would allocate them on reading).
MAX_LOAD_BYTES = 2 * 1024**3


def _check_declared_sizes(path, name: str) -> None:
    """Read only the ``.npy`` headers inside the archive and refuse a file whose arrays
    would take more than ``MAX_LOAD_BYTES`` once loaded."""
    total = 0
    with zipfile.ZipFile(name) as zf:
        for info in zf.infolist():
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            total += math.prod(shape) * dtype.itemsize
    if total > MAX_LOAD_BYTES:
        _fail(path, f"its arrays would take {total / 1024**3:.3g} GB once loaded; a gradwise model is far smaller")


def _meta(path, arrays) -> dict:
    raw = arrays.pop("__meta__", None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(path, "the '__meta__' entry is missing")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        _fail(path, "'__meta__' is not UTF-8 JSON")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, f"'__meta__' does not declare format {FORMAT!r}")
    if meta.get("version") != VERSION:
        _fail(path, f"format version {meta.get('version')!r} is not supported (expected {VERSION})")
    return meta


def _int_field(path, meta, key) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        _fail(path, f"'{key}' must be a positive integer, got {v!r}")
    return v


def _array(path, arrays, key, shape, kinds="f"):
    a = arrays.pop(key, None)
    if a is None:
        _fail(path, f"array {key!r} is missing")
    if a.dtype.kind not in kinds or (shape is not None and a.shape != shape):
        _fail(path, f"array {key!r} has dtype {a.dtype} and shape {a.shape}, expected {shape}")
    return a


def _check_sizes(path, est, n_features: int, n_outputs: int, n_values: int) -> None:
    """Refuse sizes in ``__meta__`` that the stored arrays cannot hold, before anything
    is allocated from them: every input column has a weight of the first layer, every
    unit (hidden or output) a bias, so none of these counts exceeds the stored values
    (a forged n_features_in_ of 1e12 asked for 7 TiB)."""
    counts = {"n_features_in_": n_features, "n_outputs": n_outputs}
    if hasattr(est, "hidden_layer_sizes"):
        hidden = est.hidden_layer_sizes
        counts["hidden_layer_sizes"] = hidden if isinstance(hidden, int) else sum(hidden)
    if hasattr(est, "degree"):
        counts["the polynomial terms"] = math.comb(n_features + est.degree, est.degree) - 1
    for what, count in counts.items():
        if count > n_values:
            _fail(path, f"{what} ({count}) does not fit the {n_values} stored parameter values")


def load(path):
    """Load an estimator saved by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    estimator
        Fitted, ready to ``predict``. The training history is not stored:
        ``loss_curve_`` and ``n_iter_`` are restored, ``result_`` is None.

    Raises
    ------
    FileNotFoundError
        No such file.
    IsADirectoryError
        ``path`` is a directory.
    ModelFileError
        Not an ``.npz`` archive, object (pickled) arrays, missing or unknown
        entries, an unknown estimator class, invalid parameters, arrays
        whose dtype or shape does not fit the model, sizes in the metadata
        that the stored arrays cannot hold, or NaN/infinite parameters.
    """
    arrays = _read(path)
    meta = _meta(path, arrays)
    cls = _CLASSES.get(meta.get("class"))
    if cls is None:
        _fail(path, f"unknown estimator class {meta.get('class')!r}; known: {', '.join(_CLASSES)}")
    params = meta.get("params")
    valid = cls().get_params(deep=False)
    if not isinstance(params, dict) or set(params) - set(valid):
        extra = sorted(set(params) - set(valid)) if isinstance(params, dict) else params
        _fail(path, f"unknown parameters {extra!r} for {cls.__name__}")
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
    est = cls(**params)
    try:
        est._validate_params()
    except (ValueError, TypeError) as e:
        _fail(path, f"invalid parameters ({' '.join(str(e).split())})")

    n_features = _int_field(path, meta, "n_features_in_")
    n_outputs = _int_field(path, meta, "n_outputs")
    est.n_features_in_ = n_features
    est.n_iter_ = _int_field(path, meta, "n_iter_")
    names = meta.get("feature_names_in_")
    if names is not None:
        if not (
            isinstance(names, list)
            and len(names) == n_features
            and all(isinstance(n, str) for n in names)
        ):
            _fail(path, "'feature_names_in_' must list one name per feature")
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est._single_output = bool(meta.get("single_output", True))

    saved = {k[len("model/") :]: arrays.pop(k) for k in list(arrays) if k.startswith("model/")}
    dtypes = {a.dtype for a in saved.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        _fail(path, f"model arrays must all be float32 or float64, got {sorted(map(str, dtypes))}")
    dtype = next(iter(dtypes))
    _check_sizes(path, est, n_features, n_outputs, sum(a.size for a in saved.values()))
    bad = [k for k, a in saved.items() if not np.all(np.isfinite(a))]
    if bad:
        _fail(path, f"array 'model/{bad[0]}' holds NaN or infinite values")
    if hasattr(est, "degree"):
        est._expand(np.zeros((1, n_features)), fit=True)
    n_in = est._expand(np.zeros((1, n_features))).shape[1]
    if isinstance(est, ClassifierMixin):
        est.classes_ = _array(path, arrays, "classes", None, kinds="biufU")
        k = len(est.classes_)
        if est.classes_.ndim != 1 or k < 2 or n_outputs != (1 if k == 2 else k):
            _fail(path, f"{k} classes do not fit a model with {n_outputs} outputs")
    try:
        model = est._build_model(n_in, n_outputs, dtype, np.random.default_rng(0))
        model.load_state_dict(saved)
    except (KeyError, ValueError) as e:
        _fail(path, f"the network does not match the parameters ({' '.join(str(e).split())})")
    model.eval()
    est.model_ = model
    if est.standardize:
        est.x_mean_ = _array(path, arrays, "x_mean", (n_in,)).astype(dtype)
        est.x_scale_ = _array(path, arrays, "x_scale", (n_in,)).astype(dtype)
        if not (np.all(np.isfinite(est.x_scale_)) and np.all(np.isfinite(est.x_mean_))):
            _fail(path, "'x_mean' and 'x_scale' hold NaN or infinite values")
        if not np.all(est.x_scale_ > 0):
            _fail(path, "'x_scale' must be positive")
    else:
        est.x_mean_ = est.x_scale_ = None
    est.loss_curve_ = _array(path, arrays, "loss_curve", None)
    if arrays:
        _fail(path, f"unexpected entries {sorted(arrays)}")
    est.result_ = None
    est._after_fit()
    return est
