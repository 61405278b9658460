"""loss.png and gradients.png are valid PNG images of sensible size."""

import struct

import numpy as np

from gradwise.report.plots import MAX_POINTS, plot_gradients, plot_loss


def png_size(path):
    """(width, height) from the PNG header; asserts the PNG signature and IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_loss_plot_with_optimum_and_divergence(tmp_path):
    curve = np.r_[np.geomspace(3e4, 4e3, 50), [np.inf, np.nan]]
    p = plot_loss(tmp_path / "loss.png", curve, optimum=3890.46, optimum_label="OLS", extra={"fix": curve[:40]})
    w, h = png_size(p)
    assert (w, h) == (960, 540)
    assert 10_000 < p.stat().st_size < 500_000


def test_gradient_plot_thins_long_runs(tmp_path):
    steps = MAX_POINTS * 3
    p = plot_gradients(tmp_path / "g.png", {"W1": np.geomspace(1, 1e-3, steps), "b1": np.zeros(steps)})
    assert png_size(p) == (960, 540)
    assert 10_000 < p.stat().st_size < 500_000


def test_diverged_run_up_to_1e303_still_plots(tmp_path):
    curve = np.geomspace(3e4, 3.4e303, 134)  # S2 at lr 0.01: x177 per epoch until overflow
    p = plot_loss(tmp_path / "loss.png", curve, optimum=3890.46)
    assert png_size(p) == (960, 540)
    p = plot_gradients(tmp_path / "g.png", {"weight": curve, "bias": curve / 10})
    assert png_size(p) == (960, 540)
