"""``gradwise check FILE.py``: load a user's file and check its gradient and update code.

The file is imported as a module (not run as ``__main__``, so an
``if __name__ == "__main__":`` training block does not run) with matplotlib's
non-interactive ``Agg`` backend selected first. It must define

- ``params``: an array, a tuple/list or a dict of arrays;
- ``loss``: ``loss(params)`` or ``loss(params, X, y)``;
- ``grad`` and/or ``step``: ``grad(params)`` / ``grad(params, X, y)`` returning the
  gradient in the structure of ``params``; ``step(params, X, y)`` returning the
  new parameters (one update);
- ``X``, ``y`` when ``step`` (or a 3-argument ``loss``/``grad``) is defined;
- optionally ``lr``, the step size the step uses.

:func:`run_check_file` returns a :class:`FileCheck`; :func:`exit_code` maps it
to the CLI's exit status; a bad file raises :class:`CheckFileError`.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import inspect
import io
import numbers
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from gradwise._result import Result

__all__ = ["run_check_file", "exit_code", "CheckFileError", "FileCheck", "TEMPLATE"]


TEMPLATE = '''\
"""gradwise check template: fill in your own code, then run `gradwise check THIS_FILE.py`.

gradwise imports this file (it does not run it as __main__), then
  * compares `grad` with finite differences of `loss`   (if `grad` is defined)
  * replays `step` against per-sample gradients of `loss` (if `step` is defined)
and reports what is wrong, where, and by how much. Exit status: 0 clean,
1 faults found, 2 this file is unusable.
"""
import numpy as np

# --- data the step uses (needed for `step`, or for a 3-argument loss/grad) ----
rng = np.random.default_rng(0)
X = rng.standard_normal((20, 3))                 # (n_samples, n_features)
y = X @ np.array([1.0, -2.0, 0.5]) + 0.3         # (n_samples,)

# --- parameters: one array, a tuple/list, or a dict of arrays -----------------
params = {"w": np.zeros(3), "b": np.array(0.0)}

lr = 0.1                                         # the step size your update uses


def loss(params, X, y):
    """Your loss over the given rows (sum or mean over rows)."""
    err = X @ params["w"] + params["b"] - y
    return 0.5 * np.mean(err ** 2)


def grad(params, X, y):
    """Your gradient of `loss`, in the same structure as `params`."""
    err = X @ params["w"] + params["b"] - y
    return {"w": X.T @ err / len(y), "b": err.mean()}


def step(params, X, y):
    """One update as your training loop does it; return the new parameters."""
    g = grad(params, X, y)
    return {k: params[k] - lr * g[k] for k in params}


if __name__ == "__main__":                       # not run by `gradwise check`
    for epoch in range(100):
        params = step(params, X, y)
    print(loss(params, X, y))
'''


class CheckFileError(Exception):
    """The file cannot be checked: missing, missing names, or the user's code raised.

    ``str(e)`` is the message for the terminal; when the user's code raised, it
    ends with the traceback lines from the user's file (not gradwise's).
    """


class FileCheck(Result):
    """Result of :func:`run_check_file`.

    Keys: ``findings`` (all of them), ``file``, ``gradient`` (a
    :class:`~gradwise.GradientCheck` or None), ``step`` (a
    :class:`~gradwise.StepCheck` or None), ``notes`` (e.g. how many lines the
    file printed; its output is captured, not shown).
    """

    title = "gradwise check"

    def _summary_lines(self):
        lines = [f"file: {self.get('file')}"]
        for key in ("gradient", "step"):
            part = self.get(key)
            if part is not None:
                lines += str(part).splitlines()
        lines += [f"note: {n}" for n in self.get("notes", [])]
        return lines


def exit_code(result: Result) -> int:
    """CLI exit status: 0 when no finding is a fault, 1 otherwise.

    (Status 2, bad usage or bad input, is raised as :class:`CheckFileError`.)
    """
    return 0 if result.ok else 1


def _user_traceback(exc: BaseException, path: Path) -> str:
    """Traceback lines of ``exc`` from the user's own code, skipping gradwise and importlib."""
    pkg = str(Path(__file__).resolve().parents[1])
    frames = [
        fr for fr in traceback.extract_tb(exc.__traceback__)
        if not fr.filename.startswith(pkg) and "importlib" not in fr.filename
        and not fr.filename.startswith("<frozen")
    ]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _raises_in_user_code(exc: BaseException, path: Path) -> bool:
    """True when a frame of the traceback is in the user's file or its folder."""
    folder = str(path.resolve().parent)
    return any(str(Path(fr.filename).resolve()).startswith(folder)
               for fr in traceback.extract_tb(exc.__traceback__))


def _no_input(prompt=""):
    raise RuntimeError(
        f"input({prompt!r}) called: `gradwise check` runs your file without a terminal; put "
        "interactive code under `if __name__ == \"__main__\":`"
    )


@contextlib.contextmanager
def _sandbox(captured: io.StringIO):
    """Run user code with input() disabled and its printed output captured."""
    saved = builtins.input
    builtins.input = _no_input
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        builtins.input = saved


def _load(path: Path):
    os.environ["MPLBACKEND"] = "Agg"
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    name = f"_gradwise_check_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CheckFileError(f"{path}: cannot be loaded as a Python module (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise CheckFileError(
            f"{path}: syntax error on line {e.lineno}: {e.msg}\n"
            + "".join(traceback.format_exception_only(type(e), e)).rstrip()
        ) from None
    except BaseException as e:  # noqa: BLE001 - SystemExit from the user's file too
        if isinstance(e, KeyboardInterrupt):
            raise
        raise CheckFileError(
            f"{path}: your file raised {type(e).__name__} while being imported:\n"
            + _user_traceback(e, path)
        ) from None
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:  # pragma: no cover
            pass
    return module


def _n_args(fn, name: str, path: Path) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins: assume the documented one-argument form
        return 1
    req = [p for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    has_var = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    if len(req) in (1, 3) or has_var:
        return 3 if len(req) == 3 else 1
    raise CheckFileError(
        f"{path}: `{name}` must take (params) or (params, X, y), "
        f"it takes {len(req)} required argument(s)"
    )


def run_check_file(path: str | os.PathLike) -> FileCheck:
    """Load a user's file and run :func:`~gradwise.check_gradient` and/or
    :func:`~gradwise.check_step` on what it defines (module docstring).

    Parameters
    ----------
    path : str or path-like
        The ``.py`` file.

    Returns
    -------
    FileCheck
        ``findings`` of both checks, ``gradient`` and ``step`` results.

    Raises
    ------
    CheckFileError
        The file is missing or not Python, a required name is missing, or the
        user's code raised (the message ends with the user's own traceback lines).
    """
    p = Path(path)
    if p.is_dir():
        raise CheckFileError(f"{p}: is a directory; give a .py file")
    if not p.is_file():
        raise CheckFileError(f"{p}: no such file")
    captured = io.StringIO()
    with _sandbox(captured):
        mod = _load(p.resolve())
    ns: dict[str, Any] = vars(mod)
    missing = [n for n in ("params", "loss") if n not in ns]
    if not ("grad" in ns or "step" in ns):
        missing.append("grad or step")
    if missing:
        raise CheckFileError(
            f"{p}: missing {', '.join(missing)}; define params, loss and grad and/or step "
            "(see `gradwise check --template`)"
        )
    for name in ("loss", "grad", "step"):
        if name in ns and not callable(ns[name]):
            raise CheckFileError(
                f"{p}: `{name}` is {type(ns[name]).__name__} {ns[name]!r:.40}, not a function; "
                f"define `def {name}(params{', X, y' if name == 'step' else ''}): ...`"
            )
    loss = ns["loss"]
    needs_data = "step" in ns or any(
        callable(ns.get(n)) and _n_args(ns[n], n, p) == 3 for n in ("loss", "grad"))
    if needs_data and not ("X" in ns and "y" in ns):
        raise CheckFileError(f"{p}: `step` (or a loss/grad taking X, y) needs X and y defined "
                             "in the file")

    def bind(fn, name):
        if _n_args(fn, name, p) == 3:
            X, y = ns["X"], ns["y"]
            return lambda params: fn(params, X, y)
        return fn

    lr = ns.get("lr")
    if lr is not None and not (isinstance(lr, numbers.Real) and not isinstance(lr, bool)
                               and 0 < lr < float("inf")):
        raise CheckFileError(f"{p}: lr = {lr!r}; it must be a positive number (the step size "
                             "your step uses), or leave it out to have it estimated")
    gradient = step = None
    try:
        with _sandbox(captured):
            gradient, step = _run_checks(ns, p, loss, bind, needs_data, lr)
    except CheckFileError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit from the user's functions too
        if _raises_in_user_code(e, p):
            raise CheckFileError(
                f"{p}: your code raised {type(e).__name__} during the check:\n"
                + _user_traceback(e, p)
            ) from None
        if isinstance(e, (ValueError, TypeError, FloatingPointError)):
            raise CheckFileError(f"{p}: {e}") from None
        raise
    findings = (gradient.findings if gradient else []) + (step.findings if step else [])
    if step is not None and step.ok and lr is not None:
        with _sandbox(captured):
            findings += _stability(bind(loss, "loss"), ns["params"], float(lr))
    printed = captured.getvalue().splitlines()
    notes = [f"your file printed {len(printed)} line(s) while being checked (not shown)"] \
        if printed else []
    return FileCheck(findings=list(findings), file=str(p), gradient=gradient, step=step,
                     notes=notes)


def _stability(loss, params, lr: float) -> list:
    """lr.too_high when the file's step size is above 2/λmax of its loss over all
    rows: right update code can still diverge (P1). The full-batch limit is the
    loosest one (a per-sample step is limited further), so this never cries wolf.
    Empty when the curvature cannot be computed."""
    from gradwise.diagnostics.curvature import stable_lr

    try:
        res = stable_lr(loss, params, lr=lr)
    except (ValueError, TypeError, FloatingPointError, ArithmeticError):
        return []
    return list(res.findings)


def _run_checks(ns, p, loss, bind, needs_data, lr):
    from gradwise.diagnostics.check import check_gradient
    from gradwise.diagnostics.step import check_step

    gradient = step = None
    if "grad" in ns:
        dims = {"samples": len(ns["y"])} if needs_data else None
        gradient = check_gradient(bind(loss, "loss"), bind(ns["grad"], "grad"), ns["params"],
                                  dims=dims)
    if "step" in ns:
        if _n_args(loss, "loss", p) != 3:
            raise CheckFileError(f"{p}: for `step`, loss must take (params, X, y)")
        step = check_step(ns["step"], loss, ns["params"], ns["X"], ns["y"],
                          lr=None if lr is None else float(lr))
    return gradient, step
