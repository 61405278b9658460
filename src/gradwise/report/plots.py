"""Plots of a training run: ``loss.png`` and ``gradients.png`` (matplotlib, Agg).

matplotlib is imported inside the functions so that importing
:mod:`gradwise.report` (and ``gradwise --help``) stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_loss", "plot_gradients"]

#: Curves with more points than this are thinned by a constant stride before plotting.
MAX_POINTS = 4000
_SIZE = (8.0, 4.5)  # inches; at 120 dpi a 960x540 image
_DPI = 120
#: Curves spanning more decades than this (a diverged run reaches ~1e300, where
#: matplotlib's log-axis tick maths overflows) are drawn as log10 values on a
#: linear axis labelled 10^k.
_MAX_DECADES = 60


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _thin(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = 1..n and y, keeping at most ``MAX_POINTS`` points (and always the last)."""
    n = len(y)
    idx = np.arange(n)
    if n > MAX_POINTS:
        idx = np.unique(np.r_[idx[:: int(np.ceil(n / MAX_POINTS))], n - 1])
    return idx + 1, y[idx]


def _positive(y: np.ndarray) -> np.ndarray:
    """Values for a log axis: non-finite and non-positive values become NaN (gaps)."""
    y = np.asarray(y, dtype=float).copy()
    y[~np.isfinite(y) | (y <= 0)] = np.nan
    return y


class _LogY:
    """y-values for a log-scale plot: a matplotlib log axis normally, log10 values
    on a linear axis with 10^k labels when the values span more than
    ``_MAX_DECADES`` decades."""

    def __init__(self, *curves: np.ndarray):
        vals = np.concatenate([np.ravel(c) for c in curves]) if curves else np.array([])
        vals = vals[np.isfinite(vals) & (vals > 0)]
        self.lo, self.hi = (vals.min(), vals.max()) if len(vals) else (1.0, 10.0)
        self.exponents = np.log10(self.hi) - np.log10(self.lo) > _MAX_DECADES

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y = _positive(y)
        return np.log10(y) if self.exponents else y

    def setup(self, ax) -> None:
        if not self.exponents:
            ax.set_yscale("log")
            ax.set_ylim(self.lo / 1.5, self.hi * 1.5)
            return
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{v:.0f}}}$"))


def plot_loss(
    path: str | Path,
    loss_curve: Sequence[float],
    *,
    optimum: float | None = None,
    optimum_label: str = "optimum",
    extra: Mapping[str, Sequence[float]] | None = None,
    note: str | None = None,
    title: str = "Training loss",
    ylabel: str = "loss",
) -> Path:
    """Write the loss per epoch on a log scale, with the optimum as a horizontal line.

    Parameters
    ----------
    path : str or Path
        PNG file to write.
    loss_curve : sequence of float, length n_epochs
        Training loss after each epoch. NaN/inf (a diverged run) leave a gap and
        the last finite epoch is marked.
    optimum : float, optional
        The reference optimum (e.g. the least-squares MSE), drawn as a dashed line.
    optimum_label : str
        Legend text for the optimum line.
    extra : mapping of str to sequence of float, optional
        Further curves, e.g. the verified fix's run, keyed by their legend text.
    note : str, optional
        A line of text in the top-left corner (e.g. why training stopped).
    title, ylabel : str
        Axis annotations.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=_SIZE, dpi=_DPI)
    try:
        y = np.asarray(loss_curve, dtype=float)
        x, yy = _thin(y)
        curves = {label: _thin(np.asarray(c, dtype=float)) for label, c in (extra or {}).items()}
        has_opt = optimum is not None and np.isfinite(optimum) and optimum > 0
        ly = _LogY(y, *(c[1] for c in curves.values()), *([np.array([optimum])] if has_opt else []))
        ax.plot(x, ly(yy), color="tab:blue", lw=2, label="this run")
        finite = np.flatnonzero(np.isfinite(y))
        if len(finite) and len(finite) < len(y):
            k = finite[-1]
            ax.plot([k + 1], ly(y[k : k + 1]), "x", color="tab:red", ms=10, mew=2,
                    label=f"last finite loss (epoch {k + 1})")
        for i, (label, (xe, ye)) in enumerate(curves.items()):
            ax.plot(xe, ly(ye), lw=1.6, color=f"C{i + 2}", label=label)
        if has_opt:
            ax.axhline(ly(np.array([optimum]))[0], color="black", ls="--", lw=1.2, label=optimum_label)
        ly.setup(ax)
        if len(finite):
            k = finite[-1]
            ax.annotate(f"epoch {k + 1}: {y[k]:.6g}", xy=(k + 1, ly(y[k : k + 1])[0]), xytext=(-10, 12),
                        textcoords="offset points", ha="right", fontsize=9, color="tab:blue")
        if note:
            ax.text(0.01, 0.98, note, transform=ax.transAxes, va="top", fontsize=9, color="tab:red")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{ylabel} (log scale)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="best", fontsize=9)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def plot_gradients(
    path: str | Path,
    grad_norms: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "step",
    title: str = "Gradient norm per parameter block",
) -> Path:
    """Write the gradient norm of each parameter block per step on a log scale.

    Parameters
    ----------
    path : str or Path
        PNG file to write.
    grad_norms : mapping of str to sequence of float
        Block name (``"W1"``, ``"coef"``) to its gradient L2 norm at each step.
        Zero or non-finite norms leave gaps on the log axis.
    xlabel, title : str
        Axis annotations.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=_SIZE, dpi=_DPI)
    try:
        thinned = {name: _thin(np.asarray(norms, dtype=float)) for name, norms in grad_norms.items()}
        ly = _LogY(*(c[1] for c in thinned.values()))
        for i, (name, (x, y)) in enumerate(thinned.items()):
            ax.plot(x, ly(y), lw=1.6, color=f"C{i}", label=name)
        ly.setup(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gradient L2 norm (log scale)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.25)
        if grad_norms:
            ax.legend(loc="best", fontsize=9, ncol=1 + len(grad_norms) // 6)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
