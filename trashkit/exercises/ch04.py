"""Checks for chapter 4's exercises (training): OneCycle, label smoothing, class weights,
the focal loss's gradient, what resolution and depth cost, and the design task.

Each check runs the student's answer on cases small enough to follow with a pencil and
compares it with what the training code really does (PyTorch's ``OneCycleLR`` and
``CrossEntropyLoss``, autograd through :class:`trashkit.train.FocalLoss`,
:func:`trashkit.train.class_weights`, the official MACs counter), or with properties the
answer must have, so "right" means "what the recipe does". A wrong answer is matched against
the usual slips and the message names the slip. No check contains a solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..train.losses import FocalLoss, class_weights
from .core import ExerciseError, call, close, ok, require

# --- Exercise 4.1: predict OneCycle before plotting it ---------------------------------------

ONECYCLE_KEYS = ("peak_step", "lr_at_half", "below_tenth", "momentum_at_tenth")
#: below this many optimiser steps the discrete schedule is too coarse to compare
MIN_STEPS = 50
#: the anneal's p where (1 + cos(pi p)) / 2 = 0.1: a tenth of the way left
P_TENTH = math.acos(-0.8) / math.pi


def _warmup_end(total: int) -> float:
    """PyTorch's (float) last warm-up step: ``pct_start * steps - 1`` at its default 0.3."""
    return 0.3 * total - 1


def onecycle_facts(trace: pd.DataFrame) -> dict[str, float]:
    """The four numbers Exercise 4.1 predicts, read from a scheduler trace (one row per
    optimiser step, columns ``lr`` and ``momentum``): PyTorch's (float) end of the warm-up,
    ``0.3 * steps - 1`` (PyTorch's default ``pct_start`` = 0.3, which trashkit keeps; the
    highest rate is at the whole step on either side of it); the learning rate at step
    ``steps // 2``; and, at the first step after the peak whose rate is below a tenth of the
    peak, the momentum and that step's index divided by the number of steps."""
    lr, total = trace.lr.to_numpy(), len(trace)
    peak = int(lr.argmax())
    tenth = peak + int((lr[peak:] < 0.1 * float(lr.max())).argmax())
    return {
        "peak_step": _warmup_end(total),
        "lr_at_half": float(lr[total // 2]),
        "momentum_at_tenth": float(trace.momentum.iloc[tenth]),
        "below_tenth": tenth / total,
    }


def _straight_line_half(trace: pd.DataFrame) -> float:
    """``lr_at_half`` if the anneal were a straight line (a common wrong guess)."""
    lr, total = trace.lr.to_numpy(), len(trace)
    p = (total // 2 - _warmup_end(total)) / (0.7 * total)
    return float(lr.max() + (lr[-1] - lr.max()) * p)


def _onecycle_hint(key: str, got: float, want: float, trace: pd.DataFrame) -> str:
    """Why a prediction missed: the first usual slip it matches, else where to look."""
    total, peak_lr = len(trace), float(trace.lr.max())
    hints = {
        "peak_step": [
            (
                close(got, want + 1, abs_tol=0.5),
                "steps count from 0: the warm-up ends at step 0.3 * steps - 1",
            ),
            (
                got < total / 10,
                "steps, not epochs: epochs x (training images // batch_size) steps in all",
            ),
        ],
        "lr_at_half": [
            (
                close(got, _straight_line_half(trace), rel=0.02),
                "that is a straight line; the anneal is a half cosine, which stays near the "
                "top longer",
            ),
            (
                close(got, peak_lr, rel=0.02),
                "the middle step is past the peak (at 30% of the steps): the anneal has begun",
            ),
        ],
        "momentum_at_tenth": [
            (
                close(got, float(trace.momentum.max()), rel=0.002),
                "not back at the top yet: the momentum follows the same half cosine, "
                "mirrored, with a tenth of the way left",
            ),
            (
                close(got, float(trace.momentum.min()), rel=0.002),
                "the momentum rises again while the learning rate falls",
            ),
        ],
        "below_tenth": [
            (
                close(got, 0.3 + 0.7 * 0.9, abs_tol=0.01),
                "a straight line would get there at 0.93; the half cosine falls faster in "
                "its middle: solve (1 + cos(pi p)) / 2 = 0.1",
            ),
            (
                close(got, P_TENTH, abs_tol=0.01),
                "that is p, the fraction of the annealing phase; the run's fraction is 0.3 + 0.7 p",
            ),
            (
                close(got, 0.3 + 0.7 * (1 - P_TENTH), abs_tol=0.01),
                "that is where the rate is at 90% of its peak: solve (1 + cos(pi p)) / 2 = "
                "0.1, not 0.9",
            ),
            (got < 0.3, "the rate falls only after the peak, at 30% of the steps"),
        ],
    }
    return next((h for hit, h in hints[key] if hit), "see section 4's anneal formula")


def _hit(key: str, got: float, want: float, total: int) -> bool:
    """The learning rate within 2%, the momentum within 0.004; the peak step within one step
    of PyTorch's float end of the warm-up (so the integer step on either side of it passes);
    the fraction within 0.01 or 2 steps of the run, whichever is larger."""
    if key == "below_tenth":
        return abs(got - want) <= max(0.01, 2 / total)
    if key == "peak_step":
        return abs(got - max(0.0, want)) < 1 - 1e-6
    if key == "momentum_at_tenth":  # 2% would be a fifth of the 0.85-0.95 swing
        return abs(got - want) <= 0.004
    return close(got, want, rel=0.02, abs_tol=1e-9)


def _numbers(prediction: dict, keys: tuple[str, ...], positive: bool = False) -> None:
    require(isinstance(prediction, dict), f"prediction must be a dict with the keys {keys}")
    missing = [k for k in keys if k not in prediction]
    require(not missing, f"prediction has no value for {', '.join(missing)}")
    for k in keys:
        v = prediction[k]
        good = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        require(
            good and (v > 0 if positive else v >= 0),
            f"prediction[{k!r}] = {v!r} must be a "
            + ("positive number (a ratio, e.g. 1.5)" if positive else "number >= 0"),
        )


def check_onecycle_prediction(prediction: dict, trace: pd.DataFrame | None = None) -> str:
    """Exercise 4.1 (predict before you run). Without ``trace``: check the prediction is
    complete and record it. With the real scheduler's ``trace``: every number must match
    (the tolerances of :func:`_hit`); each miss is named and explained."""
    _numbers(prediction, ONECYCLE_KEYS)
    if trace is None:
        return ok(
            "prediction recorded: " + ", ".join(f"{k} {prediction[k]:g}" for k in ONECYCLE_KEYS)
        )
    facts, total = onecycle_facts(trace), len(trace)
    if total < MIN_STEPS:  # a smoke run: a few steps cannot show the shape of the cycle
        return ok(f"only {total} steps in this run: too few to compare; prediction recorded")
    lines, misses = [], 0
    for k in ONECYCLE_KEYS:
        got, want = float(prediction[k]), facts[k]
        hit = _hit(k, got, want, total)
        misses += not hit
        lines.append(
            f"{k}: you said {got:g}, the scheduler gives {want:.6g}"
            + ("" if hit else f" - {_onecycle_hint(k, got, want, trace)}")
        )
    report = "\n  ".join(lines)
    require(misses == 0, f"{misses} of 4 predictions are off:\n  {report}")
    return ok(f"4 of 4 right:\n  {report}")


# --- Exercise 4.2: how far apart does label smoothing let the logits go? ----------------------


def _smoothed_target(k: int, eps: float) -> torch.Tensor:
    """PyTorch's own label-smoothed target for class 0, read off the loss's gradient at equal
    logits (the gradient of cross-entropy is softmax - target)."""
    z = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
    nn.CrossEntropyLoss(label_smoothing=eps)(z, torch.tensor([0])).backward()
    return (1.0 / k - z.grad[0]).detach()


def check_smoothing_gap(fn: Callable[[int, float], float]) -> str:
    """``fn(n_classes, eps)`` -> the gap between the true class's logit and every other
    logit at which ``CrossEntropyLoss(label_smoothing=eps)`` is smallest. Checked against
    PyTorch: the loss is smallest where the softmax equals its target."""
    for k, eps in [(2, 0.1), (6, 0.1), (10, 0.3), (3, 0.5)]:
        got = call(fn, k, eps, name="smoothing_gap")
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"smoothing_gap({k}, {eps}) returned {got!r}: return a number"
            ) from None
        t = _smoothed_target(k, eps)
        want = float(torch.log(t[0] / t[1]))
        if close(got, want, rel=1e-6):
            continue
        if math.isinf(got):
            why = (
                "without smoothing the gap is infinite (the loss falls forever); with "
                "eps > 0 the target itself is not one-hot, so the best softmax is not either"
            )
        elif close(got, math.log((1 - eps) / (eps / (k - 1)))):
            why = (
                "that is the other convention (eps spread over the K-1 wrong classes); "
                "PyTorch spreads eps over all K classes, the true one included"
            )
        elif close(got, math.log((1 - eps) / eps)):
            why = "the target's probabilities depend on K: eps is shared among the classes"
        elif close(got, float(t[0] / t[1])):
            why = "that is the ratio of the target's probabilities; the logit gap is its log"
        else:
            why = (
                "the loss is smallest where softmax(z) equals the smoothed target; "
                "a logit gap is the log of a probability ratio"
            )
        raise ExerciseError(f"K={k}, eps={eps}: the best gap is {want:.4f}, got {got:.4f} - {why}")
    return ok(
        "smoothing_gap matches PyTorch: with K=6 and eps=0.1 the loss stops pushing at a gap "
        f"of {math.log(_smoothed_target(6, 0.1)[0] / _smoothed_target(6, 0.1)[1]):.2f}; "
        "plain cross-entropy would push it to infinity"
    )


# --- Exercise 4.3: class weights from two conditions -----------------------------------------


def check_balanced_weights(fn: Callable[[np.ndarray, int], object]) -> str:
    """``fn(labels, n_classes)`` -> one weight per class such that every class present
    carries the same total weight, N / C (N images, C classes; an absent class: any finite weight).
    Checked by those properties, then against :func:`trashkit.train.class_weights`."""
    cases = [
        (np.array([0, 0, 0, 1]), 2),
        (np.array([0, 1, 1, 2, 2, 2, 2, 2]), 3),
        (np.array([0, 0, 2, 2]), 3),
    ]
    for labels, n in cases:
        got = call(fn, labels, n, name="balanced_weights")
        try:
            w = np.asarray(got, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"balanced_weights returned {got!r}: return one number per "
                "class (a list, array or tensor)"
            ) from None
        require(
            w.shape == (n,),
            f"balanced_weights({labels.tolist()}, {n}) returned "
            f"{w.size} weights: expected one per class ({n})",
        )
        counts = np.bincount(labels, minlength=n)
        present = counts > 0
        case = f"labels {labels.tolist()}, {n} classes, weights {np.round(w, 4).tolist()}"
        require(
            bool(np.all(np.isfinite(w))),
            f"{case}: a class with no image divides by zero - give it any finite weight (it "
            "never multiplies anything; trashkit counts such a class as one image)",
        )
        totals = counts[present] * w[present]
        require(
            np.allclose(totals, totals[0], rtol=1e-5),
            f"{case}: the classes' total weights n_c * w_c are {np.round(totals, 4).tolist()}"
            " - they must be equal, so a class with more images must weigh less per image",
        )
        share = len(labels) / n
        require(
            close(totals[0], share, rel=1e-5),
            f"{case}: each class carries {totals[0]:.4f} in all, not N / C = {share:.4f} - "
            "scale the weights (with every class present they then average 1 over the "
            "images, and the learning rate means what it meant without weights)",
        )
        want = class_weights(labels, n).numpy()
        require(
            np.allclose(w[present], want[present], rtol=1e-5),
            f"{case}: trashkit uses {np.round(want, 4).tolist()}",
        )
    return ok(
        "balanced_weights: every class carries N / C in all; labels [0, 0, 0, 1] "
        "give [0.667, 2.0], as trashkit.train.class_weights"
    )


# --- Exercise 4.4: the focal loss's gradient --------------------------------------------------


def focal_logit_grad(p: float, gamma: float, n_classes: int = 2) -> float:
    """d(focal loss)/d(true-class logit) by autograd, for an image whose true class has
    softmax probability ``p`` (the other classes share the rest equally)."""
    rest = math.log((1 - p) / (n_classes - 1))
    z = torch.tensor([[math.log(p)] + [rest] * (n_classes - 1)], dtype=torch.float64)
    z.requires_grad_(True)
    FocalLoss(gamma)(z, torch.tensor([0])).backward()
    return float(z.grad[0, 0])


def _focal_slips(p: float, g: float) -> dict[str, float]:
    d_dp = g * (1 - p) ** (g - 1) * math.log(p) - (1 - p) ** g / p  # dL/dp, not dL/dz
    return {
        "that is plain cross-entropy's gradient p - 1: the focal factor is missing": p - 1,
        "that is dL/dp; the logit moves p by dp/dz = p(1 - p): multiply by it": d_dp,
        "you treated (1 - p)^gamma as a constant: it depends on p, so the product rule "
        "adds a term": -((1 - p) ** (g + 1)),
        "the sign is flipped: raising the true logit must lower the loss": -d_dp * p * (1 - p),
    }


def check_focal_gradient(fn: Callable[[float, float], float]) -> str:
    """``fn(p, gamma)`` -> d(focal loss)/d(true-class logit) at probability ``p``; compared
    with autograd through :class:`trashkit.train.FocalLoss` (2 and 5 classes)."""
    for p, g in [(0.9, 2.0), (0.25, 2.0), (0.5, 0.0), (0.6, 0.5), (0.05, 3.0)]:
        got = call(fn, p, g, name="focal_grad")
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise ExerciseError(f"focal_grad({p}, {g}) returned {got!r}: return a number") from None
        want = focal_logit_grad(p, g, n_classes=2 if g else 5)  # only p matters, not K
        if close(got, want, rel=1e-6, abs_tol=1e-12):
            continue
        why = next(
            (w for w, v in _focal_slips(p, g).items() if close(got, v, rel=1e-6)),
            "write L = -(1 - p)^gamma log p, differentiate in p, then multiply by dp/dz",
        )
        raise ExerciseError(f"p={p}, gamma={g}: autograd gives {want:.6f}, got {got:.6f} - {why}")
    easy, hard = focal_logit_grad(0.9, 2.0) / (0.9 - 1), focal_logit_grad(0.25, 2.0) / (0.25 - 1)
    return ok(
        f"focal_grad matches autograd: at gamma=2 an easy image (p=0.9) pushes with {easy:.3f} "
        f"of cross-entropy's gradient, a hard one (p=0.25) with {hard:.2f}"
    )


# --- Exercise 4.5: what resolution and depth cost ---------------------------------------------

SCALING_KEYS = ("macs_ratio_resolution", "macs_ratio_depth")
#: how far a prediction may be off: resolution follows from a formula, depth is an estimate
SCALING_TOLERANCE = {"macs_ratio_resolution": 0.03, "macs_ratio_depth": 0.12}


def check_scaling_prediction(prediction: dict, measured: dict | None = None) -> str:
    """Exercise 4.5 (predict before you run): ``macs_ratio_resolution`` is the official MACs
    of one network at the larger of the chapter's two input sides over the smaller;
    ``macs_ratio_depth`` the MACs of depth 1.0 over depth 0.5 at one side. Without
    ``measured`` the prediction is recorded; with it each ratio must be within its tolerance
    (3% and 12%), and each miss is explained."""
    _numbers(prediction, SCALING_KEYS, positive=True)
    if measured is None:
        return ok(
            "prediction recorded: " + ", ".join(f"{k} {prediction[k]:g}" for k in SCALING_KEYS)
        )
    notes = {
        "macs_ratio_resolution": (
            "only the layers that work on feature maps grow with (s2/s1)^2; squeeze-excite's "
            "fully-connected layers and the classifier see a 1x1 map or a vector and cost the "
            "same at every size - split the count in the two parts"
        ),
        "macs_ratio_depth": (
            "depth multiplies the repeats of the blocks inside each stage; the stem, the first "
            "block of every stage and the head stay, so doubling depth costs less than 2x"
        ),
    }
    lines, misses = [], 0
    for k in SCALING_KEYS:
        p, m = float(prediction[k]), float(measured[k])
        off = p / m - 1
        hit = abs(off) <= SCALING_TOLERANCE[k]
        misses += not hit
        verdict = "well predicted" if hit else f"{abs(off):.0%} too {'high' if off > 0 else 'low'}"
        lines.append(f"{k}: predicted {p:.3f}, measured {m:.3f} - {verdict}: {notes[k]}")
    report = "\n  ".join(lines)
    require(misses == 0, f"{misses} of 2 predictions are off:\n  {report}")
    return ok(report)


# --- Design task: half the MACs, almost the F1 ------------------------------------------------


def _measure_run(folder: str | Path) -> dict:
    """Official MACs at the run's input size, epochs and held-out macro-F1 of a run's best.pt
    (its test images; its validation images when it held none back, as both runs then do)."""
    from ..checkpoint import load_checkpoint
    from ..complexity import official_macs
    from ..scoring import score_held_out

    path = Path(folder) / "best.pt"
    require(path.is_file(), f"{folder} holds no best.pt: train the run first")
    ckpt = load_checkpoint(path)
    return {
        "macs": official_macs(ckpt.build_model(), ckpt.image_size),
        "epochs": int(ckpt.config.get("epochs", 0)),
        "f1": score_held_out(ckpt)["f1"],
        "split": (ckpt.config.get("data"), ckpt.config.get("split_seed")),
        "test_fraction": ckpt.config.get("test_fraction", 0.0),
        "borrowed": [
            k for k in ("pretrained", "init_from", "teacher", "teacher_bank") if ckpt.config.get(k)
        ],
    }


def check_design(
    design_dir: str | Path,
    reference_dir: str | Path,
    max_macs_ratio: float = 0.5,
    max_f1_loss: float = 0.05,
) -> str:
    """The design task: the run in ``design_dir`` must cost at most ``max_macs_ratio`` of the
    reference run's official MACs, train no more epochs on the same data and split, and lose
    at most ``max_f1_loss`` test macro-F1, from scratch (no pretrained weights, starting
    checkpoint or teacher). Everything is measured here, from the two
    ``best.pt`` files: the MACs by the official counter, the F1 on each run's test images
    (validation images when the runs held none back)."""
    mine, ref = _measure_run(design_dir), _measure_run(reference_dir)
    require(
        mine["split"] == ref["split"] and mine["test_fraction"] == ref["test_fraction"],
        f"the design run must use the reference run's data and split (data, split_seed, "
        f"test_fraction): {mine['split']}, {mine['test_fraction']} vs {ref['split']}, "
        f"{ref['test_fraction']}",
    )
    ratio, loss = mine["macs"] / ref["macs"], ref["f1"] - mine["f1"]
    fails = [
        f"{k} is set: the design task trains from scratch, with what this chapter taught "
        "(pretrained weights and teachers are chapter 7's tools)"
        for k in mine["borrowed"]
    ]
    if ratio > max_macs_ratio:
        fails.append(
            f"{mine['macs']:,} official MACs are {ratio:.2f}x the reference's {ref['macs']:,} "
            f"(at most {max_macs_ratio}x): lower the width, the depth or the resolution"
        )
    if mine["epochs"] > ref["epochs"]:
        fails.append(f"{mine['epochs']} epochs, more than the reference's {ref['epochs']}")
    if loss > max_f1_loss:
        fails.append(
            f"test macro-F1 {mine['f1']:.4f} is {loss:.4f} below the reference's "
            f"{ref['f1']:.4f} (at most {max_f1_loss}): the cut went where the network needed it"
        )
    require(not fails, "design task not met:\n  " + "\n  ".join(fails))
    return ok(
        f"design task met: {mine['macs']:,} official MACs ({ratio:.2f}x the reference), "
        f"test macro-F1 {mine['f1']:.4f} vs {ref['f1']:.4f} ({-loss:+.4f}), "
        f"{mine['epochs']} epochs"
    )
