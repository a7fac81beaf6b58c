"""The competition's two score formulas, their baselines, and a calculator to play with them.

Baselines are back-derived by this project from published rows (no course document states
them), overridable in every function:

* MACs edition: ``MACS_BASELINE = 13_863_553`` and ``F1_BASELINE_MACS = 0.8366`` were solved
  from published leaderboard rows (score, F1, MACs) of that edition, assuming its formula.
* Submit-time edition: ``F1_BASELINE_TIME = 0.70`` and ``TIME_BASELINE = 43.15`` s, likewise
  back-derived; its published target row (F1 0.70 at 60 s) scores 0.5*60/43.15 + 0.5 = 1.195.
  That time was for the competition's 5,217 test images on the organisers' machine, so a
  submit time measured here is only comparable per image (``submit_ms_per_image``); the
  time score uses the per-image time scaled to 5,217 images and says so.
"""

from __future__ import annotations

import math

MACS_BASELINE = 13_863_553
F1_BASELINE_MACS = 0.8366
F1_BASELINE_TIME = 0.70
TIME_BASELINE = 43.15
COMPETITION_TEST_IMAGES = 5_217


def score_f1_part(f1: float, f1_baseline: float = F1_BASELINE_MACS) -> float:
    """The F1 term of the MACs edition: 1 below 0.5 (too weak), full weight below the
    baseline, half weight above it."""
    if f1 < 0.5:
        return 1.0
    if f1 < f1_baseline:
        return 1.0 - f1 / f1_baseline
    return 0.5 * (1.0 - f1 / f1_baseline)


def score_macs(
    f1: float,
    macs: float,
    macs_baseline: float = MACS_BASELINE,
    f1_baseline: float = F1_BASELINE_MACS,
) -> float:
    """MACs edition (lower is better, may be negative): MACs/MACs_base + F1 term."""
    return macs / macs_baseline + score_f1_part(f1, f1_baseline)


def score_time(
    f1: float,
    seconds: float,
    time_baseline: float = TIME_BASELINE,
    f1_baseline: float = F1_BASELINE_TIME,
) -> float:
    """Submit-time edition (lower is better): 0.5 t/t_base + sigmoid(20 (F1_base - F1))."""
    return 0.5 * seconds / time_baseline + 1.0 / (1.0 + math.exp(-20.0 * (f1_baseline - f1)))


def calculator():
    """ipywidgets sliders (F1, MACs, seconds) -> both scores, for interactive sessions."""
    import ipywidgets as w

    f1 = w.FloatSlider(0.84, min=0.0, max=1.0, step=0.005, description="macro-F1")
    macs = w.FloatLogSlider(13.86e6, base=10, min=5, max=9, description="MACs")
    secs = w.FloatSlider(43.15, min=1, max=200, step=0.5, description="seconds")
    out = w.HTML()

    def update(*_):
        out.value = (
            f"<b>MACs edition</b>: {score_macs(f1.value, macs.value):.4f} &nbsp; "
            f"<b>time edition</b>: {score_time(f1.value, secs.value):.4f}"
        )

    for s in (f1, macs, secs):
        s.observe(update, "value")
    update()
    return w.VBox([f1, macs, secs, out])
