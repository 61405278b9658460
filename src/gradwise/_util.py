"""Two small helpers shared by the diagnostics and the report: the ndarray behind a
tensor, and the one number format of messages and tables."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_array", "fmt_number"]


def to_array(x: Any, what: str = "value") -> np.ndarray:
    """The ndarray behind an array, a gradwise tensor or a torch tensor.

    A gradwise Tensor gives its ``.data`` (no copy, also when it requires grad);
    a torch tensor ``x.detach().cpu().numpy()``; anything else ``np.asarray(x)``.

    Parameters
    ----------
    x : array_like, gradwise.Tensor or torch.Tensor
    what : str, default "value"
        What ``x`` is, for the error message.

    Returns
    -------
    ndarray
        Not a copy where one can be avoided; the dtype is kept.

    Raises
    ------
    TypeError
        ``x`` cannot be converted (the message names ``what``).
    """
    if isinstance(x, np.ndarray):
        return x
    data = getattr(x, "data", None)
    if isinstance(data, np.ndarray):
        return data
    if callable(getattr(x, "numpy", None)):
        if callable(getattr(x, "detach", None)):  # torch tensors that require grad
            x = x.detach()
        if callable(getattr(x, "cpu", None)):
            x = x.cpu()
        x = x.numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # noqa: BLE001 - any conversion failure is the user's object
        raise TypeError(f"{what} is not an array ({type(x).__name__}): {e}") from e


def fmt_number(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits (``%g``): 4 in finding messages and
    fixes (``lr 0.008839``), 6 in the fit report's tables."""
    return f"{x:.{digits}g}"
