"""Checks for chapter 3's exercises (the ShuffleNet V2 guidelines).

Each check tries the student's answer on cases a pencil can follow, and when it is wrong says
which case, what was expected, and which common slip the wrong number matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..complexity import formulas as fm
from .core import ExerciseError, call, close, ok, require

# --- Exercise 3.1: the memory access cost of a 1x1 conv and its lower bound ------------------

#: the first case has a different wrong answer for every slip below, so the message is exact
MEM_CASES = [(3, 1, 2, 5), (2, 2, 2, 2), (2, 2, 1, 4), (56, 56, 128, 128), (56, 56, 36, 432)]


def _mem_slips(h: int, w: int, c1: int, c2: int) -> dict[int, str]:
    hw = h * w
    return {
        hw * (c1 + c2): "you left out the weights (c1*c2 elements are read too)",
        hw * c1 * c2: "that is the FLOPs B = hw*c1*c2, not the memory access",
        hw * c1 + c1 * c2: "you left out writing the output (hw*c2)",
        hw * c2 + c1 * c2: "you left out reading the input (hw*c1)",
        (c1 + c2) + c1 * c2: "the feature maps have h*w elements per channel: multiply by hw",
    }


def check_mem_1x1(
    mem: Callable[[int, int, int, int], float], bound: Callable[[int, int, float], float]
) -> str:
    """``mem(h, w, c1, c2)`` is the paper's MAC of a 1x1 conv; ``bound(h, w, B)`` its lower
    bound 2 sqrt(hwB) + B/(hw) for B = hw c1 c2 FLOPs (multiply-adds)."""
    for h, w, c1, c2 in MEM_CASES:
        got, want = call(mem, h, w, c1, c2, name="mem_1x1"), fm.mem_1x1(h, w, c1, c2)
        if not close(got, want):
            slip = _mem_slips(h, w, c1, c2).get(
                round(got) if isinstance(got, int | float) else None, ""
            )
            raise ExerciseError(
                f"mem_1x1(h={h}, w={w}, c1={c1}, c2={c2}): expected {want}, "
                f"got {got}."
                + (f" It looks like {slip}." if slip else " Count input + output + weights.")
            )
        flops = h * w * c1 * c2
        got_b, want_b = call(bound, h, w, flops, name="mem_bound"), fm.mem_lower_bound(h, w, flops)
        if not close(got_b, want_b, rel=1e-6):
            hint = (
                " You returned the bound without the weights' B/(hw) term."
                if close(got_b, 2 * math.sqrt(h * w * flops))
                else " Use 2*sqrt(h*w*B) + B/(h*w)."
            )
            raise ExerciseError(
                f"mem_bound(h={h}, w={w}, B={flops}): expected {want_b:.1f}, got {got_b}.{hint}"
            )
        require(
            got >= got_b - 1e-6,
            f"mem_1x1 {got} is below mem_bound {got_b} for c1={c1}, c2={c2}: the bound must hold",
        )
    r = fm.mem_1x1(56, 56, 36, 432) / fm.mem_1x1(56, 56, 128, 128)
    return ok(
        f"mem_1x1 and mem_bound right on {len(MEM_CASES)} cases; at 56x56 the 1:12 "
        f"pair moves {r:.2f}x the elements of 1:1 for 5% fewer FLOPs"
    )


# --- Exercise 3.2: widths that keep the FLOPs equal -----------------------------------------

PAPER_G1 = {1: (128, 128), 2: (90, 180), 6: (52, 312), 12: (36, 432)}


def check_equal_flops_widths(fn: Callable[[int, int], tuple[float, float]]) -> str:
    """``fn(c, r) -> (c1, c2)`` with c2 = r*c1 and c1*c2 = c*c (the FLOPs of c -> c)."""
    for c, r in [(4, 4), (12, 9), (128, 2), (128, 12)]:
        got = call(fn, c, r, name="equal_flops_widths")
        require(
            isinstance(got, tuple) and len(got) == 2,
            f"equal_flops_widths({c}, {r}) returned {got!r}: return a pair (c1, c2)",
        )
        c1, c2 = map(float, got)
        want = (c / math.sqrt(r), c * math.sqrt(r))
        if close(c1, want[0], rel=1e-3) and close(c2, want[1], rel=1e-3):
            continue
        if close(c1 * c2, c * c, rel=1e-3):
            msg = "c1*c2 is right but c2/c1 is not r"
        elif close(c2 / max(c1, 1e-12), r, rel=1e-3):
            msg = f"the ratio is right but c1*c2 = {c1 * c2:.0f}, not c*c = {c * c}"
        else:
            msg = "solve c1 * c2 = c^2 with c2 = r * c1"
        raise ExerciseError(
            f"equal_flops_widths(c={c}, r={r}): expected "
            f"({want[0]:.2f}, {want[1]:.2f}), got ({c1:.2f}, {c2:.2f}): {msg}"
        )
    rows = []
    for r, (p1, p2) in PAPER_G1.items():
        c1, c2 = fn(128, r)
        rows.append(
            f"1:{r} exact ({c1:.1f}, {c2:.1f}) paper ({p1}, {p2}) FLOPs {p1 * p2 / 128**2 - 1:+.1%}"
        )
    return ok(
        "equal_flops_widths right. The paper's G1 rows against the exact widths:\n  "
        + "\n  ".join(rows)
    )


# --- Exercise 3.3: predict each guideline on this machine ------------------------------------

VERDICTS = ("holds", "partly", "does not hold")


def record_predictions(predictions: dict[str, str]) -> str:
    """Check that a prediction is given for G1-G4, each one of :data:`VERDICTS`."""
    require(
        isinstance(predictions, dict),
        "predictions must be a dict such as {'G1': 'holds', 'G2': 'partly', ...}",
    )
    missing = [g for g in ("G1", "G2", "G3", "G4") if g not in predictions]
    require(not missing, f"no prediction for {', '.join(missing)}")
    bad = {g: v for g, v in predictions.items() if v not in VERDICTS}
    require(not bad, f"{bad} - each prediction must be one of {VERDICTS}")
    return ok(
        "predictions recorded: " + ", ".join(f"{g} {v}" for g, v in sorted(predictions.items()))
    )


def check_predictions(predictions: dict[str, str], summary) -> str:
    """Compare the predictions with the measured verdicts (``guidelines.summary_table``).

    Timings are noisy and machines differ, so a wrong prediction is explained, not rejected.
    """
    record_predictions(predictions)
    lines, hits = [], 0
    for label, row in summary.iterrows():
        g = str(label).split()[0]
        hit = predictions[g] == row["verdict"]
        hits += hit
        lines.append(
            f"{label}: predicted {predictions[g]}, measured {row['verdict']} "
            f"({row['measured']}){'' if hit else ' <- paper: ' + row['paper']}"
        )
    return ok(f"{hits} of {len(lines)} predictions matched:\n  " + "\n  ".join(lines))


# --- Exercise 3.4: channel shuffle -----------------------------------------------------------


def check_channel_shuffle(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> str:
    """``fn(x, groups)`` must equal ``nn.ChannelShuffle(groups)(x)`` (ShuffleNet's shuffle)."""
    for c, g in [(4, 2), (6, 3), (6, 2), (12, 4)]:
        x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1).expand(2, c, 3, 2).clone()
        got = call(fn, x, g, name="channel_shuffle")
        require(
            isinstance(got, torch.Tensor) and got.shape == x.shape,
            f"channel_shuffle on shape {tuple(x.shape)} returned "
            f"{getattr(got, 'shape', got)!r}: the shape must not change",
        )
        want = nn.ChannelShuffle(g)(x)
        if torch.equal(got, want):
            continue
        order = [int(v) for v in got[0, :, 0, 0]]
        expect = [int(v) for v in want[0, :, 0, 0]]
        if order == list(range(c)):
            why = "nothing moved: after the view (n, g, c/g, h, w) transpose axes 1 and 2"
        elif c // g != g and torch.equal(got, nn.ChannelShuffle(c // g)(x)):
            why = f"you shuffled with {c // g} groups: view as (n, groups, c // groups, h, w)"
        else:
            why = "view (n, g, c/g, h, w), transpose(1, 2), then flatten back to c channels"
        raise ExerciseError(
            f"{c} channels, {g} groups: channel order should be {expect}, got {order} - {why}"
        )
    return ok(
        "channel_shuffle matches nn.ChannelShuffle; channel k of group i moves to "
        "position k*groups + i, so every group of the next conv sees every branch"
    )
