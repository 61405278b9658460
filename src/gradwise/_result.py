"""The one Finding type and the one result base class.

Every result gradwise returns (``GradientCheck``, ``StepCheck``, ``Diagnosis``,
``TrainResult``) subclasses :class:`Result`, which behaves like scipy's
``OptimizeResult``: a dict with attribute access, a readable ``str``, ``.ok``,
``.findings`` and a JSON-safe ``.to_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Finding", "Result", "SEVERITIES", "jsonable"]

#: Allowed severities, most serious first. Only "fault" makes ``Result.ok`` false.
SEVERITIES = ("fault", "warning", "info")


def jsonable(x: Any) -> Any:
    """Convert ``x`` to plain JSON types: arrays to lists, NumPy scalars to Python
    numbers, non-finite floats to the strings ``"nan"``, ``"inf"``, ``"-inf"``
    (JSON has no literal for them), tuples to lists, objects with ``to_dict``
    through it."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()] if x.ndim else jsonable(x.item())
    if hasattr(x, "to_dict") and callable(x.to_dict):
        return jsonable(x.to_dict())
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [jsonable(v) for v in x]
    if hasattr(x, "__array__"):
        return jsonable(np.asarray(x))
    return str(x)


@dataclass
class Finding:
    """One thing gradwise found.

    Attributes
    ----------
    code : str
        Stable code from the fault catalogue (FAULTS.md), e.g. ``"gradient.scale"``.
    severity : {"fault", "warning", "info"}
        ``"info"`` findings (a ReLU kink, the SGD noise floor) are not faults.
    message : str
        One or two sentences in the field's terms, with the key numbers.
    evidence : dict
        The numbers behind the message (JSON-safe after :func:`jsonable`).
    fix : dict or None
        The remedy as data, e.g. ``{"lr": 0.001}`` or ``{"standardize": True}``.
    location : str or None
        Where, in the user's terms: ``"W[1, 2]"``, ``"params['b']"``, ``"layer 2"``.
    verified : dict or None
        Outcome of re-running with ``fix`` applied, when gradwise checked it.
    """

    code: str
    severity: str
    message: str
    evidence: dict = field(default_factory=dict)
    fix: dict | None = None
    location: str | None = None
    verified: dict | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        """JSON-safe dict of all fields."""
        return jsonable(
            {
                "code": self.code,
                "severity": self.severity,
                "message": self.message,
                "evidence": self.evidence,
                "fix": self.fix,
                "location": self.location,
                "verified": self.verified,
            }
        )

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        s = f"[{self.severity}] {self.code}{where}: {self.message}"
        if self.fix:
            s += f"\n    fix: {self.fix}"
        if self.verified:
            s += f"\n    verified: {self.verified.get('summary', self.verified)}"
        return s


class Result(dict):
    """Base result: a dict with attribute access, like ``scipy.optimize.OptimizeResult``.

    Subclasses set a ``title`` and may override :meth:`_summary_lines`.
    Always present: ``findings`` (list of :class:`Finding`). ``ok`` is true when
    no finding has severity ``"fault"``.
    """

    title = "Result"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setdefault("findings", [])

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]

    def __dir__(self):
        return list(self.keys()) + ["ok", "to_dict"]

    # pickling: dict subclass with __getattr__ needs explicit state handling
    def __getstate__(self):
        return dict(self)

    def __setstate__(self, state):
        self.update(state)

    def __reduce__(self):
        return (self.__class__, (dict(self),))

    @property
    def ok(self) -> bool:
        """True when no finding is a fault (warnings and info do not count)."""
        return not any(f.severity == "fault" for f in self["findings"])

    @property
    def faults(self) -> list[Finding]:
        return [f for f in self["findings"] if f.severity == "fault"]

    def codes(self) -> list[str]:
        """The finding codes, in order."""
        return [f.code for f in self["findings"]]

    def to_dict(self) -> dict:
        """JSON-safe dict (arrays become lists, NaN/inf become strings)."""
        d = {k: v for k, v in self.items() if not k.startswith("_")}
        d["ok"] = self.ok
        return jsonable(d)

    def _summary_lines(self) -> list[str]:
        return []

    def __str__(self) -> str:
        lines = [f"{self.title}: {'ok' if self.ok else 'FAULTS FOUND'}"]
        lines += ["  " + s for s in self._summary_lines()]
        fs = self["findings"]
        if fs:
            lines.append(f"  findings ({len(fs)}):")
            for f in fs:
                lines += ["    " + ln for ln in str(f).splitlines()]
        else:
            lines.append("  no findings")
        return "\n".join(lines)

    def __repr__(self) -> str:
        keys = ", ".join(k for k in self.keys() if not k.startswith("_"))
        return f"<{type(self).__name__} ok={self.ok} findings={self.codes()} keys=[{keys}]>"
