"""Checks for chapter 5's exercises (scoring): the submit-time baseline solved from a published
row, the MACs that tie a change of F1 in the MACs edition, a confusion matrix on which accuracy
hides what macro-F1 shows, a prediction of how far a public and a private half disagree, and the
design task (a cheaper input size, measured).

Every check compares with a property or with trashkit's own helpers (a derived baseline must
reproduce the score it came from through :func:`trashkit.scoring.score_time`; a tie must tie
in :func:`trashkit.scoring.score_macs`; a matrix is measured with
:func:`trashkit.metrics.f1_report`; a predicted spread must match a simulation), never with the
text of a solution, and names the usual slip when an answer is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import scoring
from ..metrics import f1_report
from .core import ExerciseError, call, close, ok, require

MB, FB = scoring.MACS_BASELINE, scoring.F1_BASELINE_MACS
TB, FT = scoring.TIME_BASELINE, scoring.F1_BASELINE_TIME


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# --- Exercise 5.1: the submit-time baseline from one published row --------------------------

#: (F1, seconds, baseline time that made the score): other baselines than 43.15 s on purpose
TIME_ROWS = [(0.7012, 58.1225, TB), (0.65, 90.0, 30.0), (0.74, 20.0, 61.7), (0.70, 60.0, 50.0)]


def _time_baseline_slips(f1: float, t: float, score: float) -> dict[str, float]:
    """What the usual slips return for a row (solved wrongly on paper)."""
    f1_term = _sig(20 * (FT - f1))
    return {
        "the time term is 0.5 * t / T0: you dropped the 0.5": t / (score - f1_term),
        "you solved for 1 / T0: T0 = 0.5 t / (score - F1 term)": (score - f1_term) / (0.5 * t),
        "subtract the F1 term (the sigmoid) from the score before dividing": 0.5 * t / score,
        "the sigmoid's argument is 20 * (0.70 - F1), not 20 * (F1 - 0.70)": 0.5
        * t
        / (score - _sig(20 * (f1 - FT))),
    }


def check_time_baseline(fn: Callable[[float, float, float], float]) -> str:
    """``fn(f1, seconds, score)`` -> the baseline time that makes the row's score exact, with
    the baseline F1 0.70. Right means: put back into :func:`scoring.score_time`, it gives the
    score back - on rows made with other baselines than 43.15 s, so no constant passes."""
    for f1, t, base in TIME_ROWS:
        score = scoring.score_time(f1, t, time_baseline=base)
        got = call(fn, f1, t, score, name="time_baseline")
        try:
            back = scoring.score_time(f1, t, time_baseline=float(got))
        except (TypeError, ValueError, ZeroDivisionError):
            back = math.nan
        if close(back, score, rel=1e-9):
            continue
        why = next(
            (w for w, v in _time_baseline_slips(f1, t, score).items() if close(got, v, rel=1e-6)),
            "solve score = 0.5 * t / T0 + sigmoid(20 * (0.70 - F1)) for T0",
        )
        raise ExerciseError(
            f"time_baseline(f1={f1}, seconds={t}, score={score:.6f}): got {got}, but that "
            f"baseline gives the score {back:.6f} - {why}"
        )
    return ok(
        "time_baseline solves the submit-time formula for its baseline: each row's own "
        "baseline gives its score back exactly"
    )


# --- Exercise 5.2: the MACs that tie a change of F1 (MACs edition) -------------------------

#: (F1 now, MACs now, F1 of the other model): on the ramp, across the kink, above the baseline,
#: across the jump at 0.5 (both ways), and a tie no model can reach (negative MACs)
TIE_CASES = [
    (0.70, 9e6, 0.72),
    (0.80, 9e6, 0.86),
    (0.85, 5e6, 0.90),
    (0.52, 9e6, 0.48),
    (0.48, 9e6, 0.55),
    (0.90, 2e6, 0.60),
]


def _tie_slips(f1_from: float, macs: float, f1_to: float) -> dict[str, float]:
    def ramp(f: float) -> float:
        return 1 - f / FB

    def full_weight(f: float) -> float:  # the jump kept, the half weight forgotten
        return 1.0 if f < 0.5 else ramp(f)

    def no_jump(f: float) -> float:  # the half weight kept, the jump forgotten
        return ramp(f) if f < FB else 0.5 * ramp(f)

    part = scoring.score_f1_part
    return {
        "above the baseline F1 the F1 term has half weight": macs
        + MB * (full_weight(f1_from) - full_weight(f1_to)),
        "below F1 0.5 the F1 term is 1 whatever the F1 (the jump)": macs
        + MB * (no_jump(f1_from) - no_jump(f1_to)),
        "a better F1 buys MORE MACs, not fewer (check the sign)": macs
        - MB * (part(f1_from) - part(f1_to)),
        "the F1 term's change must be scaled by MACs_baseline (13,863,553)": macs
        + part(f1_from)
        - part(f1_to),
    }


def check_macs_to_tie(fn: Callable[[float, float, float], float]) -> str:
    """``fn(f1_from, macs, f1_to)`` -> the MACs at which a model of F1 ``f1_to`` scores exactly
    what a model of F1 ``f1_from`` with ``macs`` scores in the MACs edition (default baselines;
    negative when no model at ``f1_to`` can tie)."""
    for f1_from, macs, f1_to in TIE_CASES:
        got = call(fn, f1_from, macs, f1_to, name="macs_to_tie")
        want_score = scoring.score_macs(f1_from, macs)
        try:
            tied = scoring.score_macs(f1_to, float(got))
        except (TypeError, ValueError):
            tied = math.nan
        if close(tied, want_score, rel=1e-9, abs_tol=1e-9):
            continue
        slips = _tie_slips(f1_from, macs, f1_to)
        why = next(
            (w for w, v in slips.items() if close(got, v, rel=1e-6)),
            "equal scores: MACs'/MACs_base + F1 term(F1') = MACs/MACs_base + F1 term(F1)",
        )
        raise ExerciseError(
            f"macs_to_tie(f1_from={f1_from}, macs={macs:,.0f}, f1_to={f1_to}): got {got}, "
            f"which scores {tied:.5f} against {want_score:.5f} - {why}"
        )
    rate = MB * 0.01 / FB
    return ok(
        f"macs_to_tie ties every case, across the kink and the jump. Below the baseline 0.01 "
        f"of F1 is worth {rate:,.0f} MACs; above it half that; crossing 0.5 is worth "
        f"{MB * 0.5 / FB:,.0f} MACs at once"
    )


# --- Exercise 5.3: a confusion matrix on which accuracy hides the failure ---------------------

HIDE_ACCURACY, HIDE_MACRO = 0.90, 0.60


def _report_of(cm: np.ndarray) -> dict:
    """trashkit's report of a confusion matrix (rows true, columns predicted)."""
    n = len(cm)
    y_true = np.repeat(np.arange(n), cm.sum(1))
    y_pred = np.concatenate([np.repeat(np.arange(n), row) for row in cm])
    return f1_report(y_true, y_pred, [str(k) for k in range(n)])


def check_accuracy_hides(cm) -> str:
    """``cm``: a confusion matrix (rows = true class, columns = predicted) on which accuracy is
    at least 0.90 and macro-F1 at most 0.60, as :func:`trashkit.metrics.f1_report` computes
    them."""
    try:
        arr = np.asarray(cm)
        ok_shape = arr.ndim == 2 and arr.shape[0] == arr.shape[1] >= 2
        whole = ok_shape and np.all(arr >= 0) and np.all(arr == np.round(arr))
    except (TypeError, ValueError):
        whole = False
    require(
        bool(whole) and arr.sum() > 0,
        f"the answer must be a square matrix of non-negative whole counts with at least 2 "
        f"classes and one image, got {cm!r}",
    )
    arr = arr.astype(np.int64)
    rep = _report_of(arr)
    acc, macro = rep["accuracy"], rep["macro_f1"]
    per_class = [round(rep["per_class"][str(k)]["f1-score"], 3) for k in range(len(arr))]
    facts = f"accuracy {acc:.3f}, macro-F1 {macro:.3f}, per-class F1 {per_class}"
    require(
        acc >= HIDE_ACCURACY,
        f"{facts} - accuracy must reach {HIDE_ACCURACY}: it is the diagonal over all images, "
        "so put most of the images in a class the model gets right",
    )
    require(
        macro <= HIDE_MACRO,
        f"{facts} - macro-F1 must stay at or below {HIDE_MACRO}: it is the plain mean over the "
        "classes, so let the model fail on the small ones (their F1 counts as much as the "
        "large class's)",
    )
    return ok(f"{facts}: accuracy looks fine, macro-F1 shows the classes the model misses")


# --- Exercise 5.4: predict how far the public and the private half disagree ------------------

#: (accuracy, public images, private images): the course's halves, a small split, a coin
HALVES_CASES = [(0.70, 2_606, 2_611), (0.90, 400, 100), (0.50, 60, 60)]
HALVES_DRAWS = 2_000
HALVES_TOLERANCE = 0.12  # relative; the simulation's own error on a sd is about 2% here


def simulated_halves_sd(p: float, n_public: int, n_private: int, draws: int = HALVES_DRAWS):
    """Standard deviation of (public - private) accuracy of one model that is right on a
    share ``p`` of the images, over random public/private splits
    (:func:`trashkit.scoring.resample_halves`)."""
    n = n_public + n_private
    right = np.zeros(n, dtype=bool)
    right[: round(p * n)] = True  # exactly p of the images right; the split decides which half
    df = scoring.resample_halves(np.ones(n, bool), {"model": right}, n_public, draws, 0, "accuracy")
    return float((df.public - df.private).std())


def check_halves_sd(fn: Callable[[float, int, int], float]) -> str:
    """``fn(p, n_public, n_private)`` -> the predicted standard deviation of (public accuracy
    - private accuracy) of one model right on a share ``p`` of the test images, when the
    images are split at random. Compared with a simulation within 12%."""
    for p, n1, n2 in HALVES_CASES:
        got = call(fn, p, n1, n2, name="halves_sd")
        sim = simulated_halves_sd(p, n1, n2)
        try:
            ratio = float(got) / sim
        except (TypeError, ValueError, ZeroDivisionError):
            raise ExerciseError(
                f"halves_sd({p}, {n1}, {n2}) must be a number, got {got!r}"
            ) from None
        if abs(ratio - 1) <= HALVES_TOLERANCE:
            continue
        var = sim**2
        why = (
            "that looks like a variance: take the square root"
            if close(got, var, rel=0.2)
            else "each half's accuracy varies; their difference varies more (add the variances)"
            if 0.6 < ratio < 0.85
            else "the variance of a share p measured on n images is p (1 - p) / n"
        )
        raise ExerciseError(
            f"halves_sd(p={p}, n_public={n1}, n_private={n2}) = {got}, the simulation gives "
            f"{sim:.4f} (ratio {ratio:.2f}) - {why}"
        )
    p, n1, n2 = HALVES_CASES[0]
    return ok(
        f"halves_sd matches the simulation on {len(HALVES_CASES)} splits. With the course's "
        f"halves, a model right on {p:.0%} of the images reads {float(fn(p, n1, n2)):.4f} "
        "apart on the two halves in a typical split (one standard deviation)"
    )


# --- Design task: a cheaper input size, measured --------------------------------------------

DESIGN_GAIN = 0.01  # the MACs-edition score must drop at least this much


def check_design_size(ckpt, size: int, split: str = "test") -> str:
    """The design task: at input side ``size``, smaller than its own, the checkpoint must score
    at least 0.01 lower (better) in the MACs edition than at its own side, on the run's
    held-out images (``split``; a run without test images falls back to validation, and the
    message says so). Both sides are measured here with :func:`scoring.score_at_size`:
    official MACs and macro-F1."""
    require(
        isinstance(size, (int, np.integer)) and not isinstance(size, bool) and 16 <= size <= 512,
        f"design_size must be a whole number of pixels in 16..512, got {size!r}",
    )
    require(
        size < ckpt.image_size,
        f"design_size {size} px is not smaller than the checkpoint's own {ckpt.image_size} px",
    )
    used, warning = scoring.held_out_split(ckpt.config, split)
    own = scoring.score_at_size(ckpt, ckpt.image_size, used)
    mine = scoring.score_at_size(ckpt, int(size), used)
    facts = (
        f"{size} px: {mine['macs']:,} MACs, {used} macro-F1 {mine['f1']:.4f}, score "
        f"{mine['score_macs']:.4f}; own size {ckpt.image_size} px: {own['macs']:,} MACs, "
        f"F1 {own['f1']:.4f}, score {own['score_macs']:.4f}"
    )
    if warning:
        print(warning)
    jumped = mine["f1"] < 0.5 <= own["f1"]
    require(
        mine["score_macs"] <= own["score_macs"] - DESIGN_GAIN,
        f"{facts} - the score must drop by at least {DESIGN_GAIN}: the F1 lost costs more "
        "than the MACs saved" + (" (F1 fell below 0.5: the F1 term jumped to 1)" if jumped else ""),
    )
    gain = own["score_macs"] - mine["score_macs"]
    return ok(f"design task met on the {used} split (score {gain:.4f} lower): {facts}")
