"""Checks for chapter 4's exercises (training): OneCycle, label smoothing, class weights,
focal loss, and what resolution and depth cost.

Each check runs the student's answer on cases small enough to follow with a pencil and
compares it with what the training code really uses (PyTorch's ``OneCycleLR`` and
``CrossEntropyLoss``, :func:`trashkit.train.class_weights`, :class:`trashkit.train.FocalLoss`),
so "right" means "what the recipe does". A wrong answer is matched against the usual slips
(the other label-smoothing convention, weights that do not average 1, a focal term on the
wrong probability, ...) and the message names the slip.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..train.losses import FocalLoss, class_weights
from .core import ExerciseError, call, close, ok, require

# --- Exercise 4.1: predict OneCycle before plotting it ---------------------------------------

ONECYCLE_KEYS = ("first_lr", "peak_lr", "last_lr", "momentum_at_peak")


def onecycle_facts(trace: pd.DataFrame) -> dict[str, float]:
    """The four numbers Exercise 4.1 predicts, read from a scheduler trace (one row per
    optimiser step, columns ``lr`` and ``momentum``)."""
    peak = int(trace.lr.idxmax())
    return {
        "first_lr": float(trace.lr.iloc[0]),
        "peak_lr": float(trace.lr.max()),
        "last_lr": float(trace.lr.iloc[-1]),
        "momentum_at_peak": float(trace.momentum.iloc[peak]),
    }


def _onecycle_hint(key: str, got: float, want: float, max_lr: float) -> str:
    if key == "first_lr" and close(got, max_lr):
        return (
            "OneCycle does not start at the peak: it warms up from max_lr / div_factor "
            "(div_factor = 25 by default)"
        )
    if key == "first_lr" and close(got, 0.0):
        return "the warm-up starts at max_lr / 25, not at 0"
    if key == "last_lr" and close(got, want * 1e4):
        return (
            "that is where the warm-up started; the annealing goes further down, to "
            "the start divided by final_div_factor = 10^4"
        )
    if key == "last_lr" and close(got, 0.0):
        return "close, but not 0: it ends at max_lr / 25 / 10^4"
    if key == "momentum_at_peak" and got > want:
        return (
            "momentum moves against the learning rate: when the lr is highest the "
            "momentum is lowest (the low end of the pair)"
        )
    return "see the formula in the text above the exercise"


def check_onecycle_prediction(
    prediction: dict,
    trace: pd.DataFrame | None = None,
    max_lr: float = 0.1,
    momentum: tuple | list | float = (0.85, 0.95),
) -> str:
    """Exercise 4.1. Without ``trace``: check the prediction is complete and record it. With
    the real scheduler's ``trace``: compare, number by number, and explain each miss."""
    require(
        isinstance(prediction, dict), f"prediction must be a dict with the keys {ONECYCLE_KEYS}"
    )
    missing = [k for k in ONECYCLE_KEYS if k not in prediction]
    require(not missing, f"prediction has no value for {', '.join(missing)}")
    for k in ONECYCLE_KEYS:
        v = prediction[k]
        require(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
            f"prediction[{k!r}] = {v!r} must be a number >= 0",
        )
    if trace is None:
        return ok(
            "prediction recorded: " + ", ".join(f"{k} {prediction[k]:g}" for k in ONECYCLE_KEYS)
        )
    facts = onecycle_facts(trace)
    lines, hits = [], 0
    for k in ONECYCLE_KEYS:
        got, want = float(prediction[k]), facts[k]
        hit = close(got, want, rel=0.02, abs_tol=1e-9)
        hits += hit
        lines.append(
            f"{k}: you said {got:g}, the scheduler gives {want:.6g}"
            + ("" if hit else f" - {_onecycle_hint(k, got, want, max_lr)}")
        )
    return ok(f"{hits} of 4 right (within 2%):\n  " + "\n  ".join(lines))


# --- Exercise 4.2: label smoothing targets ---------------------------------------------------


def _ce_soft(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float(-(target * torch.log_softmax(logits, 1)).sum(1).mean())


def check_smooth_targets(fn: Callable[[torch.Tensor, int, float], torch.Tensor]) -> str:
    """``fn(y, n_classes, eps)`` -> the soft target rows that ``CrossEntropyLoss(
    label_smoothing=eps)`` trains towards; checked by computing the loss with them."""
    for y, k, eps in [([0], 2, 0.1), ([1, 0, 2], 3, 0.3), ([4, 4, 0, 1], 6, 0.1)]:
        y_t = torch.tensor(y)
        got = call(fn, y_t, k, eps, name="smooth_targets")
        require(
            isinstance(got, torch.Tensor) and got.shape == (len(y), k),
            f"smooth_targets({y}, {k}, {eps}) returned shape "
            f"{tuple(getattr(got, 'shape', ()))}: expected one row of {k} per label, "
            f"shape ({len(y)}, {k})",
        )
        got = got.float()
        want = torch.full((len(y), k), eps / k)
        want[torch.arange(len(y)), y_t] += 1 - eps
        if torch.allclose(got, want, atol=1e-6):
            continue
        other = torch.full((len(y), k), eps / (k - 1))
        other[torch.arange(len(y)), y_t] = 1 - eps
        row = [round(v, 4) for v in got[0].tolist()]
        if torch.allclose(got, other, atol=1e-6):
            why = (
                "that is the other convention (1 - eps on the true class, eps/(K-1) on "
                "the others); PyTorch spreads eps over ALL K classes, the true one included: "
                "true class 1 - eps + eps/K, others eps/K"
            )
        elif not torch.allclose(got.sum(1), torch.ones(len(y)), atol=1e-5):
            why = f"each row must sum to 1 (a probability), yours sums to {got[0].sum():.4f}"
        else:
            why = "the true class gets 1 - eps + eps/K, every other class eps/K"
        raise ExerciseError(
            f"labels {y}, K={k}, eps={eps}: first row should be "
            f"{[round(v, 4) for v in want[0].tolist()]}, got {row} - {why}"
        )
    logits = torch.tensor([[math.log(9.0), 0.0]])
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, torch.tensor([0]))
    mine = _ce_soft(logits, fn(torch.tensor([0]), 2, 0.1).float())
    require(close(mine, float(loss), rel=1e-5), "your targets do not reproduce PyTorch's loss")
    return ok(
        f"smooth_targets matches CrossEntropyLoss(label_smoothing): p = 0.9 costs "
        f"{float(loss):.4f} instead of {-math.log(0.9):.4f}, so the network is pushed "
        "to stop short of certainty"
    )


# --- Exercise 4.3: class weights -------------------------------------------------------------


def _weight_slips(labels: np.ndarray, n: int) -> dict[str, np.ndarray]:
    counts = np.bincount(labels, minlength=n).astype(float)
    safe = np.maximum(counts, 1)
    return {
        "1 / n_c without the N / C factor, so the weights do not average 1 over the images": 1
        / safe,
        "N / n_c: you left out the division by C": len(labels) / safe,
        "n_c / N: that weights the LARGE classes up; invert it": counts / len(labels),
        "C / n_c: multiply by N, not by C": n / safe,
    }


def check_balanced_weights(fn: Callable[[np.ndarray, int], object]) -> str:
    """``fn(labels, n_classes)`` -> one weight per class, scikit-learn's 'balanced' rule
    ``N / (C * n_c)`` that :func:`trashkit.train.class_weights` uses (1 for an empty class)."""
    cases = [
        (np.array([0, 0, 0, 1]), 2),
        (np.array([0, 1, 1, 2, 2, 2, 2, 2]), 3),
        (np.array([0, 0, 2, 2]), 3),
    ]
    for labels, n in cases:
        got = call(fn, labels, n, name="balanced_weights")
        try:
            arr = np.asarray(got, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"balanced_weights returned {got!r}: return one number per "
                "class (a list, array or tensor)"
            ) from None
        require(
            arr.shape == (n,),
            f"balanced_weights({labels.tolist()}, {n}) returned "
            f"{arr.size} weights: expected one per class ({n})",
        )
        want = class_weights(labels, n).numpy().astype(float)
        if np.allclose(arr, want, rtol=1e-5):
            continue
        why = next(
            (w for w, v in _weight_slips(labels, n).items() if np.allclose(arr, v, rtol=1e-5)), ""
        )
        if not why and not np.all(np.isfinite(arr)):
            why = (
                "a class with no image divides by zero: count it as 1 (its weight never "
                "multiplies anything)"
            )
        raise ExerciseError(
            f"labels {labels.tolist()}, {n} classes: expected "
            f"{np.round(want, 4).tolist()}, got {np.round(arr, 4).tolist()}"
            + (f" - {why}" if why else " - use N / (C * n_c)")
        )
    return ok(
        "balanced_weights = N / (C n_c): labels [0, 0, 0, 1] give [0.667, 2.0]; "
        "every image then carries on average weight 1"
    )


# --- Exercise 4.4: focal loss ----------------------------------------------------------------

FOCAL_CASES = [
    (torch.tensor([[math.log(9.0), 0.0]]), torch.tensor([0]), 2.0),
    (torch.tensor([[0.0, math.log(3.0)], [2.0, -1.0]]), torch.tensor([0, 0]), 2.0),
    (torch.tensor([[1.0, 2.0, 0.5], [0.2, 0.1, 3.0]]), torch.tensor([2, 1]), 0.5),
]


def _focal_slips(logits, y, gamma) -> dict[str, float]:
    logp = torch.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    p = logp.exp()
    return {
        "the loss must be positive: -(1 - p_t)^gamma * log p_t, note the minus": float(
            ((1 - p) ** gamma * logp).mean()
        ),
        "you weighted by p_t^gamma; the focal factor is (1 - p_t)^gamma, small for EASY "
        "images": float((-(p**gamma) * logp).mean()),
        "that is plain cross-entropy: the (1 - p_t)^gamma factor is missing": float((-logp).mean()),
        "you summed over the batch; the recipe averages (mean)": float(
            (-((1 - p) ** gamma) * logp).sum()
        ),
        "gamma multiplies instead of being an exponent": float((-(1 - p) * gamma * logp).mean()),
    }


def check_focal_loss(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> str:
    """``fn(logits, y, gamma)`` -> mean focal loss, as :class:`trashkit.train.FocalLoss`."""
    for logits, y, gamma in FOCAL_CASES:
        got = call(fn, logits, y, gamma, name="focal_loss")
        try:
            got_f = float(got)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"focal_loss returned {got!r}: return one number (the mean "
                "over the batch), e.g. a 0-d tensor"
            ) from None
        want = float(FocalLoss(gamma)(logits, y))
        if close(got_f, want, rel=1e-5, abs_tol=1e-7):
            continue
        why = next(
            (
                w
                for w, v in _focal_slips(logits, y, gamma).items()
                if close(got_f, v, rel=1e-5, abs_tol=1e-7)
            ),
            "see the formula above",
        )
        raise ExerciseError(
            f"logits {logits.tolist()}, labels {y.tolist()}, gamma {gamma}: "
            f"expected {want:.6f}, got {got_f:.6f} - {why}"
        )
    easy = float(FocalLoss(2.0)(*FOCAL_CASES[0][:2]))
    return ok(
        f"focal_loss matches FocalLoss: an easy image (p_t = 0.9) costs {easy:.5f} "
        f"instead of {-math.log(0.9):.5f}, 100x less, so hard images drive the gradient"
    )


# --- Exercise 4.5: what resolution and depth cost --------------------------------------------

SCALING_KEYS = ("macs_ratio_resolution", "macs_ratio_depth")


def check_scaling_prediction(prediction: dict, measured: dict | None = None) -> str:
    """Exercise 4.5 (predict before you run): ``macs_ratio_resolution`` is the MACs of one
    network at the larger of the chapter's two input sizes over the smaller;
    ``macs_ratio_depth`` the MACs of depth 1.0 over depth 0.5 at one size. Without
    ``measured`` the prediction is recorded; with it each ratio is compared and explained."""
    require(isinstance(prediction, dict), f"prediction must be a dict with {SCALING_KEYS}")
    missing = [k for k in SCALING_KEYS if k not in prediction]
    require(not missing, f"prediction has no value for {', '.join(missing)}")
    for k in SCALING_KEYS:
        v = prediction[k]
        require(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
            f"prediction[{k!r}] = {v!r} must be a positive number (a ratio, e.g. 1.5)",
        )
    if measured is None:
        return ok(
            "prediction recorded: " + ", ".join(f"{k} {prediction[k]:g}" for k in SCALING_KEYS)
        )
    notes = {
        "macs_ratio_resolution": (
            "convolution MACs are proportional to the output's height x width, so a side s2/s1 "
            "costs (s2/s1)^2; only the classifier at the end does not grow"
        ),
        "macs_ratio_depth": (
            "depth multiplies the repeats of the blocks inside each stage; the stem, the first "
            "block of every stage and the head stay, so doubling depth costs less than 2x"
        ),
    }
    lines = []
    for k in SCALING_KEYS:
        p, m = float(prediction[k]), float(measured[k])
        verdict = (
            "well predicted"
            if abs(p / m - 1) <= 0.1
            else ("you over-estimated" if p > m else "you under-estimated")
        )
        lines.append(f"{k}: predicted {p:.2f}, measured {m:.2f} - {verdict}: {notes[k]}")
    return ok("\n  ".join(lines))
