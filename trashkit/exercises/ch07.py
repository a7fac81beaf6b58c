"""Checks for chapter 7's exercises (compression) and its design task.

Each check tries the student's answer on cases a pencil (and a calculator for the logarithms)
can follow, compares it with a library or with trashkit's own helper, and when it is wrong
says which case, what was expected, and which common slip the wrong answer matches. The design
task's check measures the network it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .core import ExerciseError, call, close, ok, require

# --- Exercise 7.1: the gradient of the distillation term -------------------------------------

#: (student logits, teacher logits, T, alpha); the first is the chapter's toy
GRAD_CASES: list[tuple[list[float], list[float], float, float]] = [
    ([0.0, 0.0], [2 * math.log(3.0), 0.0], 2.0, 0.5),
    ([1.0, 0.0, -1.0], [3.0, 0.5, -2.0], 4.0, 0.7),
    ([2.0, 0.5, -1.0], [0.0, 3.0, 1.0], 1.0, 0.9),
    ([0.3, -0.2, 0.1, 0.0], [-0.5, 0.8, 0.2, 1.5], 8.0, 0.25),
]


def _softmax(z: Sequence[float], t: float) -> np.ndarray:
    return torch.softmax(torch.tensor(z, dtype=torch.float64) / t, dim=0).numpy()


def soft_grad_reference(student: list[float], teacher: list[float], t: float, a: float) -> list:
    """d/dz_s of the soft term of trashkit's :func:`trashkit.train.kd_loss` (hard loss 0),
    by autograd."""
    from ..train import kd_loss

    z = torch.tensor([student], dtype=torch.float64, requires_grad=True)
    kd_loss(z, torch.tensor([teacher], dtype=torch.float64), torch.tensor(0.0), t, a).backward()
    return z.grad[0].tolist()


def _grad_slips(s, te, t, a) -> list[tuple[np.ndarray, str]]:
    ps, pt = _softmax(s, t), _softmax(te, t)
    return [
        (
            a * t * t * (ps - pt),
            "you kept T^2 but forgot the chain rule through z / T: it "
            "takes one T away, leaving alpha * T",
        ),
        (a * (ps - pt), "the T from T^2 / T is missing: alpha * T * (p_s - p_t)"),
        (
            a * t * (pt - ps),
            "the sign is flipped: the loss falls when the student's "
            "probabilities move towards the teacher's, so the gradient is p_s - p_t",
        ),
        (
            a * t * (_softmax(s, 1.0) - _softmax(te, 1.0)),
            "the probabilities must be the softened ones, softmax(z / T)",
        ),
        (a * (ps - pt) / t, "the factor is alpha * T, not alpha / T"),
    ]


def check_soft_grad(fn: Callable[[list[float], list[float], float, float], Sequence[float]]) -> str:
    """``fn(student_logits, teacher_logits, T, alpha) -> gradient`` of
    ``alpha * T^2 * KL(p_t^T || p_s^T)`` with respect to the student's logits."""
    for s, te, t, a in GRAD_CASES:
        got = call(fn, list(s), list(te), t, a, name="kd_soft_grad")
        try:
            got_arr = np.asarray(got, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"kd_soft_grad returned {got!r}: return one number per class"
            ) from None
        require(
            got_arr.shape == (len(s),),
            f"kd_soft_grad(student={s}, ...) returned {len(got_arr)} numbers for {len(s)} "
            "classes: one partial derivative per student logit",
        )
        want = np.asarray(soft_grad_reference(s, te, t, a))
        if np.allclose(got_arr, want, rtol=1e-5, atol=1e-7):
            continue
        slip = next(
            (
                why
                for v, why in _grad_slips(s, te, t, a)
                if np.allclose(got_arr, v, rtol=1e-5, atol=1e-7)
            ),
            "",
        )
        raise ExerciseError(
            f"kd_soft_grad(student={s}, teacher={te}, T={t}, alpha={a}): expected "
            f"{np.round(want, 6).tolist()}, got {np.round(got_arr, 6).tolist()}."
            + (
                f" It looks like {slip}."
                if slip
                else " Differentiate alpha * T^2 * sum_k p_t,k log(p_t,k / p_s,k) with "
                "p_s = softmax(z_s / T): the log-softmax's derivative, times 1/T."
            )
        )
    s, te, t, a = GRAD_CASES[0]
    return ok(
        f"kd_soft_grad equals the autograd gradient of trashkit's kd_loss on {len(GRAD_CASES)} "
        f"cases; the toy: {np.round(soft_grad_reference(s, te, t, a), 6).tolist()}"
    )


# --- Exercise 7.3: which channels survive, ranked as a coupled group --------------------------


def _group(seed: int, out_ch: int, in_ch: int, nxt: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(out_ch, in_ch, 3, 3, generator=g) * 0.3,
        torch.rand(out_ch, generator=g) * 2,
        torch.randn(nxt, out_ch, 1, 1, generator=g),
    )


def _designed_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Channel 0 has the largest filter but a tiny batch-norm weight and tiny outgoing
    weights; channel 2 a small filter that the next layer reads strongly."""
    conv = torch.tensor([2.0, 1.0, 0.5, 1.5, 0.2]).view(5, 1, 1, 1).repeat(1, 1, 2, 2)
    bn = torch.tensor([0.1, 1.0, 1.0, 0.2, 0.5])
    nxt = torch.tensor([0.1, 2.0, 3.0, 0.2, 0.5]).view(1, 5, 1, 1).repeat(3, 1, 1, 1)
    return conv, bn, nxt


def _l1_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Channel 0: one large weight (squared sum 9, absolute sum 3); channel 1: four medium
    ones (squared sum 5.76, absolute sum 4.8); channel 2: nothing."""
    conv = torch.zeros(3, 1, 2, 2)
    conv[0, 0, 0, 0] = 3.0
    conv[1] = 1.2
    return conv, torch.zeros(3), torch.zeros(2, 3, 1, 1)


#: (conv weight, batch-norm weight, next conv's weight, n_keep)
GROUP_CASES = [(*_designed_case(), 2), (*_l1_case(), 1), (*_group(1, 8, 3, 5), 3)]


def group_importance(conv: torch.Tensor, bn: torch.Tensor, nxt: torch.Tensor) -> np.ndarray:
    """Per channel: the squared L2 norm of every slice the channel owns (torch-pruning's
    ``MagnitudeImportance(p=2)`` sums these per slice and averages over the group)."""
    c = conv.double().flatten(1).pow(2).sum(1)
    n = nxt.double().transpose(0, 1).flatten(1).pow(2).sum(1)
    return (c + bn.double().pow(2) + n).numpy()


def _top(score: np.ndarray, n: int, largest: bool = True) -> list[int]:
    order = np.argsort(-score if largest else score, kind="stable")
    return sorted(int(i) for i in order[:n])


def _group_slips(conv, bn, nxt, n) -> list[tuple[list[int], str]]:
    own = conv.double().flatten(1).norm(dim=1).numpy()
    l1 = (
        conv.double().flatten(1).abs().sum(1)
        + bn.double().abs()
        + nxt.double().transpose(0, 1).flatten(1).abs().sum(1)
    ).numpy()
    total = group_importance(conv, bn, nxt)
    return [
        (
            _top(own, n),
            "you ranked by the channel's own filter alone (the toy's criterion); rank the "
            "whole group: filter, batch-norm weight and the next layer's input column",
        ),
        (
            _top(l1, n),
            "you summed absolute values (L1); the importance here is the sum of SQUARED "
            "weights over the group",
        ),
        (_top(total, n, largest=False), "you kept the least important channels"),
        (
            _top(total, len(total) - n, largest=False),
            "those are the channels to DROP; return the ones to keep",
        ),
    ]


def check_group_keep(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], Sequence[int]],
) -> str:
    """``fn(conv_weight, bn_weight, next_weight, n_keep) -> indices`` of the channels kept."""
    for conv, bn, nxt, n in GROUP_CASES:
        got = call(fn, conv.clone(), bn.clone(), nxt.clone(), n, name="group_keep")
        try:
            got_list = sorted(int(i) for i in got)
        except (TypeError, ValueError):
            raise ExerciseError(
                f"group_keep returned {got!r}: return a list of channel indices (ints)"
            ) from None
        want = _top(group_importance(conv, bn, nxt), n)
        if got_list == want:
            continue
        slip = next((why for v, why in _group_slips(conv, bn, nxt, n) if v == got_list), "")
        raise ExerciseError(
            f"group_keep(conv with {len(conv)} filters, n_keep={n}): expected {want}, got "
            f"{got_list} (group importances "
            f"{np.round(group_importance(conv, bn, nxt), 3).tolist()})."
            + (f" It looks like {slip}." if slip else "")
        )
    return ok(
        f"group_keep right on {len(GROUP_CASES)} groups (in the first, the largest filter "
        "goes: the rest of its group is tiny)"
    )


# --- Exercise 7.4: the fixed-point multiplier ---------------------------------------------------

#: real multipliers s_x * s_w / s_y to write as m0 / 2**shift (the first is the chapter's toy)
MULTIPLIERS = [0.05, 0.75, 0.0003, 0.5, 0.999, 1.7e-6]


def check_fixed_point(fn: Callable[[float], tuple[int, int]]) -> str:
    """``fn(M) -> (m0, shift)`` with ``2**30 <= m0 < 2**31`` and ``m0 / 2**shift`` the
    closest such number to ``M``."""
    from ..compress.quant import quantize_multiplier

    for m in MULTIPLIERS:
        got = call(fn, m, name="fixed_point")
        require(
            isinstance(got, tuple | list) and len(got) == 2,
            f"fixed_point({m}) returned {got!r}: return (m0, shift)",
        )
        m0, shift = got
        want = quantize_multiplier(m)
        require(
            isinstance(m0, int | np.integer) and isinstance(shift, int | np.integer),
            f"fixed_point({m}) returned m0={m0!r}, shift={shift!r}: both must be integers "
            "(an integer-only kernel has no float to multiply by)",
        )
        if (int(m0), int(shift)) == want:
            continue
        value = int(m0) / 2 ** int(shift) if int(shift) >= 0 else float("nan")
        if not 2**30 <= int(m0) < 2**31:
            why = (
                f"m0 = {m0} is not in [2^30, 2^31): normalise it (double M until it lies in "
                "[0.5, 1), counting the doublings in the shift) so that all 31 bits carry "
                "precision"
                if int(m0) < 2**30
                else f"m0 = {m0} does not fit the 31 bits of an int32 (2^31 = {2**31})"
            )
        elif close(value, m, rel=1e-8):
            why = "m0 is one step off: round M * 2**shift to the nearest integer, not down"
        else:
            why = f"m0 / 2**shift = {value:.9g}, not {m}: check the shift"
        raise ExerciseError(f"fixed_point({m}): expected {want}, got {(m0, shift)}. {why}.")
    m0, shift = quantize_multiplier(MULTIPLIERS[0])
    return ok(
        f"fixed_point matches trashkit's quantize_multiplier on {len(MULTIPLIERS)} multipliers; "
        f"the toy: 0.05 = {m0} / 2^{shift}"
    )


# --- Exercise 7.2: unstructured pruning (predict before you run) -------------------------------

PREDICTION_KEYS = ("macs_ratio", "nonzero_ratio", "speedup")


def record_prediction(predicted: dict) -> str:
    """Check the prediction's form before anything is measured."""
    require(
        isinstance(predicted, dict) and set(predicted) == set(PREDICTION_KEYS),
        f"predicted = {predicted!r}: give a dict with exactly the keys {list(PREDICTION_KEYS)}",
    )
    for k, v in predicted.items():
        require(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
            f"predicted[{k!r}] = {v!r}: give a positive number (a ratio to the original)",
        )
    return ok(
        "prediction recorded: MACs x{macs_ratio:.2f}, non-zero weights x{nonzero_ratio:.2f}, "
        "speed-up x{speedup:.2f}".format(**predicted)
    )


def check_prediction(predicted: dict, measured: dict, tolerance: float = 1.3) -> str:
    """Compare the prediction with the measurement: the MACs and non-zero ratios within 0.02,
    the speed-up within a factor ``tolerance`` (timings are noisy)."""
    record_prediction(predicted)
    wrong = []
    if abs(predicted["macs_ratio"] - measured["macs_ratio"]) > 0.02:
        wrong.append(
            f"MACs: you said x{predicted['macs_ratio']:.2f}, the official counter says "
            f"x{measured['macs_ratio']:.2f}. A zero weight is still multiplied: the counter "
            "(like a dense kernel) counts the layer's shape, not its values"
        )
    if abs(predicted["nonzero_ratio"] - measured["nonzero_ratio"]) > 0.02:
        wrong.append(
            f"non-zero weights: you said x{predicted['nonzero_ratio']:.2f}, measured "
            f"x{measured['nonzero_ratio']:.2f} of the conv and linear weights: the amount "
            "pruned is exactly what was asked"
        )
    s, m = predicted["speedup"], measured["speedup"]
    if not m / tolerance <= s <= m * tolerance:
        wrong.append(
            f"speed-up: you said x{s:.2f}, measured x{m:.2f} (interleaved). A dense kernel "
            "multiplies the zeros as fast as any other number; only a sparse kernel (and a "
            "sparsity it can exploit) would skip them"
        )
    require(not wrong, "Not quite. " + " | ".join(wrong))
    return ok(
        f"your prediction holds: MACs x{measured['macs_ratio']:.2f}, non-zero weights "
        f"x{measured['nonzero_ratio']:.2f}, speed-up x{m:.2f}"
    )


# --- Design task: half the MACs, a better score ---------------------------------------------

#: the design task's targets: at most this fraction of the original's official MACs ...
DESIGN_MACS = 0.5
#: ... and a MACs-edition score at least this much lower (better) than the original's
DESIGN_GAIN = 0.01


def check_design(model: nn.Module, ctx, original_f1: float | None = None) -> str:
    """Measure ``model`` on the chapter's baseline ``ctx``: every layer visible to the
    official counter, official MACs at ``ctx.size`` at most :data:`DESIGN_MACS` of the
    original's, and a MACs-edition score (:func:`trashkit.scoring.score_macs`, macro-F1 on
    ``ctx``'s evaluation images) at least :data:`DESIGN_GAIN` below the original's."""
    from ..complexity import find_escapes, official_macs
    from ..compress.report import eval_f1
    from ..scoring import score_macs

    require(
        isinstance(model, nn.Module),
        f"my_model is a {type(model).__name__}: give a torch.nn.Module (an ONNX session has "
        "no official MACs)",
    )
    escapes = find_escapes(model)
    if escapes:
        raise ExerciseError(
            f"the official counter cannot see {len(escapes)} module(s) of my_model "
            f"({escapes[0]}): its MACs would be under-counted (chapter 2)"
        )
    base_macs, macs = official_macs(ctx.model, ctx.size), official_macs(model, ctx.size)
    base_f1 = (
        original_f1
        if original_f1 is not None
        else eval_f1(ctx.model, ctx.eval_images, ctx.eval_labels, ctx.n_classes)
    )
    f1 = eval_f1(model, ctx.eval_images, ctx.eval_labels, ctx.n_classes)
    base_score, score = score_macs(base_f1, base_macs), score_macs(f1, macs)
    measured = (
        f"{macs:,} official MACs ({macs / base_macs:.0%} of the original's {base_macs:,}), "
        f"macro-F1 {f1:.4f} (original {base_f1:.4f}) on the {len(ctx.eval_labels)} "
        f"{ctx.eval_split} images, MACs-edition score {score:.4f} (original {base_score:.4f})"
    )
    require(
        macs <= DESIGN_MACS * base_macs,
        f"my_model has {measured}: the target is at most {DESIGN_MACS:.0%} of the MACs. "
        "Prune further (the sensitivity scan shows what each fraction costs) or start from a "
        "smaller student",
    )
    jumped = f1 < 0.5 <= base_f1
    require(
        score <= base_score - DESIGN_GAIN,
        f"my_model has {measured}: the score must be at least {DESIGN_GAIN} lower - the "
        "macro-F1 lost costs more than the MACs saved"
        + (" (F1 fell below 0.5, where the F1 term jumps to 1)" if jumped else "")
        + ". Fine-tune longer, prune less, or fine-tune with a better teacher",
    )
    return ok(f"design task met: {measured}")
