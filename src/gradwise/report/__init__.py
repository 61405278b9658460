"""gradwise.report — what the command line shows and writes.

- :mod:`~gradwise.report.fitjob`: the main job of ``gradwise fit`` (validate,
  load, train with a gradient check at the start, diagnose, write).
- :mod:`~gradwise.report.jsonreport`: the JSON report and its JSON Schema
  (``fit-report.schema.json``, :func:`~gradwise.report.jsonreport.load_schema`).
- :mod:`~gradwise.report.terminal`: rich rendering of findings and of the fit report.
- :mod:`~gradwise.report.plots`: ``loss.png`` and ``gradients.png`` (matplotlib, Agg).
- :mod:`~gradwise.report.expression`: the safe ``ast`` evaluator of ``gradwise explain``.
- :mod:`~gradwise.report.demo`: the scenarios of SCENARIOS.md for ``gradwise demo``.

Nothing is imported here, so ``import gradwise.cli`` (and ``gradwise --help``)
stays light; import the submodule you need.
"""
