"""Check a user's own gradient code: :func:`check_gradient` and :func:`check_backward`.

The reference gradient comes from central finite differences with Richardson
extrapolation in float64 (:mod:`gradwise.diagnostics.finite_diff`), so the loss
may be any Python code. When the loss also accepts gradwise Tensors, reverse-mode
autodiff gives a second, exact reference.

Small models (at most ``max_entries`` parameter entries) are checked entry by
entry (4 loss evaluations per entry). Larger ones are checked along random
directions per block (4 evaluations each); a block that fails is either
explained by one pattern (sign, factor, transpose, zero) or its wrong entries
are located by group testing: the directional derivative is linear in the
direction, so testing one half of a suspect group gives the other half's error
for free, and a single wrong entry among P is found in about ``log2(P)`` probes
(Dorfman, "The detection of defective members of large populations", Ann. Math.
Statist. 14, 1943; adaptive binary splitting as in Hwang, JASA 67, 1972).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise._result import Finding, Result
from gradwise._tree import entry_name, flatten, unflatten
from gradwise._util import to_array
from gradwise.diagnostics._classify import (
    UNVERIFIED,
    BlockData,
    _entry_list,
    _shape_finding,
    classify_block,
    describe_factor,
    nonfinite_finding,
)
from gradwise.diagnostics.finite_diff import (
    CountedFunction,
    NonFiniteLoss,
    check_deterministic,
    directional_derivative,
    numeric_gradient,
)

__all__ = ["check_gradient", "check_backward", "GradientCheck", "gradients_from_update"]

#: entries compared one by one at most in a block found wrong in large mode
MAX_LOCATED = 20


class GradientCheck(Result):
    """Result of :func:`check_gradient` / :func:`check_backward`.

    Keys (also attributes)
    ----------------------
    findings : list of Finding
        One per wrong block (codes in FAULTS.md), plus ``gradient.kink`` (info)
        and ``input.integer_dtype``.
    blocks : list of dict
        Verdict per parameter block: ``block``, ``shape``, ``verdict`` (``"ok"``
        or a code), ``max_abs_error``, ``max_rel_error``, ``n_wrong``,
        ``tolerance`` (the test used).
    worst : list of dict
        The entries with the largest absolute error: ``location``,
        ``analytic``, ``numeric``, ``abs_error``, ``rel_error``.
    analytic, numeric : same structure as ``params`` or None
        Per-entry values (``numeric`` is None when the large-model method was used).
    abs_error, rel_error : same structure as ``params``
        ``|analytic - numeric|`` and that divided by ``max(|analytic|, |numeric|)``
        per entry (when ``numeric`` is known and the shapes agree).
    method : str
        ``"finite differences, every entry"``, ``"autodiff reference"`` or
        ``"random directions + group testing"``.
    n_loss_evals, n_grad_evals : int
        Calls of the user's functions.
    autodiff_agrees : bool or None
        Whether the autodiff gradient of the loss matched the finite
        differences (None when the loss cannot be traced).
    notes : list of str
        Precision and method remarks.
    """

    title = "Gradient check"

    def _summary_lines(self):
        lines = [
            f"method: {self.get('method')}; loss evaluations: {self.get('n_loss_evals')}",
        ]
        for b in self.get("blocks", []):
            extra = ""
            if "max_rel_error" in b:
                extra = f", max abs error {b['max_abs_error']:.2e}, max rel error {b['max_rel_error']:.2e}"
            lines.append(f"{b['block']} {tuple(b['shape'])}: {b['verdict']}{extra}")
        for n in self.get("notes", []):
            lines.append(f"note: {n}")
        return lines


# ----------------------------------------------------------------------------- inputs


def _prepare(params: Any, root: str = "params", allow_empty: bool = False):
    """Flatten params into float64 copies; dtype findings and notes."""
    leaves, info, treedef = flatten(params, root=root)
    if not leaves and not allow_empty:
        raise ValueError("params is empty: pass an array, a tuple/list or a dict of arrays")
    arrays, findings, notes = [], [], []
    for leaf, li in zip(leaves, info):
        arr = to_array(leaf, li.name)
        if arr.dtype.kind in "iub":
            findings.append(
                Finding(
                    "input.integer_dtype",
                    "warning",
                    f"{li.name} has integer dtype {arr.dtype}: an in-place update "
                    f"(`{li.name} -= lr * g`) truncates or fails. The check runs in float64; "
                    f"create it with dtype=float.",
                    evidence={"array": li.name, "dtype": str(arr.dtype)},
                    fix={"dtype": "float64"},
                    location=li.name,
                )
            )
        elif arr.dtype.kind != "f":
            raise TypeError(
                f"{li.name} has dtype {arr.dtype}; parameters must be real float arrays"
            )
        elif arr.dtype.itemsize < 8:
            notes.append(
                f"{li.name} is {arr.dtype}: checked in float64 with finite-difference steps "
                f"and rounding sized for a loss computing in {arr.dtype} (about "
                f"{np.finfo(arr.dtype).precision} significant digits), so expect relative "
                f"errors near {np.finfo(arr.dtype).eps:.1e} in your own {arr.dtype} runs"
            )
        arr = np.array(arr, dtype=np.float64, copy=True)
        if not np.all(np.isfinite(arr)):
            first = np.argwhere(~np.isfinite(arr))[0]
            where = entry_name(li.name, tuple(first), arr.shape)
            raise ValueError(
                f"{li.name} contains NaN or inf ({where} = {arr[tuple(first)]}); "
                "check from finite parameter values"
            )
        arrays.append(arr)
    return arrays, info, treedef, findings, notes


def _describe(node: Any) -> str:
    """Short description of a structure for error messages."""
    if node is None:
        return "None"
    if isinstance(node, dict):
        return f"a dict with keys {list(node)}"
    if isinstance(node, (list, tuple)):
        return f"a {type(node).__name__} of length {len(node)}"
    return f"{type(node).__name__} of shape {np.shape(node)}"


def _expected(info) -> str:
    if len(info) == 1 and not info[0].path:
        return "one array"
    tops = list(dict.fromkeys(li.path[0] for li in info))
    if all(isinstance(k, str) for k in tops):
        return f"a dict with keys {tops}"
    return f"a tuple/list of length {len(tops)}"


def _lookup(tree: Any, path: tuple, what: str, info=()):
    node = tree
    for key in path:
        try:
            if isinstance(node, (list, tuple)) and isinstance(key, str) or \
                    isinstance(node, dict) and key not in node:
                raise KeyError(key)
            node = node[key]
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(
                f"{what} returned {_describe(tree)}, which has no entry {key!r}; it must return "
                f"the same structure as params ({_expected(info)})"
            ) from e
    if isinstance(node, (dict, list, tuple)) and path and not _all_numbers(node):
        raise ValueError(
            f"{what} returned {_describe(node)} at {path}, where params has an array; it must "
            f"return the same structure as params ({_expected(info)})"
        )
    return node


def _all_numbers(node) -> bool:
    """A (nested) list/tuple of numbers, which np.asarray turns into an array."""
    if isinstance(node, dict):
        return False
    if isinstance(node, (list, tuple)):
        return all(_all_numbers(x) for x in node)
    return node is not None and not isinstance(node, str)


def _leaves_like(out: Any, info, what: str) -> list[np.ndarray]:
    """The user's output, leaf by leaf, following the parameter paths."""
    if len(info) == 1 and not info[0].path and isinstance(out, (list, tuple)) and len(out) == 1:
        out = out[0]
    if out is None:
        raise ValueError(
            f"{what} returned None; it must return {_expected(info)} in the structure of params"
        )
    leaves = []
    for li in info:
        node = _lookup(out, li.path, what, info)
        if node is None:
            raise ValueError(f"{what} returned None for {li.name}; return an array for it")
        leaves.append(to_array(node, f"{what}[{li.name}]"))
    return leaves


def _extra_entries(out: Any, info, what: str) -> list[str]:
    """Notes for entries the user's output has and params has not (they are ignored)."""
    if len(info) == 1 and not info[0].path:
        return []
    if not isinstance(out, (dict, list, tuple)):
        return []
    known = {li.path for li in info}
    inside = {li.path[:i] for li in info for i in range(len(li.path))}  # dicts/tuples on the way
    _, out_info, _ = flatten(out)
    extra = set()
    for oi in out_info:
        if any(oi.path[:len(k)] == k for k in known):
            continue  # part of a parameter's gradient (e.g. a nested list of numbers)
        j = next(i for i in range(1, len(oi.path) + 1) if oi.path[:i] not in inside)
        extra.add(repr(oi.path[:j])[1:-1].rstrip(","))
    extra = sorted(extra)
    if not extra:
        return []
    return [f"{what} returned entries that params does not have ({', '.join(extra)}); "
            "they were ignored"]


def _gradient_arrays(arrays: list, names: list[str], what: str) -> list[np.ndarray]:
    """The user's gradient blocks as float64 arrays, or one clear error."""
    out = []
    for a, nm in zip(arrays, names):
        if a.dtype.kind == "c":
            raise TypeError(f"{what} returned a complex array for {nm}; return a real array")
        try:
            out.append(np.asarray(a, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{what} returned {str(a)[:60]!r} (dtype {a.dtype}) for {nm}, not an array of "
                "numbers"
            ) from e
    return out


def _copies(arrays):
    return [a.copy() for a in arrays]


# ----------------------------------------------------------------------------- the engine


def _autodiff_reference(loss: Callable, treedef, info, arrays) -> list[np.ndarray] | None:
    """Gradient by gradwise autodiff, or None when the loss cannot be traced."""
    try:
        from gradwise.autodiff import grad as ad_grad

        g = ad_grad(loss)(unflatten(treedef, _copies(arrays)))
        out = [np.asarray(x, dtype=np.float64) for x in _leaves_like(g, info, "autodiff")]
    except Exception:
        return None
    if any(o.shape != a.shape or not np.all(np.isfinite(o)) for o, a in zip(out, arrays)):
        return None
    return out


def _signs(rng, shape):
    """Random direction entries: random sign times a magnitude in [0.5, 1.5] (never ~0,
    and no two errors cancel except with probability zero)."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)


class _Prober:
    """Directional tests of one analytic gradient against finite differences."""

    def __init__(self, fc, arrays, f0, analytic, rtol):
        self.fc, self.arrays, self.f0, self.A, self.rtol = fc, arrays, f0, analytic, rtol

    def probe(self, k: int, v: np.ndarray, flat_idx: np.ndarray | None = None, A=None,
              step_scale: float = 1.0):
        """(analytic·v - numeric directional derivative, tolerance) on block ``k``."""
        A = self.A[k] if A is None else A
        dk = np.zeros(self.arrays[k].shape)
        if flat_idx is None:
            dk[...] = v
        else:
            dk.flat[flat_idx] = v.flat[flat_idx]
        dirs = [dk if i == k else np.zeros(a.shape) for i, a in enumerate(self.arrays)]
        d = directional_derivative(self.fc, self.arrays, dirs, f0=self.f0, step_scale=step_scale)
        av = (A * dk).ravel()
        return float(av.sum()) - d.value, self.rtol * float(np.linalg.norm(av)) + 10 * d.error, d


def _smaller_step(prober: _Prober, k: int, v: np.ndarray, r: tuple) -> tuple:
    """The test of direction ``v`` again with a 100x smaller step; the original
    result is kept unless the smaller step agrees with the analytic value."""
    again = prober.probe(k, v, step_scale=1e-2)
    return again if abs(again[0]) <= again[1] else r


def _explained_by_kinks(res) -> bool:
    """True when every failing directional test crossed a kink (one-sided
    differences disagree) and the analytic value lies between the one-sided
    derivatives (within the tolerance): a subgradient, not a wrong gradient."""
    failing = [(e, t, d) for e, t, d in res if abs(e) > t]
    return bool(failing) and all(
        d.kink and min(d.forward, d.backward) - t <= e + d.value <= max(d.forward, d.backward) + t
        for e, t, d in failing)


def _large_block(prober: _Prober, k: int, name: str, rng, n_dir: int, dims):
    """Check one block along random directions; explain or locate its error.

    Returns (verdict, finding) or None when the block passes."""
    A = prober.A[k]
    shape = A.shape
    vs = [_signs(rng, shape) for _ in range(n_dir)]
    res = [prober.probe(k, v) for v in vs]
    # a piecewise-linear loss (ReLU) crosses kinks within the step along a dense
    # direction; a disagreement that vanishes with a 100x smaller step was such a
    # crossing (a wrong gradient disagrees at every step size)
    res = [r if abs(r[0]) <= r[1] else _smaller_step(prober, k, v, r)
           for v, r in zip(vs, res)]
    verdict = {"block": name, "shape": list(shape), "verdict": None,
               "tolerance": f"directional: |a·v - D_v f| <= {prober.rtol:g}·‖a⊙v‖ + 10·(FD error)"}
    if all(abs(e) <= t for e, t, _ in res):
        loose = [(e, d) for e, t, d in res if abs(e) > t - 10 * d.error
                 and 10 * d.error > UNVERIFIED * max(abs(e + d.value), abs(d.value))]
        if not loose:
            return None
        verdict["verdict"] = "gradient.unverified"
        return verdict, Finding(
            "gradient.unverified", "warning",
            f"Finite differences along random directions are too noisy to check {name}: their "
            f"error estimate is more than {UNVERIFIED:g}x the directional derivative, so even a "
            "wrong gradient would pass. The loss is rounded/quantised, jumps near this point, or "
            "is computed in low precision.",
            evidence={"analytic_dot_v": [e + d.value for e, d in loose],
                      "numeric_dot_v": [d.value for _, d in loose],
                      "fd_error_estimate": [d.error for _, d in loose]},
            location=name)
    preds = np.array([e + d.value for e, _, d in res])
    ds = np.array([d.value for _, _, d in res])
    tols = np.array([t for _, t, _ in res])
    if _explained_by_kinks(res):
        verdict["verdict"] = "gradient.kink"
        return verdict, Finding(
            "gradient.kink", "info",
            f"Along random directions {name} disagrees with finite differences only where the "
            "loss has a kink within the finite-difference step (the one-sided derivatives "
            "differ, e.g. ReLU units switching); your gradient lies between them. Not a fault.",
            evidence={"analytic_dot_v": preds.tolist(), "numeric_dot_v": ds.tolist(),
                      "one_sided": [[d.backward, d.forward] for _, _, d in res]},
            location=name)
    if not np.any(A):
        verdict["verdict"] = "gradient.zero"
        return verdict, Finding(
            "gradient.zero", "fault",
            "Your gradient is zero everywhere, but the loss changes along random "
            f"directions (directional derivatives {', '.join(f'{x:.3g}' for x in ds)}).",
            evidence={"directional_derivatives": ds.tolist(), "all_zero": True},
            location=name,
        )
    if ds @ ds > 0:
        kf = float(preds @ ds / (ds @ ds))
        if np.all(np.abs(preds - kf * ds) <= tols * max(1.0, abs(kf))) and abs(kf - 1) > 1e-3:
            code = "gradient.sign" if abs(kf + 1) < 1e-3 else "gradient.scale"
            verdict["verdict"] = code
            desc = describe_factor(kf, dims)
            msg = ("Your gradient has the wrong sign (analytic = −numeric)"
                   if code == "gradient.sign"
                   else f"Your gradient is {desc} times the true gradient (factor k = {kf:.6g})")
            return verdict, Finding(
                code, "fault", msg + f", measured along {n_dir} random directions.",
                evidence={"factor": kf, "factor_text": desc, "analytic_dot_v": preds.tolist(),
                          "numeric_dot_v": ds.tolist()},
                fix=None if code == "gradient.sign" else {"multiply_gradient_by": float(f"{1.0 / kf:.6g}")},
                location=name,
            )
    if A.ndim == 2 and A.shape[0] == A.shape[1]:
        rt = [prober.probe(k, v, A=A.T.copy()) for v in vs]
        if all(abs(e) <= t for e, t, _ in rt):
            verdict["verdict"] = "gradient.transposed"
            return verdict, Finding(
                "gradient.transposed", "fault",
                "Your gradient is the transpose of the true gradient.",
                evidence={"analytic_dot_v": preds.tolist(), "numeric_dot_v": ds.tolist()},
                location=name,
            )
    # group testing: locate along a failing direction, correct the located entries with
    # their finite differences, re-test all directions (errors that cancelled along one
    # direction show along another), repeat
    suspects, complete, ng = _locate_rounds(prober, k, vs, res)
    entries = suspects
    if entries:
        idx = tuple(np.array(ix) for ix in zip(*(np.unravel_index(i, shape) for i in suspects)))
        a, n = A[idx], ng.value[k][idx]
        sub = BlockData(name, a, n, ng.error[k][idx], ng.kink[k][idx], ng.lower[k][idx],
                        ng.upper[k][idx], scale_floor=float(np.max(np.abs(A))))
        v_sub, _ = classify_block(sub, prober.rtol)
        wrong = [i for i, ok in zip(suspects, _entrywise_ok(sub, prober.rtol)) if not ok]
    else:
        v_sub, wrong = {"verdict": "ok"}, []
    if complete and v_sub["verdict"] == "gradient.kink":
        verdict["verdict"] = "gradient.kink"
        return verdict, Finding(
            "gradient.kink", "info",
            f"Disagreement only at {len(suspects)} non-differentiable entr"
            f"{'y' if len(suspects) == 1 else 'ies'}; not a fault.",
            evidence={"entries": _located(name, shape, A, ng, k, suspects)}, location=name,
        )
    if complete and wrong:
        lst = _located(name, shape, A, ng, k, wrong)
        verdict.update(verdict="gradient.entries", n_wrong=len(wrong))
        where = ", ".join(e["location"] for e in lst[:5])
        return verdict, Finding(
            "gradient.entries", "fault",
            f"{len(wrong)} of {A.size} entries are wrong ({where}); located by group "
            f"testing, the others agree with finite differences along random directions.",
            evidence={"entries": lst, "n_wrong": len(wrong), "n_entries": int(A.size)},
            location=lst[0]["location"] if len(wrong) == 1 else name,
        )
    verdict["verdict"] = "gradient.mismatch"
    rel = float(np.max(np.abs(preds - ds) / np.maximum(np.abs(ds), 1e-300)))
    return verdict, Finding(
        "gradient.mismatch", "fault",
        "Your gradient disagrees with finite differences along random directions "
        f"(relative error {rel:.3g}) and the error is spread over more than {MAX_LOCATED} "
        "entries with no constant factor, sign or transpose.",
        evidence={"analytic_dot_v": preds.tolist(), "numeric_dot_v": ds.tolist(),
                  "max_rel_error": rel,
                  "entries": _located(name, shape, A, ng, k, wrong) if entries else []},
        location=name,
    )


def _locate_rounds(prober: _Prober, k: int, vs: list, res: list, max_rounds: int = 4):
    """Repeated group testing; returns (flat suspects, complete, numeric values)."""
    work = list(prober.A)
    work[k] = prober.A[k].astype(np.float64, copy=True)
    fails = [(v, e, t) for v, (e, t, _) in zip(vs, res) if abs(e) > t]
    found: list[int] = []
    ng = None
    complete = True
    for _ in range(max_rounds):
        if not fails:
            break
        v, e, t = max(fails, key=lambda f: abs(f[1]) - f[2])
        pr = _Prober(prober.fc, prober.arrays, prober.f0, work, prober.rtol)
        sus, comp = _locate(pr, k, v, e, t)
        new = [i for i in sus if i not in set(found)]
        if new:
            shape = work[k].shape
            got = numeric_gradient(prober.fc, prober.arrays, f0=prober.f0,
                                   entries=[(k, np.unravel_index(i, shape)) for i in new])
            if ng is None:
                ng = got
            for i in new:
                ix = np.unravel_index(i, shape)
                for field in ("value", "error", "kink", "lower", "upper"):
                    getattr(ng, field)[k][ix] = getattr(got, field)[k][ix]
                work[k][ix] = got.value[k][ix]
            found += new
        if not comp or not new or len(found) > MAX_LOCATED:
            complete = False
            break
        pr = _Prober(prober.fc, prober.arrays, prober.f0, work, prober.rtol)
        fails = [(v2, e2, t2) for v2 in vs for e2, t2, _ in [pr.probe(k, v2)] if abs(e2) > t2]
    else:
        complete = not fails
    return found, complete, ng


def _entrywise_ok(b: BlockData, rtol: float) -> list[bool]:
    out = []
    for i in range(np.size(b.numeric)):
        one = BlockData(b.name, b.analytic[i:i + 1], b.numeric[i:i + 1], b.error[i:i + 1],
                        b.kink[i:i + 1], b.lower[i:i + 1], b.upper[i:i + 1], b.scale_floor)
        out.append(classify_block(one, rtol)[0]["verdict"] in ("ok", "gradient.kink"))
    return out


def _located(name, shape, A, ng, k, flat):
    """:func:`_entry_list` of block ``k``'s entries at flat indices ``flat``."""
    return _entry_list(name, A, ng.value[k], [np.unravel_index(i, shape) for i in flat], shape)


def _locate(prober: _Prober, k: int, v: np.ndarray, e0: float, t0: float):
    """Adaptive binary splitting: flat indices of the entries that carry the error.

    Only one half of a suspect group is probed; the other half's error is the
    difference (the directional derivative is linear in the direction). Inferred
    errors carry the sum of both tolerances, so a group whose inferred tolerance
    has grown past twice a fresh probe's is probed again before it is split.

    Returns (suspects, complete); complete is False when more than MAX_LOCATED
    entries are wrong or the error could not be pinned down."""
    A = prober.A[k].ravel()
    vf = v.ravel()
    floor = t0 - prober.rtol * float(np.linalg.norm(A * vf))  # 10·(FD error) of one probe

    def fresh(idx):
        return prober.rtol * float(np.linalg.norm(A[idx] * vf[idx])) + floor

    stack = [(np.arange(v.size), e0, t0, True)]
    found: list[int] = []
    while stack:
        idx, e, t, exact = stack.pop()
        if not exact and t > 2 * fresh(idx):
            e, t, _ = prober.probe(k, v, flat_idx=idx)
        if abs(e) <= t:
            continue
        if idx.size == 1:
            found.append(int(idx[0]))
            if len(found) > MAX_LOCATED:
                return found, False
            continue
        half, rest = idx[: idx.size // 2], idx[idx.size // 2:]
        e1, t1, _ = prober.probe(k, v, flat_idx=half)
        e2, t2 = e - e1, t + t1
        pushed = False
        if abs(e2) > fresh(rest):  # possibly wrong: confirmed (or re-probed) when popped
            stack.append((rest, e2, t2, False))
            pushed = True
        if abs(e1) > t1:
            stack.append((half, e1, t1, True))
            pushed = True
        if not pushed:
            return found, False
        if len(stack) + len(found) > MAX_LOCATED:
            return found, False
    return found, bool(found)


def _check_leaves(fc, arrays, analytic, names, **kw):
    """Compare analytic leaves with the reference; the shared core of both checks.

    A loss that is not finite a finite-difference step away from the point raises
    :class:`~gradwise.diagnostics.finite_diff.NonFiniteLoss` naming the entry."""
    try:
        return _compare_leaves(fc, arrays, analytic, names, **kw)
    except NonFiniteLoss as e:
        if e.leaf is not None and e.label is None:
            e.label = entry_name(names[e.leaf], e.index, arrays[e.leaf].shape)
        raise


def _compare_leaves(
    fc: CountedFunction,
    arrays: list[np.ndarray],
    analytic: list[np.ndarray],
    names: list[str],
    *,
    rtol: float,
    max_entries: int,
    directions: int,
    seed: int | None,
    reference: list[np.ndarray] | None,
    dims: dict,
):
    f0 = fc(arrays)
    check_deterministic(fc, arrays, f0)
    total = sum(a.size for a in arrays)
    verdicts, findings = [], []
    numeric = None
    worst: list[dict] = []
    agrees = None
    notes = []

    if total <= max_entries:
        ng = numeric_gradient(fc, arrays, f0=f0)
        numeric = ng.value
        method = "finite differences, every entry"
        if reference is not None:
            agrees = all(
                classify_block(BlockData(nm, r, n, e, kk, lo, hi), rtol)[0]["verdict"]
                in ("ok", "gradient.kink")
                for nm, r, n, e, kk, lo, hi in zip(names, reference, ng.value, ng.error,
                                                   ng.kink, ng.lower, ng.upper)
            )
            if not agrees:
                notes.append("autodiff and finite differences disagree; finite differences used")
        floor = max((float(np.max(np.abs(n))) for n in ng.value if n.size), default=0.0)
        blocks = [BlockData(nm, a, n, e, kk, lo, hi, floor, dims)
                  for nm, a, n, e, kk, lo, hi in zip(names, analytic, ng.value, ng.error,
                                                     ng.kink, ng.lower, ng.upper)]
    else:
        rng = np.random.default_rng(seed)
        use_ref = False
        if reference is not None:
            prober = _Prober(fc, arrays, f0, reference, rtol)
            agrees = all(abs(e) <= t for k in range(len(arrays)) if arrays[k].size
                         for e, t, _ in [prober.probe(k, _signs(rng, arrays[k].shape))])
            use_ref = agrees
            if not agrees:
                notes.append("autodiff disagrees with finite differences along random "
                             "directions; not used as reference")
        if use_ref:
            method = "autodiff reference (verified along random directions)"
            numeric = reference
            floor = max((float(np.max(np.abs(n))) for n in reference if n.size), default=0.0)
            blocks = [BlockData(nm, a, n, np.zeros(n.shape), None, None, None, floor, dims)
                      for nm, a, n in zip(names, analytic, reference)]
        else:
            method = "random directions + group testing"
            blocks = []
            gnorm = float(np.sqrt(sum(float(np.vdot(a, a)) for a in analytic
                                      if np.all(np.isfinite(a)))))
            notes.append(f"random-direction tests resolve errors in an entry above about "
                         f"{rtol * gnorm:.2g} (rtol x the gradient's Euclidean norm)")
            prober = _Prober(fc, arrays, f0, analytic, rtol)
            for k, (nm, a, x) in enumerate(zip(names, analytic, arrays)):
                if a.shape != x.shape and x.size > max_entries:
                    # wrong shape of a large block: reported without per-entry differences
                    f = _shape_finding(nm, a, np.full(x.shape, np.nan), np.zeros(x.shape), rtol, 0.0)
                    verdicts.append({"block": nm, "shape": list(x.shape), "verdict": f.code,
                                     "tolerance": "shape"})
                    findings.append(f)
                    continue
                bad = nonfinite_finding(nm, a) if a.shape == x.shape else None
                if bad is not None:
                    verdicts.append({"block": nm, "shape": list(x.shape), "verdict": bad.code,
                                     "tolerance": "finite values"})
                    findings.append(bad)
                    continue
                if a.shape != x.shape or x.size <= max_entries:
                    ng = numeric_gradient(fc, arrays, entries=[(k, i) for i in np.ndindex(*x.shape)],
                                          f0=f0)
                    blocks.append(BlockData(nm, a, ng.value[k], ng.error[k], ng.kink[k],
                                            ng.lower[k], ng.upper[k], 0.0, dims))
                    continue
                out = _large_block(prober, k, nm, rng, directions, dims)
                if out is None:
                    verdicts.append({"block": nm, "shape": list(x.shape), "verdict": "ok",
                                     "tolerance": "directional"})
                else:
                    verdicts.append(out[0])
                    findings.append(out[1])
                    worst += out[1].evidence.get("entries", [])
    for b in blocks:
        v, f = classify_block(b, rtol)
        verdicts.append(v)
        if f is not None:
            findings.append(f)
        if b.numeric.shape == np.shape(b.analytic):
            a = np.asarray(b.analytic, dtype=np.float64)
            err = np.abs(a - b.numeric)
            order = np.argsort(-err, axis=None)[:5]
            worst += _entry_list(b.name, a, b.numeric, [np.unravel_index(i, err.shape) for i in order],
                                 err.shape)
    worst.sort(key=lambda w: -w["abs_error"])
    return dict(blocks=verdicts, findings=findings, worst=worst[:10], numeric=numeric,
                method=method, autodiff_agrees=agrees, notes=notes)


# ----------------------------------------------------------------------------- public


def check_gradient(
    loss: Callable[[Any], float],
    grad: Callable[[Any], Any],
    params: Any,
    *args: Any,
    rtol: float = 1e-5,
    max_entries: int = 2000,
    directions: int = 2,
    seed: int | None = 0,
    autodiff: bool = True,
    dims: dict | None = None,
) -> GradientCheck:
    """Check a hand-written gradient against finite differences and name what is wrong.

    Parameters
    ----------
    loss : callable
        ``loss(params, *args) -> float``: any Python code (loops, pandas ...).
        Called with float64 copies of ``params`` in the same structure.
    grad : callable
        ``grad(params, *args) -> gradient`` in the same structure as ``params``
        (the function under test). Called once, with a float64 copy.
    params : ndarray, tuple/list or dict of ndarrays
        Point at which to check. Never modified. Integer arrays are checked in
        float64 and reported (``input.integer_dtype``); float32 arrays are
        checked in float64 and the precision is noted.
    *args
        Extra arguments passed to ``loss`` and ``grad`` unchanged (the data
        ``X, y``), as in ``scipy.optimize.check_grad``.
    rtol : float, default 1e-5
        Relative tolerance per entry (full test in
        :mod:`gradwise.diagnostics._classify`). Richardson-extrapolated central
        differences are accurate to about 1e-10 relative on smooth float64
        losses, so 1e-5 leaves a wide margin yet catches any real error.
    max_entries : int, default 2000
        Up to this many entries every entry is checked (4 loss evaluations
        each). Above it, each block is checked along ``directions`` random
        directions and wrong entries are located by group testing
        (about ``4·log2(P)`` evaluations per wrong entry).
    directions : int, default 2
        Random directions per block in the large-model method.
    seed : int or None, default 0
        Seed of the random directions.
    autodiff : bool, default True
        Also differentiate ``loss`` with gradwise autodiff when it accepts
        Tensors (a second reference; in the large-model method it replaces
        entry-by-entry finite differences once verified along random directions).
    dims : dict of str -> int, optional
        Named sizes (``{"batch size": 32}``) used to explain a scale factor
        (``"1/32 (1 / batch size)"``).

    Returns
    -------
    GradientCheck
        ``ok``, ``findings`` (``gradient.sign``, ``gradient.scale`` with the
        factor, ``gradient.transposed``, ``gradient.shape``,
        ``gradient.entries``, ``gradient.zero``, ``gradient.mismatch``,
        ``numeric.nonfinite`` (NaN/inf in the gradient), ``gradient.kink``
        (info), ``gradient.unverified`` (warning: finite differences too noisy
        to judge, e.g. a quantised or discontinuous loss),
        ``input.integer_dtype``), ``blocks``,
        ``worst``, ``analytic``, ``numeric``, ``n_loss_evals``, ``method``.

    Raises
    ------
    ValueError
        ``grad`` returns a different structure than ``params``, ``loss``
        does not return a scalar or returns different values at the same point
        (random), or ``params`` contain NaN/inf.
    TypeError
        ``loss`` or ``grad`` returns something that is not a number/array.
    FloatingPointError
        ``loss`` is not finite at ``params``
        (:class:`~gradwise.diagnostics.finite_diff.NonFiniteLoss`, naming the
        entry, when it is not finite a finite-difference step away).

    Notes
    -----
    Full method: every entry, 4 loss evaluations each (Richardson-extrapolated
    central differences, :mod:`gradwise.diagnostics.finite_diff`). Large-model
    method (more than ``max_entries`` entries, loss not traceable): a block
    passes when ``|g·v − D_v f| <= rtol·‖g⊙v‖₂ + 10·(FD error)`` for each random
    direction ``v``; it therefore resolves an error in a single entry above about
    ``rtol·‖g‖₂``. Wrong entries are located by adaptive group testing (module
    docstring), about ``4·log2(P)`` evaluations each.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1., 2.], [3., 4.], [5., 6.]]); y = np.array([1., 2., 2.])
    >>> loss = lambda w: np.mean((X @ w - y) ** 2)
    >>> grad = lambda w: X.T @ (X @ w - y) / len(y)          # forgot the 2
    >>> r = check_gradient(loss, grad, np.array([0.1, -0.2]))
    >>> r.findings[0].code, round(r.findings[0].evidence["factor"], 6)
    ('gradient.scale', 0.5)
    """
    _validate(rtol, max_entries, directions)
    if args:
        loss_fn, grad_fn = loss, grad
        loss = lambda p: loss_fn(p, *args)  # noqa: E731
        grad = lambda p: grad_fn(p, *args)  # noqa: E731
    if _scalar_list(params):  # a list of numbers is one vector (entries params[i])
        kind, loss_l, grad_l = type(params), loss, grad
        loss = lambda p: loss_l(kind(np.asarray(p).tolist()))  # noqa: E731
        grad = lambda p: _as_vector(grad_l(kind(np.asarray(p).tolist())))  # noqa: E731
        params = np.array([float(v) for v in params])
    arrays, info, treedef, findings, notes = _prepare(params)
    names = [li.name for li in info]
    fc = CountedFunction(lambda lv: loss(unflatten(treedef, lv)), "loss", eps=_precision(params))
    g = grad(unflatten(treedef, _copies(arrays)))
    analytic = _gradient_arrays(_leaves_like(g, info, "grad"), names, "grad")
    notes += _extra_entries(g, info, "grad")
    ref = _autodiff_reference(loss, treedef, info, arrays) if autodiff else None
    out = _check_leaves(fc, arrays, analytic, names, rtol=rtol, max_entries=max_entries,
                        directions=directions, seed=seed, reference=ref, dims=dims or {})
    numeric = out.pop("numeric")
    per_entry = {}
    if numeric is not None and _same_shapes(analytic, arrays):
        with np.errstate(invalid="ignore"):  # inf/inf where the gradient is inf
            ab = [np.abs(a - n) for a, n in zip(analytic, numeric)]
            rel = [e / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
                   for e, a, n in zip(ab, analytic, numeric)]
        per_entry = {"abs_error": unflatten(treedef, ab), "rel_error": unflatten(treedef, rel)}
    res = GradientCheck(
        findings=findings + out.pop("findings"),
        analytic=unflatten(treedef, analytic) if _same_shapes(analytic, arrays) else analytic,
        numeric=None if numeric is None else unflatten(treedef, numeric),
        **per_entry,
        n_loss_evals=fc.calls,
        n_grad_evals=1,
        rtol=rtol,
        **out,
    )
    res["notes"] = notes + res["notes"]
    return res


def _scalar_list(params: Any) -> bool:
    """A list/tuple of plain numbers (not arrays, not a nested structure): one
    parameter vector, as the user's loops index it."""
    return (isinstance(params, (list, tuple)) and len(params) > 1
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in params))


def _as_vector(out: Any) -> Any:
    """A list/tuple of numbers as a vector; other results unchanged."""
    if isinstance(out, (list, tuple)) and all(isinstance(v, numbers.Real) for v in out):
        return np.array([float(v) for v in out])
    return out


def _precision(params) -> float:
    """Machine epsilon of the least precise float parameter: a loss of float32
    parameters usually computes in float32, so finite differences take float32
    steps and rounding (finite_diff module docstring)."""
    arrays = (to_array(leaf, "params") for leaf in flatten(params)[0])
    eps = [np.finfo(a.dtype).eps for a in arrays if a.dtype.kind == "f"]
    return float(max(eps, default=np.finfo(np.float64).eps))


def _same_shapes(a, b):
    return all(np.shape(x) == np.shape(y) for x, y in zip(a, b))


def _validate(rtol, max_entries, directions):
    if not (isinstance(rtol, numbers.Real) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a float in (0, 1), got {rtol!r}")
    if not (isinstance(max_entries, numbers.Integral) and max_entries >= 0):
        raise ValueError(f"max_entries must be a non-negative int, got {max_entries!r}")
    if not (isinstance(directions, numbers.Integral) and directions >= 1):
        raise ValueError(f"directions must be an int >= 1, got {directions!r}")


def check_backward(
    forward: Callable[[Any, Any], Any],
    backward: Callable[[Any, Any, Any], dict],
    x: Any,
    params: Any,
    *,
    upstream: Any = None,
    n_upstream: int = 2,
    param_scale: str = "sum",
    layer: str | None = None,
    rtol: float = 1e-5,
    max_entries: int = 2000,
    seed: int | None = 0,
) -> GradientCheck:
    """Check one layer's hand-written backward pass (vector-Jacobian product).

    For a random upstream gradient ``u`` (shaped like the layer's output) the
    true gradients are those of the scalar ``⟨u, forward(x, params)⟩``; each
    gradient ``backward`` returns is compared with its finite differences, so
    every layer is checked on its own and the wrong block is named.

    Parameters
    ----------
    forward : callable
        ``forward(x, params) -> output`` (array).
    backward : callable
        ``backward(upstream, x, params) -> dict`` mapping parameter names (the
        keys of ``params`` when it is a dict, else ``0, 1, ...`` for a
        tuple/list, or ``"params"`` for a single array) and ``"x"`` (the input
        gradient; optional) to gradients. A layer whose backward applies the
        update itself can be wrapped with :func:`gradients_from_update`.
    x : ndarray
        Layer input, usually a batch ``(m, d_in)``. Never modified.
    params : ndarray, tuple/list or dict of ndarrays
        Layer parameters (``{}`` for a layer without any, e.g. a loss). Never
        modified.
    upstream : ndarray, optional
        Use this upstream gradient instead of random ones.
    n_upstream : int, default 2
        Number of random (standard normal) upstream gradients tried.
    param_scale : {"sum", "mean"}, default "sum"
        ``"mean"`` when your layer divides its parameter gradients by the batch
        size ``m = len(x)`` (the convention of code whose loss derivative omits
        the ``1/m``): the reference parameter gradients are then divided by
        ``m``; the input gradient never is.
    layer : str, optional
        Name used in locations (``"layer 2"`` gives ``"layer 2: W"``).
    rtol, max_entries, seed
        As in :func:`check_gradient`.

    Returns
    -------
    GradientCheck
        As :func:`check_gradient`; a scale factor is explained with the layer's
        sizes (``"8/30 (batch size / input features)"``).

    Raises
    ------
    ValueError
        Bad ``param_scale``/``n_upstream``, or ``backward`` returns no known name.
    """
    _validate(rtol, max_entries, 1)
    if param_scale not in ("sum", "mean"):
        raise ValueError(f"param_scale must be 'sum' or 'mean', got {param_scale!r}")
    if not (isinstance(n_upstream, int) and n_upstream >= 1):
        raise ValueError(f"n_upstream must be an int >= 1, got {n_upstream!r}")
    arrays, info, treedef, findings, notes = _prepare(params, allow_empty=True)
    x0 = np.array(to_array(x, "x"), dtype=np.float64, copy=True)
    if not np.all(np.isfinite(x0)):
        raise ValueError("x contains NaN or inf; check the layer on finite inputs")
    prefix = f"{layer}: " if layer else ""

    def key_of(li):
        return li.path[-1] if li.path else "params"

    out0 = forward(x0.copy(), unflatten(treedef, _copies(arrays)))
    if out0 is None:
        raise ValueError("forward returned None; it must return the layer's output array")
    out0 = to_array(out0, "forward output")
    if out0.dtype.kind not in "biuf":
        raise TypeError(f"forward returned an array of dtype {out0.dtype}; it must return the "
                        "layer's real-valued output")
    m = x0.shape[0] if x0.ndim else 1
    dims = {"batch size": m}
    if x0.ndim >= 2:
        dims["input features"] = int(np.prod(x0.shape[1:]))
    if out0.ndim >= 2:
        dims["output units"] = int(np.prod(out0.shape[1:]))
    rng = np.random.default_rng(seed)
    ups = [np.asarray(upstream, dtype=np.float64)] if upstream is not None else [
        rng.standard_normal(out0.shape) for _ in range(n_upstream)]
    if ups[0].shape != out0.shape:
        raise ValueError(f"upstream has shape {ups[0].shape} but forward's output has shape "
                         f"{out0.shape}; the upstream gradient is shaped like the output")
    total_evals = 0
    result = None
    for j, u in enumerate(ups):
        got = backward(u.copy(), x0.copy(), unflatten(treedef, _copies(arrays)))
        if not isinstance(got, dict):
            raise ValueError(
                f"backward must return a dict of gradients keyed by parameter name and 'x', "
                f"got {type(got).__name__}"
            )
        names, analytic, scale = [], [], []
        for key, val in got.items():
            if val is None:
                raise ValueError(f"backward returned None for {key!r}; return its gradient array "
                                 "(or leave the key out)")
        known = {key_of(li) for li in info} | {"x"}
        unknown = [k for k in got if k not in known]
        if unknown and j == 0:
            notes.append(f"backward returned keys {unknown} that are neither parameter names "
                         f"({sorted(map(str, known - {'x'}))}) nor 'x'; ignored")
        for li in info:
            if key_of(li) in got:
                names.append(prefix + li.name)
                analytic.append(to_array(got[key_of(li)], li.name))
                scale.append(1.0 / m if param_scale == "mean" else 1.0)
        if "x" in got:
            names.append(prefix + "x")
            analytic.append(to_array(got["x"], "x"))
            scale.append(1.0)
        if not names:
            raise ValueError(
                f"backward returned keys {sorted(map(str, got))}, none of which is a parameter "
                f"name ({[key_of(li) for li in info]}) or 'x'"
            )
        missing = [li.name for li in info if key_of(li) not in got]
        if missing and j == 0:
            notes.append(f"backward returned no gradient for {missing}; not checked")
        leaves = list(arrays) + [x0]
        sel = [k for k, li in enumerate(info) if key_of(li) in got] + (
            [len(arrays)] if "x" in got else [])
        # scale the analytic gradient into the reference convention ("sum")
        analytic = [a / s for a, s in zip(_gradient_arrays(analytic, names, "backward"), scale)]

        def f(lv, u=u):
            ps = unflatten(treedef, lv[: len(arrays)])
            return float(np.sum(u * to_array(forward(lv[-1], ps), "forward output")))

        fc = CountedFunction(f, "forward")
        sub = _Subset(fc, leaves, sel)
        out = _check_leaves(sub, [leaves[k] for k in sel], analytic, names, rtol=rtol,
                            max_entries=max_entries, directions=2, seed=seed, reference=None,
                            dims=dims)
        total_evals += fc.calls
        for fnd in out["findings"]:
            if fnd.code == "gradient.scale" and param_scale == "mean" and not fnd.location.endswith("x"):
                fnd.message += f" (reference: gradient of ⟨upstream, output⟩ divided by batch size {m})"
        out["upstream_index"] = j
        result = out
        if any(fnd.severity == "fault" for fnd in out["findings"]):
            break
    numeric = result.pop("numeric")
    res = GradientCheck(findings=findings + result.pop("findings"), n_loss_evals=total_evals,
                        n_grad_evals=result["upstream_index"] + 1, rtol=rtol,
                        numeric=numeric, param_scale=param_scale, **result)
    res["notes"] = notes + res["notes"]
    return res


class _Subset:
    """View a function of all leaves as a function of a subset (the others fixed)."""

    def __init__(self, fc: CountedFunction, leaves: list[np.ndarray], sel: list[int]):
        self.fc, self.leaves, self.sel = fc, leaves, sel

    @property
    def eps(self):
        return self.fc.eps

    @property
    def name(self):
        return self.fc.name

    @property
    def calls(self):
        return self.fc.calls

    def __call__(self, sub):
        full = list(self.leaves)
        for k, a in zip(self.sel, sub):
            full[k] = a
        return self.fc(full)


def gradients_from_update(
    update: Callable[[Any, Any, Any], tuple[Any, Any]], lr: float
) -> Callable[[Any, Any, Any], dict]:
    """Turn a layer backward that applies its own update into a ``backward`` for
    :func:`check_backward`.

    Parameters
    ----------
    update : callable
        ``update(upstream, x, params) -> (new_params, dx)``: your layer's backward
        that also steps its parameters (``W -= lr * dW``) and returns the input
        gradient; ``new_params`` may be None when it updates ``params`` in place.
    lr : float
        The learning rate it uses.

    Returns
    -------
    callable
        ``backward(upstream, x, params) -> {name: gradient, "x": dx}`` with the
        parameter gradients recovered as ``(params - new_params) / lr``
        (plain gradient descent, Δθ = −lr·gradient).
    """
    if not lr:
        raise ValueError("lr must be nonzero to recover gradients from an update")

    def backward(upstream, x, params):
        old, info, _ = flatten(params)
        old = [np.array(a, dtype=np.float64, copy=True) for a in old]
        out = update(upstream, x, params)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(f"update must return (new_params, dx), got {_describe(out)}; "
                             "return (None, dx) when it updates params in place")
        new_params, dx = out
        if new_params is None:  # updated in place: params are check_backward's copies
            new_params = params
        new = _leaves_like(new_params, info, "update")
        out = {(li.path[-1] if li.path else "params"): (o - np.asarray(n, float)) / lr
               for li, o, n in zip(info, old, new)}
        if dx is not None:
            out["x"] = dx
        return out

    return backward
