"""The JSON report of ``gradwise fit`` and its JSON Schema.

The schema lives beside this module as ``fit-report.schema.json`` (package
data) and is the contract for ``report.json`` and ``gradwise fit --json``.
"""

from __future__ import annotations

import datetime as _dt
import json
from functools import cache
from importlib import resources
from typing import Any

from gradwise._result import Finding, jsonable

__all__ = ["REPORT_VERSION", "SCHEMA_FILE", "load_schema", "fit_report", "parameter_blocks"]

#: Version of the report layout; bumped when a field changes meaning.
REPORT_VERSION = 1
#: File name of the JSON Schema inside the ``gradwise.report`` package.
SCHEMA_FILE = "fit-report.schema.json"
#: Blocks with more entries than this are listed with their shape only.
MAX_LISTED_ENTRIES = 100


@cache
def load_schema() -> dict:
    """The JSON Schema (draft 2020-12) of the fit report.

    Returns
    -------
    dict
        The parsed schema; validate with ``jsonschema.validate(report, load_schema())``.
    """
    text = resources.files("gradwise.report").joinpath(SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


def parameter_blocks(blocks: dict[str, Any]) -> list[dict]:
    """Describe fitted parameter blocks for the report.

    Parameters
    ----------
    blocks : dict of str to array_like
        Block name (``"coef[bmi]"``, ``"W1"``) to its value.

    Returns
    -------
    list of dict
        ``{"name", "shape", "values"}`` per block; ``values`` is ``None`` for
        blocks with more than ``MAX_LISTED_ENTRIES`` entries.
    """
    import numpy as np

    out = []
    for name, value in blocks.items():
        arr = np.asarray(value, dtype=float)
        values = arr if arr.size <= MAX_LISTED_ENTRIES else None
        out.append({"name": name, "shape": list(arr.shape), "values": jsonable(values)})
    return out


def fit_report(
    *,
    data: dict,
    model: dict,
    training: dict,
    metrics: dict,
    parameters: list[dict],
    optimum: dict | None,
    gradient_check: dict | None,
    diagnosis: Any,
    files: dict,
    version: str,
    created: _dt.datetime | None = None,
) -> dict:
    """Assemble the fit report (a JSON-safe dict valid against :func:`load_schema`).

    Parameters
    ----------
    data, model, training, metrics : dict
        Sections as described in the schema.
    parameters : list of dict
        From :func:`parameter_blocks`.
    optimum : dict or None
        Reference optimum (``loss`` and, where known, ``parameters``, ``distance``,
        ``loss_gap``).
    gradient_check : dict or None
        ``{"ok", "max_abs_error", "n_loss_evals", "method", "findings"}`` with :class:`~gradwise.Finding` objects.
    diagnosis : Result or None
        The run's :class:`~gradwise.Diagnosis`; its findings follow the
        gradient check's in ``findings``.
    files : dict
        File names written (``report``, ``loss_plot``, ``gradients_plot``, ``out_dir``).
    version : str
        gradwise version.
    created : datetime, optional
        Time of the run (default: now, UTC).

    Returns
    -------
    dict
        The report; ``ok`` is false and ``exit_code`` 1 when any finding is a fault.
    """
    findings: list[Finding] = []
    if gradient_check is not None:
        findings += list(gradient_check.get("findings", []))
    if diagnosis is not None:
        findings += list(diagnosis["findings"])
    ok = not any(f.severity == "fault" for f in findings)
    created = created or _dt.datetime.now(_dt.UTC)
    return jsonable(
        {
            "report_version": REPORT_VERSION,
            "gradwise_version": version,
            "command": "fit",
            "created": created.isoformat(timespec="seconds"),
            "ok": ok,
            "exit_code": 0 if ok else 1,
            "data": data,
            "model": model,
            "training": training,
            "metrics": metrics,
            "parameters": parameters,
            "optimum": optimum,
            "gradient_check": gradient_check,
            "diagnosis": diagnosis.to_dict() if diagnosis is not None else None,
            "findings": findings,
            "files": files,
        }
    )
