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


# --- where the baselines come from: the formulas solved for their constants -----------------


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def time_baseline_from_row(
    f1: float, seconds: float, score: float, f1_baseline: float = F1_BASELINE_TIME
) -> float:
    """The ``time_baseline`` that makes one published row (F1, seconds, score) of the
    submit-time edition exact: its formula solved for the baseline time."""
    rest = score - _sigmoid(20.0 * (f1_baseline - f1))
    if rest <= 0:
        raise ValueError(f"score {score} is below its F1 term: no positive baseline time fits")
    return 0.5 * seconds / rest


def solve_time_baseline(rows, f1_baseline: float = F1_BASELINE_TIME) -> dict:
    """Least-squares ``time_baseline`` over published rows ``(f1, seconds, score)``.

    With the baseline F1 fixed, each score is linear in u = 1/time_baseline:
    ``score - sigmoid(20 (F1_base - F1)) = (0.5 t) u``, so the u that minimises the squared
    score residuals is ``sum(x y) / sum(x x)`` with x = 0.5 t and y the left-hand side.
    Returns that baseline, each row's exact one (:func:`time_baseline_from_row`) and each
    row's residual (score recomputed with the fitted baseline minus the published score).
    """
    rows = [tuple(map(float, r)) for r in rows]
    x = [0.5 * t for _, t, _ in rows]
    y = [s - _sigmoid(20.0 * (f1_baseline - f)) for f, _, s in rows]
    u = sum(a * b for a, b in zip(x, y)) / sum(a * a for a in x)
    fitted = 1.0 / u
    return {
        "time_baseline": fitted,
        "per_row": [time_baseline_from_row(f, t, s, f1_baseline) for f, t, s in rows],
        "residuals": [score_time(f, t, fitted, f1_baseline) - s for f, t, s in rows],
    }


def implied_f1_time(
    score: float,
    seconds: float,
    time_baseline: float = TIME_BASELINE,
    f1_baseline: float = F1_BASELINE_TIME,
) -> float:
    """The F1 that a published submit-time score and time imply: the formula solved for F1
    (the inverse of the sigmoid is the logit, ``log(q / (1 - q))``)."""
    q = score - 0.5 * seconds / time_baseline
    if not 0 < q < 1:
        raise ValueError(f"score {score} at {seconds} s leaves an F1 term {q:.4f} outside (0, 1)")
    return f1_baseline - math.log(q / (1.0 - q)) / 20.0


def solve_macs_baselines(rows, f1_baseline_guess: float = 1.0) -> dict:
    """``(MACs_baseline, F1_baseline)`` by least squares from MACs-edition rows
    ``(f1, macs, score)``.

    Between F1 0.5 and the baseline, ``score - 1 = a MACs - b F1`` with a = 1/MACs_baseline
    and b = 1/F1_baseline; above the baseline ``score - 0.5 = a MACs - 0.5 b F1``; below 0.5
    ``score - 1 = a MACs``. Linear in (a, b) once each row's branch is known, and the branch
    depends on b: start from ``f1_baseline_guess`` and repeat until no row changes branch.
    Two rows on the F1 ramp fix both constants exactly; more rows give least squares.
    """
    import numpy as np

    rows = np.asarray([tuple(map(float, r)) for r in rows])
    f1, macs, score = rows.T
    f1_base = f1_baseline_guess
    for _ in range(20):
        below, above = f1 < 0.5, f1 >= f1_base
        w = np.where(below, 0.0, np.where(above, 0.5, 1.0))  # weight of -b F1
        c = np.where(above, 0.5, 1.0)  # constant term
        design = np.column_stack([macs, -w * f1])
        (a, b), *_ = np.linalg.lstsq(design, score - c, rcond=None)
        new = 1.0 / b if b > 0 else math.inf
        if (f1 >= new).tolist() == above.tolist():
            f1_base = new
            break
        f1_base = new
    return {"macs_baseline": float(1.0 / a), "f1_baseline": float(f1_base)}
