"""Terminal rendering with rich: the fit report and lists of findings.

Everything here renders the JSON-safe dicts (``Finding.to_dict()`` and the fit
report of :mod:`gradwise.report.jsonreport`), so the text report and
``report.json`` always show the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["fmt", "render_findings", "render_fit_report", "finding_panel"]

_STYLE = {"fault": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def fmt(value: Any) -> str:
    """Format a JSON-safe value compactly: 6 significant digits for numbers,
    short lists inline, long lists by their length."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "—"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if len(value) > 8 or any(isinstance(v, (list, dict)) for v in value):
            return f"[{len(value)} entries]"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def _to_dict(f: Any) -> dict:
    return f.to_dict() if hasattr(f, "to_dict") else dict(f)


def finding_panel(finding: Any) -> Panel:
    """One finding as a rich Panel: message, evidence, fix and its verification.

    Parameters
    ----------
    finding : Finding or dict
        A :class:`gradwise.Finding` or its ``to_dict()``.
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
            t.add_row(str(k), fmt(v))
        parts.append(t)
    if f.get("fix"):
        parts.append(Text.assemble(("fix: ", "bold green"), fmt(f["fix"])))
    verified = f.get("verified")
    if verified:
        summary = verified.get("summary") if isinstance(verified, dict) else None
        parts.append(Text.assemble(("verified: ", "bold green"), summary or fmt(verified)))
    return Panel(Group(*parts), title=head, title_align="left", border_style=_STYLE.get(sev, "white"))


def render_findings(findings: Iterable[Any], console: Console, *, empty: str = "no findings") -> None:
    """Print each finding as a panel, or ``empty`` when there is none."""
    findings = list(findings)
    if not findings:
        console.print(Text(empty, style="bold green"))
    for f in findings:
        console.print(finding_panel(f))


def _kv_table(title: str, rows: Mapping[str, Any]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    for k, v in rows.items():
        t.add_row(str(k), v if isinstance(v, Text) else fmt(v))
    return t


def render_fit_report(report: dict, console: Console) -> None:
    """Print the fit report: data and model, fitted parameters and metrics,
    the gradient check, the findings and the files written.

    Parameters
    ----------
    report : dict
        A report from :func:`gradwise.report.jsonreport.fit_report`.
    console : rich.console.Console
        Where to print.
    """
    d, m, tr = report["data"], report["model"], report["training"]
    p = m["params"]
    console.print(Text.assemble(("gradwise fit", "bold"), f"  {d['source']}"))
    console.print(
        _kv_table(
            "Data and model",
            {
                "rows": d["n_samples"],
                "features": ", ".join(d["features"]) if len(d["features"]) <= 8 else f"{d['n_features']} columns",
                "target": f"{d['target']} ({d['task']})",
                "model": f"{m['spec']} → {m['estimator']}, {m['n_parameters']} parameters",
                "training": ", ".join(
                    f"{k} {fmt(p[k])}" for k in ("optimizer", "lr", "epochs", "batch_size", "standardize") if k in p
                ),
            },
        )
    )
    rows: dict[str, Any] = {}
    for block in report["parameters"]:
        rows[block["name"]] = block["values"] if block["values"] is not None else f"shape {tuple(block['shape'])}"
    opt = report["optimum"]
    if opt and opt.get("parameters") is not None:
        rows["optimum"] = opt["parameters"]
    console.print(_kv_table("Fitted parameters", rows))
    metrics = dict(report["metrics"])
    metrics["epochs run"] = tr["epochs_run"]
    metrics["time"] = f"{tr['time_s']:.2f} s"
    if opt:
        metrics["optimum loss"] = opt["loss"]
        for k in ("loss_gap", "distance"):
            if opt.get(k) is not None:
                metrics[f"{k.replace('_', ' ')} to optimum"] = opt[k]
    console.print(_kv_table("Metrics (training set)", metrics))
    gc = report["gradient_check"]
    if gc is not None:
        status = Text("ok", style="green") if gc["ok"] else Text("FAILED", style="bold red")
        if gc.get("max_rel_error") is not None:
            status.append(f"  (max relative error {fmt(gc['max_rel_error'])})")
        console.print(Text.assemble(("Gradient check at the start: ", "bold"), status))
    console.print(Text("Findings", style="bold"))
    render_findings(report["findings"], console, empty="no findings: the run converged and nothing looks wrong")
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
