"""Terminal rendering with rich: the fit report and lists of findings.

Everything here renders the JSON-safe dicts (``Finding.to_dict()`` and the fit
report of :mod:`gradwise.report.jsonreport`), so the text report and
``report.json`` always show the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gradwise._tree import entry_name
from gradwise._util import fmt_number

__all__ = ["fmt", "fit_options", "missing_options", "render_findings", "render_fit_report", "finding_panel"]

_STYLE = {"fault": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def fmt(value: Any) -> str:
    """Format a JSON-safe value compactly: 6 significant digits for numbers,
    short lists inline, long lists by their length."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "—"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return fmt_number(value, 6)
    if isinstance(value, list):
        flat = _flat_numbers(value)
        if flat is not None and len(flat) <= 8:
            return "[" + ", ".join(fmt(v) for v in flat) + "]"
        if len(value) > 8 or any(isinstance(v, (list, dict)) for v in value):
            return f"[{len(flat) if flat is not None else len(value)} entries]"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def _flat_numbers(value: list) -> list | None:
    """The numbers of a (nested) list in order, or None if it holds anything else."""
    out: list = []
    for v in value:
        if isinstance(v, list):
            sub = _flat_numbers(v)
            if sub is None:
                return None
            out += sub
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(v)
        else:
            return None
    return out


def _to_dict(f: Any) -> dict:
    return f.to_dict() if hasattr(f, "to_dict") else dict(f)


#: fix keys that map one-to-one to `gradwise fit` options
_FIT_OPTIONS = {"lr": "--lr", "epochs": "--epochs", "optimizer": "--optimizer", "batch_size": "--batch-size",
                "activation": "--activation", "init": "--init", "model": "--model"}
#: the values those options accept, where they are a fixed set (else anything)
_FIT_CHOICES = {
    "init": {"he_uniform", "he_normal", "glorot_uniform", "glorot_normal"},
    "activation": {"relu", "tanh", "sigmoid"},
    "optimizer": {"sgd", "momentum", "adam"},
}


def _fit_option(key: str, value: Any, features: list[str] | None) -> str | None:
    """One part of a fix as `gradwise fit` options, or None if it has none."""
    if key == "standardize" and value is True:
        return "--standardize"
    if key == "drop_columns" and features and isinstance(value, list):
        keep = [f for j, f in enumerate(features) if j not in set(value)]
        return f"--features {','.join(keep)}" if keep else None
    if key in _FIT_OPTIONS and value is not None and value in _FIT_CHOICES.get(key, {value}):
        return f"{_FIT_OPTIONS[key]} {fmt(value) if isinstance(value, float) else value}"
    return None


def fit_options(fix: dict | None, features: list[str] | None = None) -> str | None:
    """The `gradwise fit` options that apply a whole fix, e.g. ``--standardize --lr 0.9``;
    None when some part of the fix has no option (see :func:`missing_options`).

    Parameters
    ----------
    fix : dict or None
    features : list of str, optional
        The run's feature columns: a ``drop_columns`` fix becomes ``--features``
        with the others.
    """
    if not fix:
        return None
    parts = [_fit_option(k, v, features) for k, v in fix.items()]
    return None if any(p is None for p in parts) else " ".join(parts)


def missing_options(fix: dict | None, features: list[str] | None = None) -> list[str]:
    """The parts of a fix (``key=value``) that no `gradwise fit` option applies."""
    return [f"{k}={fmt(v)}" for k, v in (fix or {}).items() if _fit_option(k, v, features) is None]


def finding_panel(finding: Any, *, cli_fix: bool = False, features: list[str] | None = None) -> Panel:
    """One finding as a rich Panel: message, evidence, fix and its verification.

    Parameters
    ----------
    finding : Finding or dict
        A :class:`gradwise.Finding` or its ``to_dict()``.
    cli_fix : bool, default False
        Also show the fix as `gradwise fit` options (see :func:`fit_options`), or
        say which part of it has no option and is applied in Python.
    features : list of str, optional
        The run's feature columns (for a ``drop_columns`` fix).
    """
    f = _to_dict(finding)
    sev = f["severity"]
    head = Text.assemble((sev.upper(), _STYLE.get(sev, "bold")), " ", (f["code"], "bold"))
    if f.get("location"):
        head.append(f"  at {f['location']}", style="dim")
    parts: list[Any] = [Text(f["message"])]
    evidence = f.get("evidence") or {}
    if evidence:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="dim")
        t.add_column()
        for k, v in evidence.items():
            t.add_row(Text(str(k)), Text(fmt(v)))
        parts.append(t)
    if f.get("fix"):
        parts.append(Text.assemble(("fix: ", "bold green"), fmt(f["fix"])))
        options = fit_options(f["fix"], features) if cli_fix else None
        if options:
            parts.append(Text.assemble(("rerun with: ", "bold green"), options))
        elif cli_fix:
            missing = ", ".join(missing_options(f["fix"], features))
            parts.append(Text.assemble(("apply in Python: ", "bold green"),
                                       f"no `gradwise fit` option for {missing}; set it in your own "
                                       "training code (gradwise.train, or your loop)"))
    verified = f.get("verified")
    if verified:
        summary = verified.get("summary") if isinstance(verified, dict) else None
        parts.append(Text.assemble(("verified: ", "bold green"), summary or fmt(verified)))
    return Panel(Group(*parts), title=head, title_align="left", border_style=_STYLE.get(sev, "white"))


def render_findings(
    findings: Iterable[Any], console: Console, *, empty: str = "no findings", cli_fix: bool = False,
    features: list[str] | None = None,
) -> None:
    """Print each finding as a panel (see :func:`finding_panel`), or ``empty`` when there is none."""
    findings = list(findings)
    if not findings:
        console.print(Text(empty, style="bold green"))
    for f in findings:
        console.print(finding_panel(f, cli_fix=cli_fix, features=features))


#: metric keys of the report as the text report names them (one loss, one name)
_METRIC_NAMES = {
    "mse": "mse (mean per sample)",
    "log_loss": "log_loss (mean per sample, nats)",
}


def _kv_table(title: str, rows: Mapping[str, Any]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    for k, v in rows.items():
        t.add_row(Text(str(k)), v if isinstance(v, Text) else Text(fmt(v)))
    return t


def _training_text(p: dict) -> str:
    batch = "full batch" if p.get("batch_size") is None else f"batch size {p['batch_size']}"
    scale = "standardized features" if p.get("standardize") else "raw features"
    return f"{p.get('optimizer', 'sgd')}, lr {fmt(p.get('lr'))}, {p.get('epochs')} epochs, {batch}, {scale}"


def _parameter_rows(report: dict) -> Table:
    """Fitted parameters, one row per coefficient for the linear models (named by
    feature), one row per block otherwise; the optimum beside them where known."""
    terms = report["model"].get("terms") or []
    rows: list[tuple[str, Any]] = []
    for block in report["parameters"]:
        name, shape, values = block["name"], block["shape"], block["values"]
        if name == "coef" and terms and shape in ([len(terms)], [1, len(terms)]):
            rows += [(f"coef[{t}]", v) for t, v in zip(terms, _flat_numbers(values))]
        elif values is not None and len(_flat_numbers([values]) or []) == 1:
            rows.append((name, _flat_numbers([values])[0]))
        elif values is None:
            rows.append((name, f"shape {tuple(shape)}"))
        elif shape == []:
            rows.append((name, values))
        else:
            rows += [(entry_name(name, np.unravel_index(i, shape), shape), v)
                     for i, v in enumerate(_flat_numbers(values) or [])]
    opt = report["optimum"] or {}
    star = _flat_numbers(opt["parameters"]) if isinstance(opt.get("parameters"), list) else None
    with_opt = star is not None and len(star) == len(rows)
    t = Table(title="Fitted parameters", title_justify="left", box=None, padding=(0, 2),
              show_header=with_opt, header_style="dim")
    t.add_column("", style="dim")
    t.add_column("this run", justify="right")
    if with_opt:
        t.add_column("optimum", justify="right")
        for (name, v), s in zip(rows, star):
            t.add_row(Text(name), Text(fmt(v)), Text(fmt(s)))
    else:
        for name, v in rows[:20]:
            t.add_row(Text(name), Text(v if isinstance(v, str) else fmt(v)))
        if len(rows) > 20:
            t.add_row("…", Text(f"{len(rows) - 20} more in report.json"))
    return t


def render_fit_report(report: dict, console: Console) -> None:
    """Print the fit report: data and model, fitted parameters (beside the
    optimum where known) and metrics, the gradient check, the findings with
    evidence, fix and verification, and the files written.

    Parameters
    ----------
    report : dict
        A report from :func:`gradwise.report.jsonreport.fit_report`.
    console : rich.console.Console
        Where to print.
    """
    d, m, tr = report["data"], report["model"], report["training"]
    console.print(Text.assemble(("gradwise fit", "bold"), f"  {d['source']}"))
    feats = ", ".join(d["features"]) if len(d["features"]) <= 8 else f"{d['n_features']} columns"
    console.print(
        _kv_table(
            "Data and model",
            {
                "data": f"{d['n_samples']} rows; features: {feats}",
                "target": f"{d['target']} ({d['task']})",
                "model": f"{m['spec']} ({m['estimator']}, {m['n_parameters']} parameters)",
                "training": _training_text(m["params"]),
            },
        )
    )
    console.print(_parameter_rows(report))
    metrics: dict[str, Any] = {_METRIC_NAMES.get(k, k): v for k, v in report["metrics"].items()}
    opt = report["optimum"]
    if opt and opt.get("separable"):
        metrics["optimum"] = Text("none: the classes are linearly separable; the log-loss → 0 only "
                                  "as ‖w‖ → ∞", style="yellow")
    elif opt:
        metrics["optimum loss"] = opt["loss"]
        if opt.get("loss_gap") is not None:
            metrics["gap to optimum"] = opt["loss_gap"]
        if opt.get("distance") is not None:
            metrics["parameter distance"] = opt["distance"]
    metrics["epochs run"] = tr["epochs_run"]
    if tr.get("stop"):
        metrics["stopped"] = Text(tr["stop"], style="yellow" if tr.get("stopped_reason") != "max_epochs" else "")
    metrics["training time"] = f"{tr['time_s']:.2f} s"
    if tr.get("total_s") is not None:
        metrics["with check, diagnosis"] = f"{tr['total_s']:.2f} s"
    console.print(_kv_table("Metrics (training set)", metrics))
    gc = report["gradient_check"]
    if gc is not None:
        status = Text("ok", style="green") if gc["ok"] else Text("FAILED", style="bold red")
        if gc.get("max_abs_error") is not None:
            status.append(f" (largest absolute error {gc['max_abs_error']:.1e})")
        console.print(Text.assemble(("Gradient check at the start: ", "bold"), status))
    console.print(Text("Findings", style="bold"))
    render_findings(
        report["findings"], console, empty="no findings: the run converged and nothing looks wrong", cli_fix=True,
        features=None if str(m.get("spec", "")).startswith("poly") else d.get("features"),
    )
    n_faults = sum(f["severity"] == "fault" for f in report["findings"])
    verdict = (
        Text(f"{n_faults} fault(s) found", style="bold red") if n_faults else Text("no faults", style="bold green")
    )
    verdict.append(f" — exit {report['exit_code']}", style="dim")
    console.print(verdict)
    files = report["files"]
    if files.get("out_dir"):
        console.print(
            Text(f"wrote {files['out_dir']}/{{{files['report']}, {files['loss_plot']}, {files['gradients_plot']}}}",
                 style="dim")
        )
