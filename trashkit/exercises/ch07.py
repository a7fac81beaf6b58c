"""Checks for chapter 7's exercises (compression: distillation, pruning, int8, latency).

Each check tries the student's answer on cases a pencil (and a calculator for the logarithms)
can follow, and when it is wrong says which case, what was expected, and which common slip
the wrong answer matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..compress.quant import affine_params
from .core import ExerciseError, call, close, ok, require

# --- Exercise 7.1: the distillation loss by hand ----------------------------------------------

#: (student logits, teacher logits, hard loss, T, alpha); the first is the chapter's toy
KD_CASES: list[tuple[list[float], list[float], float, float, float]] = [
    ([0.0, 0.0], [2 * math.log(3.0), 0.0], math.log(2.0), 2.0, 0.5),
    ([1.0, 0.0, -1.0], [1.0, 0.0, -1.0], 0.5, 4.0, 0.7),
    ([2.0, 0.5, -1.0], [0.0, 3.0, 1.0], 1.2, 3.0, 0.9),
    ([0.3, -0.2], [-0.5, 0.8], 0.7, 1.0, 0.25),
]


def _softmax(z: Sequence[float], t: float) -> list[float]:
    return torch.softmax(torch.tensor(z, dtype=torch.float64) / t, dim=0).tolist()


def _kl(p: Sequence[float], q: Sequence[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def kd_reference(
    student: list[float], teacher: list[float], hard: float, t: float, alpha: float
) -> float:
    """trashkit's own loss (:func:`trashkit.train.kd_loss`) on one image."""
    from ..train import kd_loss

    return kd_loss(
        torch.tensor([student]), torch.tensor([teacher]), torch.tensor(hard), t, alpha
    ).item()


def _kd_slips(
    s: list[float], te: list[float], hard: float, t: float, a: float
) -> list[tuple[float, str]]:
    ps, pt = _softmax(s, t), _softmax(te, t)
    kl = _kl(pt, ps)
    return [
        (
            a * kl + (1 - a) * hard,
            "you left out the T^2 factor (it keeps the soft term's "
            "gradients on the scale of the hard loss's)",
        ),
        (a * t * kl + (1 - a) * hard, "the factor is T squared, not T"),
        (
            a * t * t * _kl(ps, pt) + (1 - a) * hard,
            "the KL is the wrong way round: it is "
            "KL(teacher || student), the teacher's "
            "probabilities weight the log-ratio",
        ),
        (
            (1 - a) * t * t * kl + a * hard,
            "alpha weighs the SOFT (teacher) term, 1 - alpha the hard one",
        ),
        (
            a * t * t * _kl(_softmax(te, 1.0), ps) + (1 - a) * hard,
            "the teacher's logits must be divided by T too",
        ),
        (
            a * t * t * _kl(pt, _softmax(s, 1.0)) + (1 - a) * hard,
            "the student's logits must be divided by T too",
        ),
    ]


def check_kd_loss(fn: Callable[[list[float], list[float], float, float, float], float]) -> str:
    """``fn(student_logits, teacher_logits, hard_loss, T, alpha) -> loss`` for one image."""
    for case in KD_CASES:
        got = call(fn, *case, name="kd_by_hand")
        require(
            isinstance(got, int | float) and not isinstance(got, bool),
            f"kd_by_hand{case} returned {got!r}: return one number",
        )
        want = kd_reference(*case)
        if close(got, want, rel=1e-5, abs_tol=1e-7):
            continue
        slip = next(
            (why for value, why in _kd_slips(*case) if close(got, value, rel=1e-5, abs_tol=1e-7)),
            "",
        )
        s, te, hard, t, a = case
        raise ExerciseError(
            f"kd_by_hand(student={s}, teacher={te}, hard={hard:.4f}, T={t}, alpha={a}): "
            f"expected {want:.6f}, got {got}."
            + (
                f" It looks like {slip}."
                if slip
                else " Soften both with softmax(z / T), take "
                "KL(p_teacher || p_student), multiply by "
                "alpha * T^2, add (1 - alpha) * hard."
            )
        )
    return ok(
        f"kd_by_hand equals trashkit's kd_loss on {len(KD_CASES)} cases; the toy: "
        f"{kd_reference(*KD_CASES[0]):.6f}"
    )


# --- Exercise 7.2: which filters survive structured pruning? ---------------------------------


def _weights(rows: list[list[float]]) -> torch.Tensor:
    """Filters of a conv with 1 input channel and a 2x2 kernel, one row per filter."""
    return torch.tensor(rows).view(len(rows), 1, 2, 2)


#: (weight, n_keep); filter 0 vs 1 of the first case: L2 prefers 0, L1 prefers 1
KEEP_CASES: list[tuple[torch.Tensor, int]] = [
    (_weights([[3.0, 0, 0, 0], [-1.5, -1.5, -1.5, 0], [0.1, 0.1, 0.1, 0.1], [-2.8, 0, 0, 0]]), 2),
    (_weights([[1.0, 1, 1, 1], [0.5, 0, 0, 0], [-2.0, 0, 0, 0]]), 1),
    (
        _weights([[0.1, 0, 0, 0], [0, 0.2, 0, 0], [0, 0, 0.3, 0], [0, 0, 0, -0.4], [0.5, 0, 0, 0]]),
        3,
    ),
]


def keep_reference(weight: torch.Tensor, n_keep: int) -> list[int]:
    """Indices (ascending) of the ``n_keep`` filters with the largest L2 norm."""
    size = torch.linalg.vector_norm(weight.reshape(len(weight), -1), dim=1)
    return sorted(torch.topk(size, n_keep).indices.tolist())


def _keep_slips(weight: torch.Tensor, n_keep: int) -> dict[tuple[int, ...], str]:
    flat = weight.flatten(1)
    l1 = sorted(torch.argsort(flat.abs().sum(1), descending=True)[:n_keep].tolist())
    small = sorted(torch.argsort(flat.norm(dim=1))[:n_keep].tolist())
    signed = sorted(torch.argsort(flat.sum(1), descending=True)[:n_keep].tolist())
    drop = sorted(torch.argsort(flat.norm(dim=1))[: len(flat) - n_keep].tolist())
    return {
        tuple(l1): "you ranked by the L1 norm (sum of |w|); the criterion here is the L2 "
        "norm, sqrt(sum of w^2), which favours one large weight over many small",
        tuple(small): "you kept the SMALLEST filters: keep the largest, drop the smallest",
        tuple(signed): "you summed the signed weights: a large negative weight is as "
        "important as a large positive one - use the norm",
        tuple(drop): "those are the indices to DROP; return the ones to keep",
    }


def check_keep_channels(fn: Callable[[torch.Tensor, int], list[int]]) -> str:
    """``fn(weight, n_keep) -> indices`` of the filters magnitude pruning keeps."""
    for weight, n_keep in KEEP_CASES:
        got = call(fn, weight.clone(), n_keep, name="keep_channels")
        try:
            got_list = sorted(int(i) for i in got)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"keep_channels returned {got!r}: return a list of filter indices (ints)"
            ) from None
        want = keep_reference(weight, n_keep)
        if got_list == want:
            continue
        slip = _keep_slips(weight, n_keep).get(tuple(got_list), "")
        raise ExerciseError(
            f"keep_channels(weight with {len(weight)} filters {weight.flatten(1).tolist()}, "
            f"n_keep={n_keep}): expected {want}, got {got_list}."
            + (
                f" It looks like {slip}."
                if slip
                else " Compute each filter's L2 norm over all its weights, keep the n_keep largest."
            )
        )
    return ok(f"keep_channels right on {len(KEEP_CASES)} layers (one where L1 and L2 disagree)")


# --- Exercise 7.3: affine int8 quantization parameters ---------------------------------------

#: (lo, hi): the chapter's toy, a positive-only range, a negative-only range, a symmetric one
QPARAM_CASES = [(-0.51, 2.04), (0.5, 2.55), (-1.0, -0.2), (-1.0, 1.0)]


def _qparam_slips(lo: float, hi: float) -> list[tuple[tuple[float, float], str]]:
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
    s = (hi0 - lo0) / 255
    return [
        (
            ((hi0 - lo0) / 256, round(-lo0 / ((hi0 - lo0) / 256))),
            "there are 255 steps between 0 and 255, not 256: scale = (hi - lo) / 255",
        ),
        (
            ((hi - lo) / 255, round(-lo / ((hi - lo) / 255))),
            "the range must include 0 (so that 0 is exact): use min(lo, 0) and max(hi, 0)",
        ),
        ((s, -lo0 / s), "the zero point must be an integer: round it"),
        ((s, round(lo0 / s)), "the zero point is -lo / scale (it is where 0.0 lands)"),
        ((1 / s, round(-lo0 * s)), "scale is real units per integer step: (hi - lo) / 255"),
    ]


def check_affine_params(fn: Callable[[float, float], tuple[float, int]]) -> str:
    """``fn(lo, hi) -> (scale, zero_point)`` for uint8 (0..255), ONNX Runtime's rules."""
    for lo, hi in QPARAM_CASES:
        got = call(fn, lo, hi, name="affine_qparams")
        require(
            isinstance(got, tuple | list) and len(got) == 2,
            f"affine_qparams({lo}, {hi}) returned {got!r}: return (scale, zero_point)",
        )
        want = affine_params(lo, hi)
        integer = isinstance(got[1], int) or (isinstance(got[1], float) and got[1].is_integer())
        if close(got[0], want[0], rel=1e-9) and got[1] == want[1] and integer:
            continue
        slips = [
            (value, why)
            for value, why in _qparam_slips(lo, hi)
            if not (close(value[0], want[0], rel=1e-9) and value[1] == want[1])
        ]
        slip = next(
            (
                why
                for (sc, zp), why in slips
                if close(got[0], sc, rel=1e-9) and close(got[1], zp, rel=1e-9)
            ),
            "",
        )
        raise ExerciseError(
            f"affine_qparams(lo={lo}, hi={hi}): expected scale {want[0]:.6g}, zero point "
            f"{want[1]}; got {tuple(got)}."
            + (
                f" It looks like {slip}."
                if slip
                else " scale = (max(hi,0) - min(lo,0)) / 255, "
                "zero_point = round(-min(lo,0) / scale)."
            )
        )
    return ok(
        f"affine_qparams matches ONNX Runtime's rule on {len(QPARAM_CASES)} ranges; the "
        "toy: scale 0.01, zero point 51"
    )


# --- Exercise 7.4: the speed-up of fewer MACs (predict before you run) -----------------------


def record_speedup_prediction(speedup: float) -> str:
    """Check that a predicted speed-up is a positive number, before anything is timed."""
    _check_positive(speedup)
    return ok(f"prediction recorded: the pruned network {speedup:.2f}x as fast as the original")


def _check_positive(speedup: float) -> None:
    require(
        isinstance(speedup, int | float) and not isinstance(speedup, bool) and speedup > 0,
        f"predicted_speedup = {speedup!r}: give a positive number (1.0 = no faster, 2.0 = "
        "twice as fast)",
    )


def check_speedup_prediction(speedup: float, kept: float, measured: float) -> str:
    """Compare a predicted speed-up with the measured one; explain rather than reject (timings
    are noisy), so only a prediction that is not a positive number is an error."""
    _check_positive(speedup)
    naive = 1 / kept
    if abs(speedup - measured) <= 0.15 * measured:
        verdict = "close"
    elif close(speedup, naive, rel=0.1):
        verdict = (
            f"you predicted from the MACs alone (1 / {kept:.2f} = {naive:.2f}x); time "
            "is also spent moving memory, in per-layer overheads and in layers pruning "
            "does not shrink, so fewer MACs buy less time than their ratio (chapter 2)"
        )
    elif speedup > measured:
        verdict = "too optimistic: MACs are not latency on this CPU (chapter 2)"
    else:
        verdict = "too pessimistic: the pruned layers were a large part of the time here"
    return ok(
        f"you predicted {speedup:.2f}x; measured {measured:.2f}x for {kept:.0%} of the "
        f"MACs (MACs alone would say {naive:.2f}x) - {verdict}"
    )
