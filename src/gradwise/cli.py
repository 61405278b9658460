"""The ``gradwise`` command line: ``fit``, ``explain``, ``check``, ``datasets``, ``demo``.

Exit codes (DESIGN.md): 0 ran and found nothing wrong, 1 ran and found faults,
2 bad usage or bad input — one clear line on stderr and nothing written;
3 an internal error of gradwise itself (e.g. the diagnosis failed), nothing written.

Start-up is light: this module imports only typer and rich at import time;
NumPy-heavy layers, pandas, scikit-learn and matplotlib are imported inside
the commands that need them, so ``gradwise --help`` stays fast.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="gradwise",
    help="Gradient descent that works, and tells you why it doesn't.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _fail(message: str, one_line: bool = True) -> typer.Exit:
    """Print ``gradwise: error: <message>`` on stderr (folded to one line unless
    ``one_line`` is false, e.g. to keep a user's traceback); return Exit(2) to raise."""
    text = " ".join(str(message).split()) if one_line else str(message).rstrip()
    typer.echo(f"gradwise: error: {text}", err=True)
    return typer.Exit(2)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _version_callback(value: bool) -> None:
    if value:
        from gradwise import __version__

        typer.echo(f"gradwise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", metavar="", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Gradient descent that works, and tells you why it doesn't."""


class Activation(StrEnum):
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"


class Init(StrEnum):
    he_uniform = "he_uniform"
    he_normal = "he_normal"
    glorot_uniform = "glorot_uniform"
    glorot_normal = "glorot_normal"


class Loss(StrEnum):
    mse = "mse"
    bce = "bce"
    ce = "ce"


class Optimizer(StrEnum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


@app.command()
def fit(
    data: Annotated[
        str | None,
        typer.Argument(
            help="CSV file (header line first) or a bundled dataset name (see `gradwise datasets`). "
            "Without it: scikit-learn's diabetes data, BMI → disease progression, raw units "
            "(scenario S2).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column. Default: the last column.")] = None,
    features: Annotated[
        str | None, typer.Option(help="Feature columns, comma-separated. Default: all but the target.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="linear | poly:N | logistic | mlp:H1[,H2...]. Default: logistic for a 0/1 "
            "(or text-label) target, linear otherwise."
        ),
    ] = None,
    activation: Annotated[Activation | None, typer.Option(help="Hidden-layer activation (mlp).")] = None,
    init: Annotated[
        Init | None,
        typer.Option(help="Hidden-layer weight initialisation (mlp). Default: he_uniform for relu, "
                     "glorot_uniform for sigmoid/tanh."),
    ] = None,
    loss: Annotated[Loss | None, typer.Option(help="mse (regression), bce (binary), ce (classes).")] = None,
    optimizer: Annotated[Optimizer | None, typer.Option(help="Update rule. Default: sgd (plain gradient descent).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate. Default: the estimator's.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs. Default: the estimator's.")] = None,
    batch_size: Annotated[str | None, typer.Option(help="Mini-batch size N or 'full'. Default: full batch.")] = None,
    standardize: Annotated[bool, typer.Option("--standardize", metavar="", help="Standardize the features.")] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (initialisation, shuffling). Default: 0.")] = None,
    patience: Annotated[
        str | None,
        typer.Option(
            metavar="N|none",
            help="Early stopping: stop once the loss has not improved for N epochs; 'none' trains "
            "every epoch. Default: the estimator's (10 for mlp, none for linear models).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder. Default: ./gradwise-out/<timestamp>.")
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", metavar="", help="Print the JSON report to stdout instead of the text report.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Write into an existing output folder.")] = False,
    dropna: Annotated[bool, typer.Option("--dropna", metavar="", help="Drop rows with missing cells.")] = False,
) -> None:
    """Train on DATA, check the gradient, diagnose the run, write a report and plots.

    Writes report.json, loss.png and gradients.png to --out.

    Exit 0: no faults found; 1: faults found; 2: bad input (nothing written).
    """
    from gradwise.report import fitjob

    options = fitjob.FitOptions(
        data=data,
        target=target,
        features=features,
        model=model,
        activation=activation.value if activation else None,
        loss=loss.value if loss else None,
        optimizer=optimizer.value if optimizer else None,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        standardize=standardize,
        seed=seed,
        out=out,
        force=force,
        dropna=dropna,
        init=init.value if init else None,
        patience=patience,
    )
    try:
        job = fitjob.prepare(options)
    except fitjob.BadInput as e:
        raise _fail(str(e)) from None
    if job.note:
        typer.echo(f"gradwise: note: {job.note}", err=True)
    try:
        report = fitjob.run(job, progress=not json_)
    except KeyboardInterrupt:
        written = "" if job.out_dir.exists() else "; nothing written"
        typer.echo(f"gradwise: interrupted{written}", err=True)
        raise typer.Exit(130) from None
    except OSError as e:  # the output folder could not be created or written
        raise _fail(f"cannot write the outputs to {job.out_dir}: {e.strerror or e}; choose another --out") from None
    except fitjob.InternalError as e:
        typer.echo(f"gradwise: internal error: {e} (a bug in gradwise; please report it)", err=True)
        raise typer.Exit(3) from None
    if json_:
        import json

        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        from gradwise.report.terminal import render_fit_report

        render_fit_report(report, _console())
    raise typer.Exit(report["exit_code"])


@app.command()
def explain(
    expression: Annotated[str, typer.Argument(help='Statements, e.g. "q = x + y; f = q * z".')],
    values: Annotated[str, typer.Option(help="Input values, e.g. x=4,y=-3,z=5.")] = "",
) -> None:
    """Show the chain rule step by step for a small expression.

    The graph, each local derivative and the gradient flowing back from the
    last statement to every input.

    Only numbers, names, + - * / ** and a whitelist of functions are accepted
    (parsed with Python's ast; nothing is evaluated as Python code).
    """
    import numpy as np

    import gradwise
    from gradwise.report.expression import ExpressionError, evaluate, parse_values

    try:
        output, _ = evaluate(expression, parse_values(values))
        with np.errstate(all="ignore"):  # inf and nan are shown in the trace itself
            trace = gradwise.explain(output)
    except ExpressionError as e:
        raise _fail(str(e)) from None
    except RecursionError:
        raise _fail("the expression is nested too deeply; split it into several assignments") from None
    typer.echo(trace)


@app.command()
def check(
    file: Annotated[
        Path | None, typer.Argument(help="Python file defining params, loss, and grad and/or step.")
    ] = None,
    template: Annotated[
        bool, typer.Option("--template", metavar="", help="Print a commented template file to fill in.")
    ] = False,
) -> None:
    """Check your own gradient and update code against finite differences and replayed updates.

    Exit 0: clean; 1: faults found; 2: bad usage (file missing, names missing, your code raising).
    """
    from gradwise.diagnostics import checkfile

    if template:
        typer.echo(checkfile.TEMPLATE)
        raise typer.Exit(0)
    if file is None:
        raise _fail("give a FILE.py to check, or --template to print a file to start from")
    try:
        result = checkfile.run_check_file(file)
    except checkfile.CheckFileError as e:  # may end with the user's own traceback lines
        raise _fail(str(e), one_line=False) from None
    from rich.text import Text

    from gradwise.report.terminal import render_findings

    console = _console()
    console.print(Text.assemble(("gradwise check", "bold"), f"  {file}"))
    for part in (result.get("gradient"), result.get("step")):
        if part is not None:
            console.print(Text("\n".join(part._summary_lines()), style="dim"))
    render_findings(result.findings, console, empty="no findings: the gradient and update code look right")
    raise typer.Exit(checkfile.exit_code(result))


@app.command()
def datasets() -> None:
    """List the bundled datasets (usable as DATA in `gradwise fit`)."""
    from rich.table import Table

    from gradwise.data import list_datasets, load_dataset

    table = Table("name", "task", "rows", "features", "target", box=None)
    for name in list_datasets():
        d = load_dataset(name)
        table.add_row(name, d.task, str(d.n_samples), str(d.n_features), d.target_name)
    _console().print(table)


@app.command()
def demo(
    scenarios: Annotated[
        list[str] | None, typer.Argument(help="Scenario ids S1..S6 (default: all).", show_default=False)
    ] = None,
) -> None:
    """Run the scenarios S1-S6 with their faulty settings and show what gradwise finds.

    Exit 0 when every scenario's expected finding was found, 1 otherwise.
    """
    from gradwise.report import demo as demo_mod

    try:
        ids = demo_mod.select(scenarios or [])
    except ValueError as e:
        raise _fail(str(e)) from None
    console = _console()
    all_found = True
    for sid in ids:
        outcome = demo_mod.run_scenario(sid)
        demo_mod.render(outcome, console)
        all_found &= outcome.found
    raise typer.Exit(0 if all_found else 1)


def main() -> None:
    """Console-script entry point (``gradwise``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
