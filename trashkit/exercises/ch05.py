"""Checks for chapter 5's exercises (scoring): both competition scores, the per-class report
read from a confusion matrix, and a prediction about scoring on the validation split.

The expected values come from the helpers the chapter uses at scale
(:func:`trashkit.scoring.score_macs`, :func:`trashkit.scoring.score_time`,
:func:`trashkit.metrics.f1_report`), so "right" means "agrees with the leaderboard".
Boundary cases (F1 just below 0.5, exactly at the baseline) are tried first: that is where
the usual slips show.
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

# --- Exercise 5.1: the MACs edition ----------------------------------------------------------

MACS_CASES = [(0.49, MB), (0.5, MB / 2), (0.7, 2e6), (FB, MB), (0.9, 3e6), (0.3, 5e6)]


def _macs_slips(f1: float, macs: float) -> dict[str, float]:
    below = 1 - f1 / FB
    return {
        "below F1 0.5 the F1 term is 1 (the model counts as useless), not 1 - F1/baseline": macs
        / MB
        + below,
        "above the baseline F1 the F1 term has half weight: 0.5 * (1 - F1/baseline)": macs / MB
        + below,
        "the MACs term is MACs / MACs_baseline (you inverted it)": MB / macs
        + scoring.score_f1_part(f1),
        "the MACs term is missing": scoring.score_f1_part(f1),
        "the F1 term is 1 - F1/baseline (you wrote F1/baseline - 1 or inverted the ratio)": macs
        / MB
        + (f1 / FB - 1 if f1 >= 0.5 else 1.0),
    }


def check_score_macs(fn: Callable[[float, float], float]) -> str:
    """``fn(f1, macs)`` -> the MACs-edition score with the default baselines."""
    for f1, macs in MACS_CASES:
        got = call(fn, f1, macs, name="my_score_macs")
        want = scoring.score_macs(f1, macs)
        if close(got, want, rel=1e-6, abs_tol=1e-9):
            continue
        slips = _macs_slips(f1, macs)
        if f1 < 0.5:
            slips = {k: v for k, v in slips.items() if "half weight" not in k}
        elif f1 < FB:
            slips = {
                k: v for k, v in slips.items() if "below F1 0.5" not in k and "half weight" not in k
            }
        else:
            slips = {k: v for k, v in slips.items() if "below F1 0.5" not in k}
        why = next(
            (w for w, v in slips.items() if close(got, v, rel=1e-6)),
            "score = MACs/MACs_base + (1 if F1 < 0.5, 1 - F1/F1_base below the "
            "baseline, half of that above it)",
        )
        raise ExerciseError(
            f"my_score_macs(f1={f1}, macs={macs:,.0f}): expected {want:.4f}, got {got} - {why}"
        )
    return ok(
        "my_score_macs agrees with scoring.score_macs on 6 cases, including the jump "
        "at F1 = 0.5 and the half weight above the baseline"
    )


# --- Exercise 5.2: the submit-time edition ---------------------------------------------------

TIME_CASES = [(0.7012, 58.1225), (0.687, 63.08), (0.70, 60.0), (0.9, 10.0), (0.3, 43.15)]


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _time_slips(f1: float, t: float) -> dict[str, float]:
    return {
        "the sigmoid's argument is 20 * (F1_base - F1): a better F1 must LOWER the score": 0.5
        * t
        / TB
        + _sig(20 * (f1 - FT)),
        "the time term has weight 0.5": t / TB + _sig(20 * (FT - f1)),
        "the time term is time / time_baseline (you inverted it)": 0.5 * TB / t
        + _sig(20 * (FT - f1)),
        "the factor 20 inside the sigmoid is missing": 0.5 * t / TB + _sig(FT - f1),
        "sigmoid(z) = 1 / (1 + exp(-z)), not exp(z)": 0.5 * t / TB + math.exp(20 * (FT - f1)),
    }


def check_score_time(fn: Callable[[float, float], float]) -> str:
    """``fn(f1, seconds)`` -> the submit-time score with the default baselines."""
    for f1, t in TIME_CASES:
        got = call(fn, f1, t, name="my_score_time")
        want = scoring.score_time(f1, t)
        if close(got, want, rel=1e-6, abs_tol=1e-9):
            continue
        why = next(
            (w for w, v in _time_slips(f1, t).items() if close(got, v, rel=1e-6)),
            "score = 0.5 * t / 43.15 + 1 / (1 + exp(-20 * (0.70 - F1)))",
        )
        raise ExerciseError(
            f"my_score_time(f1={f1}, seconds={t}): expected {want:.4f}, got {got} - {why}"
        )
    return ok(
        f"my_score_time agrees with scoring.score_time; the team's 200-epoch row "
        f"(F1 0.7012, 58.1225 s) scores {scoring.score_time(0.7012, 58.1225):.4f}"
    )


# --- Exercise 5.3: the per-class report from a confusion matrix ------------------------------

#: rows = true class, columns = predicted class (scikit-learn's convention)
CM_CASES = [
    np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]]),
    np.array([[8, 2, 0], [4, 1, 0], [3, 0, 0]]),  # class 2 is never predicted
    np.array([[50, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 2]]),
]


def _expected_report(cm: np.ndarray) -> dict:
    y_true = np.repeat(np.arange(len(cm)), cm.sum(1))
    y_pred = np.concatenate([np.repeat(np.arange(len(cm)), row) for row in cm])
    rep = f1_report(y_true, y_pred, [str(k) for k in range(len(cm))])
    pc = rep["per_class"]
    return {
        "precision": [pc[str(k)]["precision"] for k in range(len(cm))],
        "recall": [pc[str(k)]["recall"] for k in range(len(cm))],
        "f1": [pc[str(k)]["f1-score"] for k in range(len(cm))],
        "macro_f1": rep["macro_f1"],
        "accuracy": rep["accuracy"],
        "weighted": float(
            np.average([pc[str(k)]["f1-score"] for k in range(len(cm))], weights=cm.sum(1))
        ),
    }


def _as_list(got: dict, key: str, n: int) -> np.ndarray:
    try:
        arr = np.asarray(got[key], dtype=float).reshape(-1)
    except (TypeError, ValueError, KeyError):
        raise ExerciseError(f"class_report(...)[{key!r}] must be one number per class") from None
    require(
        arr.shape == (n,),
        f"class_report(...)[{key!r}] has {arr.size} values: expected one per class ({n})",
    )
    return arr


def _report_case(fn, cm: np.ndarray) -> None:
    got = call(fn, cm.copy(), name="class_report")
    require(
        isinstance(got, dict) and {"precision", "recall", "f1", "macro_f1"} <= set(got),
        "class_report must return a dict with keys precision, recall, f1, macro_f1",
    )
    want, n = _expected_report(cm), len(cm)
    p, r, f = (_as_list(got, k, n) for k in ("precision", "recall", "f1"))
    where = f"confusion matrix {cm.tolist()} (rows = true class, columns = predicted)"
    if not np.all(np.isfinite(np.concatenate([p, r, f]))):
        raise ExerciseError(
            f"{where}: a class that is never predicted has precision 0/0; "
            "count it as 0 (as scikit-learn's zero_division=0 does)"
        )
    if not (np.allclose(p, want["precision"]) and np.allclose(r, want["recall"])):
        swapped = np.allclose(p, want["recall"]) and np.allclose(r, want["precision"])
        raise ExerciseError(
            f"{where}: expected precision {np.round(want['precision'], 3).tolist()} and "
            f"recall {np.round(want['recall'], 3).tolist()}, got {np.round(p, 3).tolist()} "
            f"and {np.round(r, 3).tolist()} - "
            + (
                "precision and recall are swapped: precision divides by the COLUMN sum "
                "(everything predicted as the class), recall by the ROW sum (every true "
                "image of the class)"
                if swapped
                else "precision = TP / column sum, recall = TP / row sum"
            )
        )
    require(
        np.allclose(f, want["f1"]),
        f"{where}: per-class F1 should be "
        f"{np.round(want['f1'], 3).tolist()}, got "
        f"{np.round(f, 3).tolist()} - F1 = 2PR / (P + R)",
    )
    m = float(got["macro_f1"])
    if not close(m, want["macro_f1"], rel=1e-6):
        why = (
            "that is the accuracy"
            if close(m, want["accuracy"])
            else "that is the support-weighted mean; macro means every class counts the same"
            if close(m, want["weighted"])
            else "macro-F1 = the plain mean of the per-class F1"
        )
        raise ExerciseError(
            f"{where}: macro-F1 should be {want['macro_f1']:.4f}, got {m:.4f} - {why}"
        )


def check_class_report(fn: Callable[[np.ndarray], dict]) -> str:
    """``fn(cm)`` -> per-class precision, recall, F1 and the macro-F1 of a confusion matrix
    (rows true, columns predicted), as :func:`trashkit.metrics.f1_report` computes them."""
    for cm in CM_CASES:
        _report_case(fn, cm)
    big = _expected_report(CM_CASES[2])
    return ok(
        f"class_report matches f1_report. On the last case accuracy is "
        f"{big['accuracy']:.3f} but macro-F1 only {big['macro_f1']:.3f}: the two "
        "small classes the model mixes up count as much as the large one"
    )


# --- Exercise 5.4: predict the optimism of validation scores ---------------------------------

OPTIMISM = ("validation higher", "about equal", "test higher")


def check_optimism_prediction(
    prediction: str,
    val_f1: float | None = None,
    test_f1: float | None = None,
    tolerance: float = 0.01,
) -> str:
    """Exercise 5.4 (predict before you run): will ``best.pt`` score higher on the validation
    images that chose it or on the held-back test images? Without the measurements the
    prediction is recorded; with them it is compared and the reason explained either way."""
    require(prediction in OPTIMISM, f"prediction = {prediction!r}: choose one of {OPTIMISM}")
    if val_f1 is None or test_f1 is None:
        return ok(f"prediction recorded: {prediction}")
    gap = val_f1 - test_f1
    measured = (
        "about equal"
        if abs(gap) <= tolerance
        else "validation higher"
        if gap > 0
        else "test higher"
    )
    why = {
        "validation higher": "best.pt is the epoch that scored highest on the validation "
        "images, so part of its validation score is luck that the "
        "test images do not share (selection optimism)",
        "about equal": "here the selection bought little: the curve was flat near its best "
        "epoch, or the validation set is large enough for luck to be small",
        "test higher": "the test images happened to be easier: with a few hundred images "
        "one image moves a class's F1 by a percent or more, so noise can "
        "outweigh the optimism; the average over many splits still leans "
        "to validation",
    }[measured]
    head = (
        f"validation {val_f1:.3f} vs test {test_f1:.3f} (gap {gap:+.3f}): measured "
        f"'{measured}', you predicted '{prediction}'"
    )
    return ok(f"{head} - {'as predicted' if measured == prediction else 'a surprise'}: {why}")
