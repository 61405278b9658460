"""Compare one gradient block with its reference and name the pattern of the error.

Used by :func:`~gradwise.check_gradient` and :func:`~gradwise.check_backward`.
A block is the user's gradient for one parameter array (or for the input of a
layer); the reference is a finite-difference (or autodiff) gradient with an
error estimate per entry.

Tolerance (per entry ``i`` of a block)::

    |a_i - n_i| <= rtol · max(|a_i|, |n_i|) + rtol · s + 10 · err_i

``s`` is the largest reference entry of the block (of the whole gradient when
the block's true gradient is zero), so entries that are tiny next to their
block are not judged by relative error alone (the usual mixed absolute/relative
test, as in ``numpy.isclose``); ``err_i`` is the finite-difference error
estimate (``finite_diff`` module docstring), multiplied by 10 as a safety
margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from gradwise._result import Finding
from gradwise._tree import entry_name

__all__ = ["BlockData", "classify_block", "describe_factor", "nonfinite_finding",
           "unverified_finding", "MOSTLY_RIGHT", "UNVERIFIED"]

#: a block whose wrong entries are at most this fraction is reported as ``gradient.entries``
MOSTLY_RIGHT = 0.5
#: how many entries are listed in a finding's evidence
MAX_LISTED = 10
#: an entry whose 10x finite-difference error estimate exceeds this fraction of the values
#: (and which passes only thanks to it) is not verified: a factor-2 error would pass too
UNVERIFIED = 0.5


@dataclass
class BlockData:
    """One gradient block to judge.

    Attributes
    ----------
    name : str
        The user's name for the block (``'W'``, ``'params[0]'``, ``'layer 1: b'``).
    analytic : ndarray
        The user's gradient (any shape; a wrong shape is a finding).
    numeric : ndarray
        The reference gradient (the right shape).
    error : ndarray
        Absolute error estimate of ``numeric`` per entry.
    kink, lower, upper : ndarray
        Kink flags and one-sided bounds from finite differences (``kink`` all
        false when the reference is exact).
    scale_floor : float
        Gradient scale used when the block's own reference is zero.
    dims : dict
        Named sizes used to explain a scale factor (``{"batch size": 8}``).
    """

    name: str
    analytic: np.ndarray
    numeric: np.ndarray
    error: np.ndarray
    kink: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    scale_floor: float = 0.0
    dims: dict = field(default_factory=dict)


#: a wrong-shape finding quotes the right gradient when it has at most this many entries
SHOW_EXPECTED = 16

def _simple_factor(k: float, dims: dict | None = None) -> bool:
    """True for ±an integer or ±1/integer up to 1000, or a ratio of the named sizes."""
    for v in (abs(k), 1.0 / abs(k) if k else 0.0):
        if 1 <= v <= 1000 and abs(v - round(v)) <= 1e-6 * v:
            return True
    sizes = [float(s) for s in (dims or {}).values() if s]
    return any(abs(abs(k) - p / q) <= 1e-6 * abs(k) for p in sizes + [1.0] for q in sizes + [1.0])


def describe_factor(k: float, dims: dict | None = None, rtol: float = 1e-3) -> str:
    """Readable form of a scale factor: ``'2'``, ``'1/2'``, ``'8/30 (batch size / input features)'``.

    Parameters
    ----------
    k : float
        The factor (analytic = k · reference).
    dims : dict of str -> int, optional
        Named sizes; a factor equal to a ratio of two of them (or of one and 1)
        is explained with their names.
    rtol : float
        Relative tolerance for recognising a ratio.
    """
    dims = {n: int(v) for n, v in (dims or {}).items() if int(v) > 0}
    sign = "-" if k < 0 else ""
    a = abs(k)
    if a == 0:
        return "0"
    fr = Fraction(a).limit_denominator(64)
    close = abs(float(fr) - a) <= rtol * a
    if close and fr.numerator <= 4 and fr.denominator <= 4:  # 2, 1/2, 3/2 ...: constants
        return sign + (f"{fr.numerator}" if fr.denominator == 1 else f"{fr}")
    named = [("1", 1)] + list(dims.items())
    for pn, p in named:
        for qn, q in named:
            if p == q or abs(a - p / q) > rtol * a:
                continue
            if q == 1:
                label, why = f"{p}", pn
            elif p == 1:
                label, why = f"1/{q}", f"1 / {qn}"
            else:
                label, why = f"{p}/{q}", f"{pn} / {qn}"
            return f"{sign}{label} ({why})"
    if close:
        return sign + (f"{fr.numerator}" if fr.denominator == 1 else f"{fr}")
    return f"{k:.6g}"


def _tolerance(a, n, err, rtol, s):
    return rtol * np.maximum(np.abs(a), np.abs(n)) + rtol * s + 10 * err + 1e-300


def _entry_list(name, a, n, idxs, shape):
    """The evidence of single entries: ``{"location", "index", "analytic", "numeric",
    "abs_error", "rel_error"}`` for the first :data:`MAX_LISTED` of ``idxs``
    (multi-indices into ``a`` and ``n``, both of block ``shape``)."""
    out = []
    for idx in idxs[:MAX_LISTED]:
        idx = tuple(int(i) for i in idx)
        av, nv = float(a[idx]), float(n[idx])
        out.append(
            {
                "location": entry_name(name, idx, shape),
                "index": list(idx),
                "analytic": av,
                "numeric": nv,
                "abs_error": abs(av - nv),
                "rel_error": abs(av - nv) / max(abs(av), abs(nv), 1e-300),
            }
        )
    return out


def _worst_order(a, n, mask):
    err = np.where(mask, np.abs(a - n), -1.0)
    order = np.argsort(-err, axis=None)
    return [np.unravel_index(i, a.shape) for i in order if err.flat[i] >= 0]


def classify_block(b: BlockData, rtol: float) -> tuple[dict, Finding | None]:
    """Judge one block and name the pattern of its error.

    Parameters
    ----------
    b : BlockData
        The block.
    rtol : float
        Relative tolerance (module docstring for the full test).

    Returns
    -------
    verdict : dict
        ``block``, ``shape``, ``verdict`` (``"ok"`` or the finding code),
        ``max_abs_error``, ``max_rel_error``, ``n_wrong``, ``tolerance``.
    finding : Finding or None
        ``gradient.shape``, ``gradient.transposed``, ``gradient.zero``,
        ``gradient.sign``, ``gradient.scale``, ``gradient.entries``,
        ``gradient.mismatch``, ``numeric.nonfinite`` (faults),
        ``gradient.unverified`` (warning: the finite differences are too noisy
        to judge) or ``gradient.kink`` (info); None when the block is right.
    """
    a = np.asarray(b.analytic, dtype=np.float64)
    n = np.asarray(b.numeric, dtype=np.float64)
    err = np.asarray(b.error, dtype=np.float64)
    s = float(np.max(np.abs(n))) if n.size else 0.0
    s = s if s > 0 else b.scale_floor
    tol_text = f"|a - n| <= {rtol:g}·max(|a|, |n|) + {rtol:g}·{s:.3g} + 10·(finite-difference error)"
    verdict = {"block": b.name, "shape": list(n.shape), "tolerance": tol_text,
               "why": "relative test with a floor at the block's gradient scale, so entries "
                      "tiny next to their block are not judged by relative error alone, plus "
                      "10x the finite-difference error estimate (Richardson: truncation + "
                      "rounding)"}

    if a.shape != n.shape:
        verdict.update(verdict="gradient.shape", n_wrong=int(n.size))
        return verdict, _shape_finding(b.name, a, n, err, rtol, s)
    bad_values = nonfinite_finding(b.name, a, n)
    if bad_values is not None:
        verdict.update(verdict=bad_values.code, n_wrong=bad_values.evidence["n_wrong"])
        return verdict, bad_values

    diff = np.abs(a - n)
    tol = _tolerance(a, n, err, rtol, s)
    rel = diff / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
    bad = diff > tol
    verdict.update(
        max_abs_error=float(diff.max(initial=0.0)),
        max_rel_error=float(np.where(diff > 0, rel, 0.0).max(initial=0.0)),
        n_wrong=int(bad.sum()),
    )
    if not bad.any():
        # entries that pass only because the finite-difference error estimate is large
        # next to the values (noisy, quantised or discontinuous loss): not verified
        loose = (diff > tol - 10 * err) & (10 * err > UNVERIFIED * np.maximum(np.abs(a),
                                                                               np.abs(n)))
        if loose.any():
            verdict["verdict"] = "gradient.unverified"
            return verdict, unverified_finding(b.name, a, n, err, loose)
        verdict["verdict"] = "ok"
        return verdict, None

    kink = np.zeros(n.shape, bool) if b.kink is None else np.asarray(b.kink, bool)
    explained = np.zeros(n.shape, bool)
    if kink.any():
        lo, hi = np.asarray(b.lower), np.asarray(b.upper)
        explained = bad & kink & (a >= lo - tol) & (a <= hi + tol)
    real = bad & ~explained
    if not real.any():
        idxs = _worst_order(a, n, explained)
        verdict["verdict"] = "gradient.kink"
        return verdict, Finding(
            "gradient.kink",
            "info",
            "The gradient disagrees with finite differences only at "
            f"{int(explained.sum())} entr{'y' if explained.sum() == 1 else 'ies'} where the loss "
            "is not differentiable (e.g. ReLU or abs at 0): your value lies between the "
            "one-sided derivatives, which is a valid subgradient. Not a fault.",
            evidence={"entries": _entry_list(b.name, a, n, idxs, n.shape),
                      "n_entries": int(explained.sum())},
            location=b.name,
        )

    code, finding = _pattern(b, a, n, err, tol, real, explained, rtol, s)
    verdict["verdict"] = code
    return verdict, finding


def _pattern(b, a, n, err, tol, real, explained, rtol, s):
    name, shape = b.name, n.shape
    keep = ~explained
    worst = _worst_order(a, n, real)
    n_real = int(real.sum())
    # analytic zero where the reference is not (or the reverse)
    a_zero = np.abs(a) <= tol
    n_zero = np.abs(n) <= tol
    if np.all(a_zero[real]) or np.all(n_zero[real]):
        reverse = not np.all(a_zero[real])
        what = (
            "is nonzero where the true gradient is zero"
            if reverse
            else "is zero where the true gradient is not"
        )
        return "gradient.zero", Finding(
            "gradient.zero",
            "fault",
            f"Your gradient {what} ({n_real} of {n.size} entries).",
            evidence={"entries": _entry_list(name, a, n, worst, shape), "n_wrong": n_real,
                      "all_zero": bool(np.all(a_zero)), "reverse": reverse},
            location=name,
        )
    # one constant factor: a = k·n
    an, nn = a[keep], n[keep]
    denom = float(nn @ nn)
    if denom > 0:
        k = float(an @ nn) / denom
        fit = np.abs(an - k * nn) <= _tolerance(an, k * nn, err[keep] * max(1, abs(k)), rtol,
                                                s * max(1.0, abs(k)))
        # one number always fits some factor: only a simple one (2, 1/2, n, 1/n, -1)
        # is evidence of a scale bug there; otherwise it is a plain mismatch
        if np.all(fit) and abs(k - 1) > 10 * rtol and (int(keep.sum()) >= 2
                                                        or _simple_factor(k, b.dims)):
            if abs(k + 1) <= 10 * rtol:
                return "gradient.sign", Finding(
                    "gradient.sign",
                    "fault",
                    "Your gradient has the wrong sign (analytic = −numeric); "
                    "gradient descent with it climbs the loss.",
                    evidence={"factor": k, "entries": _entry_list(name, a, n, worst, shape)},
                    location=name,
                )
            desc = describe_factor(k, b.dims)
            hint = ("look for a missing or extra constant (2 from a square, 1/n from a mean)"
                    if _simple_factor(k, b.dims) else
                    "no simple constant: a wrong term shared by all entries, e.g. an "
                    "activation derivative taken at the error instead of at the "
                    "pre-activation (sigma'(z) = a(1-a), not e(1-e))")
            return "gradient.scale", Finding(
                "gradient.scale",
                "fault",
                f"Your gradient is {desc} times the true gradient "
                f"(factor k = {k:.6g}); {hint}.",
                evidence={"factor": k, "factor_text": desc,
                          "entries": _entry_list(name, a, n, worst, shape)},
                fix={"multiply_gradient_by": float(f"{1.0 / k:.6g}")},
                location=name,
            )
    # transposed (square blocks; non-square ones show up as a shape error)
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1:
        t = n.T
        if np.all(np.abs(a - t) <= _tolerance(a, t, np.maximum(err, err.T), rtol, s)):
            return "gradient.transposed", Finding(
                "gradient.transposed",
                "fault",
                "Your gradient is the transpose of the true gradient "
                "(e.g. x.T @ delta where delta.T @ x is needed).",
                evidence={"entries": _entry_list(name, a, n, worst, shape)},
                location=name,
            )
    if n_real <= MOSTLY_RIGHT * max(int(keep.sum()), 1):
        lst = _entry_list(name, a, n, worst, shape)
        where = ", ".join(e["location"] for e in lst[:5]) + (" …" if n_real > 5 else "")
        return "gradient.entries", Finding(
            "gradient.entries",
            "fault",
            f"{n_real} of {n.size} entries are wrong ({where}); the others are right.",
            evidence={"entries": lst, "n_wrong": n_real, "n_entries": int(n.size)},
            location=lst[0]["location"] if n_real == 1 else name,
        )
    rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
    return "gradient.mismatch", Finding(
        "gradient.mismatch",
        "fault",
        f"{n_real} of {n.size} entries are wrong with no simple pattern "
        f"(no constant factor, sign or transpose); largest relative error "
        f"{float(rel[real].max()):.3g}.",
        evidence={"entries": _entry_list(name, a, n, worst, shape), "n_wrong": n_real,
                  "max_rel_error": float(rel[real].max())},
        location=name,
    )


def unverified_finding(name: str, a, n, err, loose) -> Finding:
    """``gradient.unverified`` (warning): finite differences too noisy to judge ``loose``
    entries of the block (a loss that is quantised, discontinuous near the point, or
    computed in low precision)."""
    idxs = _worst_order(a, n, loose)
    lst = _entry_list(name, a, n, idxs, np.shape(n))
    for e, idx in zip(lst, idxs):
        e["fd_error_estimate"] = float(err[idx])
    where = ", ".join(e["location"] for e in lst[:5]) + (" …" if len(idxs) > 5 else "")
    return Finding(
        "gradient.unverified",
        "warning",
        f"Finite differences are too noisy to check {len(idxs)} entr"
        f"{'y' if len(idxs) == 1 else 'ies'} ({where}): their error estimate is more than "
        f"{UNVERIFIED:g}x the gradient there, so even a wrong value would pass. The loss is "
        "rounded/quantised, jumps near this point, or is computed in low precision; check "
        "at another point or with a smooth float64 loss.",
        evidence={"entries": lst, "n_entries": len(idxs)},
        location=lst[0]["location"] if len(idxs) == 1 else name,
    )


def nonfinite_finding(name: str, a: np.ndarray, n: np.ndarray | None = None) -> Finding | None:
    """``numeric.nonfinite`` when the user's gradient block has NaN/inf entries, else None.

    Parameters
    ----------
    name : str
        The block's name.
    a : ndarray
        The user's gradient block.
    n : ndarray, optional
        The reference gradient (same shape), listed beside the bad entries.
    """
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    idxs = [np.unravel_index(i, a.shape) for i in np.flatnonzero(bad)]
    ref = n if n is not None and np.shape(n) == a.shape else np.full(a.shape, np.nan)
    lst = _entry_list(name, a, ref, idxs, a.shape)
    where = ", ".join(e["location"] for e in lst[:5]) + (" …" if len(idxs) > 5 else "")
    return Finding(
        "numeric.nonfinite",
        "fault",
        f"Your gradient has {len(idxs)} NaN/inf entr{'y' if len(idxs) == 1 else 'ies'} ({where}) "
        "where the loss is finite: look for a division by zero, log(0), sqrt(0) or exp "
        "overflowing in your gradient code.",
        evidence={"entries": lst, "n_wrong": len(idxs), "n_entries": int(a.size)},
        location=lst[0]["location"] if len(idxs) == 1 else name,
    )


def _shape_finding(name, a, n, err, rtol, s):
    ev = {"expected_shape": list(n.shape), "got_shape": list(a.shape)}
    if a.ndim == 2 and n.ndim == 2 and a.shape == n.shape[::-1]:
        t = a.T
        if np.all(np.abs(t - n) <= _tolerance(t, n, err, rtol, s)):
            return Finding(
                "gradient.transposed",
                "fault",
                f"Your gradient has shape {a.shape} and is the transpose of the true "
                f"gradient of shape {n.shape}.",
                evidence=ev,
                location=name,
            )

    def close(x):
        return x.shape == n.shape and np.all(np.abs(x - n) <= _tolerance(x, n, err, rtol, s))

    hint = None
    if a.size == n.size and close(a.reshape(n.shape)):
        hint = f"the values are right; reshape to {n.shape}"
    elif a.ndim > n.ndim and a.shape[a.ndim - n.ndim:] == n.shape:
        lead = tuple(range(a.ndim - n.ndim))
        if close(a.sum(axis=lead)):
            hint = (f"not reduced over the batch axis: summing axis {lead[0] if len(lead) == 1 else lead} "
                    f"gives the right gradient")
    elif a.ndim == n.ndim and all(x == y or y == 1 for x, y in zip(a.shape, n.shape)):
        axes = tuple(i for i, (x, y) in enumerate(zip(a.shape, n.shape)) if x != y)
        if close(a.sum(axis=axes, keepdims=True)):
            hint = f"not reduced: summing axis {axes} (keepdims) gives the right gradient"
    if hint:
        ev["hint"] = hint
    msg = f"Your gradient has shape {a.shape} but the parameter has shape {n.shape}"
    msg += f" ({hint})." if hint else "."
    if n.size <= SHOW_EXPECTED:  # small: show the right gradient itself
        ev["expected"] = n
        msg += f" The right gradient is {np.array2string(n, precision=6, separator=', ')}."
    return Finding("gradient.shape", "fault", msg, evidence=ev, location=name)
