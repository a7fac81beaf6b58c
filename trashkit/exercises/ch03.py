"""Checks for chapter 3's exercises (the ShuffleNet V2 guidelines) and its design task.

Each check tries the student's answer on cases a pencil can follow, and when it is wrong says
which case, what was expected, and which common slip the wrong number matches. The expected
values come from trashkit's own instruments (``formulas.mem_1x1``, ``count_layers``), from
torchvision's ShuffleNet V2 unit and from properties of the answer, never from a copy of the
solution.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import torch
from torch import nn

from ..complexity import count_layers, find_escapes, official_macs
from ..complexity import formulas as fm
from ..complexity import guidelines as gl
from .core import ExerciseError, call, close, ok, require

# --- Exercise 3.1: the memory access cost of a group convolution (the paper's Eq. 2) --------

#: (h, w, c1, B, g); the first case gives a different wrong number for every slip below
GROUP_CASES = [(1, 2, 3, 24, 2), (2, 2, 4, 32, 4), (56, 56, 128, 3136 * 128 * 128 // 8, 8)]


def _group_slips(h: int, w: int, c1: int, B: float, g: int) -> dict[float, str]:
    hw = h * w
    return {
        hw * c1 + g * B / c1 + g * B / hw: "the weights of a g-group conv are c1*c2/g, not c1*c2",
        hw * c1 + g * B / c1: "you left out reading the weights",
        hw * c1 + B / c1 + B / (g * hw): "c2 is too small by g: each output channel sees only "
        "c1/g inputs, so B = hw*c1*c2/g",
        hw * c1 + B / c1 + B / hw: "c2 is too small by g (B = hw*c1*c2/g) and so is the weights' "
        "term",
        hw * c1 + B / hw: "you left out writing the output (hw*c2)",
        g * B / c1 + B / hw: "you left out reading the input (hw*c1)",
        B: "that is the FLOPs B, not the memory access",
        c1 + g * B / (hw * c1) + B / hw: "the feature maps have h*w elements per channel",
    }


def check_mem_group(fn: Callable[[int, int, int, float, int], float]) -> str:
    """``fn(h, w, c1, B, g)``: the memory access cost of a 1x1 conv with g groups, c1 input
    channels and B multiply-adds (the output width follows from B), compared with
    ``formulas.mem_1x1`` on the widths it implies."""
    for h, w, c1, B, g in GROUP_CASES:
        c2 = g * B // (h * w * c1)  # the output width the FLOPs imply
        want = fm.mem_1x1(h, w, c1, c2, groups=g)
        got = call(fn, h, w, c1, B, g, name="mem_group")
        if close(got, want):
            continue
        slip = next(
            (why for value, why in _group_slips(h, w, c1, B, g).items() if close(got, value)), ""
        )
        raise ExerciseError(
            f"mem_group(h={h}, w={w}, c1={c1}, B={B}, g={g}): expected {want}, got {got}."
            + (f" It looks like {slip}." if slip else " Start from B = hw*c1*c2/g, solve for c2.")
        )
    hw, c1 = 56 * 56, 128
    B = hw * c1 * c1
    rows = ", ".join(
        f"g={g}: {fn(56, 56, c1, B, g) / fn(56, 56, c1, B, 1):.2f}x" for g in (2, 4, 8)
    )
    return ok(
        "mem_group is the paper's Eq. 2. At 56x56, c1 = 128 and the FLOPs of a dense 128 -> 128 "
        f"conv, the memory access relative to g = 1: {rows}"
    )


# --- Exercise 3.2: widths that keep the FLOPs equal -----------------------------------------

PAPER_G1 = {1: (128, 128), 2: (90, 180), 6: (52, 312), 12: (36, 432)}


def _check_ratio_widths(fn: Callable[[int, int], tuple[float, float]]) -> None:
    for c, r in [(4, 4), (12, 9), (128, 2), (128, 12)]:
        got = call(fn, c, r, name="equal_flops_widths")
        require(
            isinstance(got, tuple) and len(got) == 2,
            f"equal_flops_widths({c}, {r}) returned {got!r}: return a pair (c1, c2)",
        )
        c1, c2 = map(float, got)
        same_flops, same_ratio = close(c1 * c2, c * c, rel=1e-3), close(c2, r * c1, rel=1e-3)
        if same_flops and same_ratio:
            continue
        if same_flops:
            msg = f"c1*c2 = c*c is right but c2/c1 = {c2 / max(c1, 1e-12):.3g}, not r = {r}"
        elif same_ratio:
            msg = f"c2/c1 = r is right but c1*c2 = {c1 * c2:.4g}, not c*c = {c * c}"
        else:
            msg = "neither c1*c2 = c*c nor c2 = r*c1 holds"
        raise ExerciseError(f"equal_flops_widths(c={c}, r={r}) gave ({c1:.3g}, {c2:.3g}): {msg}")


def _check_series_width(fn: Callable[[int, int], float]) -> None:
    for c, n in [(4, 2), (6, 3), (4, 4), (128, 4), (64, 4)]:
        m = call(fn, c, n, name="series_width")
        require(
            isinstance(m, int | float) and m > 0,
            f"series_width({c}, {n}) returned {m!r}: a positive width",
        )
        chain = c * m + (n - 2) * m * m + m * c  # per pixel: c -> m, (n - 2) x m -> m, m -> c
        if not close(chain, c * c, rel=1e-6):
            hint = {
                c / math.sqrt(n): "that treats all n convs as m -> m; the first and last "
                "connect to c channels",
                c / n: "the n convs do not each cost c*m",
            }
            why = next((v for k, v in hint.items() if close(m, k)), "")
            raise ExerciseError(
                f"series_width(c={c}, n={n}) = {m:.4g}: the chain c -> m -> ... -> m -> c then "
                f"costs {chain:.4g} multiply-adds per pixel, not c*c = {c * c}."
                + (f" It looks like {why}." if why else " Add up the n convs' costs.")
            )
        require(
            round(m) == gl._series_width(c, n),
            f"series_width({c}, {n}) = {m:.4g} rounds to {round(m)}, "
            f"the experiments use {gl._series_width(c, n)}: take the positive root",
        )


def check_equal_flops_widths(
    widths: Callable[[int, int], tuple[float, float]], series: Callable[[int, int], float]
) -> str:
    """``widths(c, r) -> (c1, c2)`` with c2 = r*c1 and c1*c2 = c*c (G1's rows);
    ``series(c, n) -> m``: the inner width of n 1x1 convs c -> m -> ... -> m -> c with the
    multiply-adds of one c -> c conv (G3's series rows)."""
    _check_ratio_widths(widths)
    _check_series_width(series)
    rows = []
    for r, (p1, p2) in PAPER_G1.items():
        c1, c2 = widths(128, r)
        rows.append(
            f"1:{r} exact ({c1:.1f}, {c2:.1f}) paper ({p1}, {p2}) FLOPs {p1 * p2 / 128**2 - 1:+.1%}"
        )
    return ok(
        "both right. The paper's G1 rows against the exact widths:\n  "
        + "\n  ".join(rows)
        + f"\n  G3, c = 128: 2 fragments in series m = {series(128, 2):.1f}, "
        f"4 fragments m = {series(128, 4):.1f}"
    )


# --- Exercise 3.3: channel shuffle -----------------------------------------------------------


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


# --- Exercise 3.4: the stride-2 unit's multiply-adds (predict before you run) ----------------

STRIDE2_CASES = [(4, 8, 4, 4), (24, 116, 56, 56), (6, 10, 7, 7)]


def torchvision_stride2_macs(c_in: int, c_out: int, h: int, w: int) -> int:
    """Convolution multiply-adds of torchvision's stride-2 ShuffleNet V2 unit, counted by the
    analytic counter of chapter 2."""
    from torchvision.models.shufflenetv2 import InvertedResidual

    table = count_layers(InvertedResidual(c_in, c_out, 2), (c_in, h, w))
    return int(table[table.category == "conv"].macs.sum())


def _stride2_slips(c_in: int, c_out: int, h: int, w: int) -> dict[int, str]:
    """Wrong counts a slip produces (branch width b, the map each convolution runs on)."""
    full, half = h * w, ((h + 1) // 2) * ((w + 1) // 2)

    def count(b: int, pre: int, post: int, dw_dense: bool = False, left: bool = True) -> int:
        def dw(c: int) -> int:
            return c * c * 9 if dw_dense else c * 9

        right = c_in * b * pre + dw(b) * post + b * b * post
        return right + ((dw(c_in) + c_in * b) * post if left else 0)

    b = c_out // 2
    return {
        count(b, half, half): "every convolution at the output size: the first 1x1 of the right "
        "branch runs before the stride, on the full h x w map",
        count(b, full, full): "every convolution at the input size: the stride-2 depthwise "
        "convolutions halve h and w, and what follows them runs on the smaller map",
        count(b, full, half, left=False): "the left branch is missing: at stride 2 it is a 3x3 "
        "depthwise conv (stride 2) and a 1x1 conv, not an identity",
        count(b, full, half, dw_dense=True): "a depthwise 3x3 conv costs 9 multiply-adds per "
        "output element, not 9 x channels",
        count(c_out, full, half): "each branch has c_out / 2 channels, not c_out",
    }


def check_stride2_macs(fn: Callable[[int, int, int, int], int]) -> str:
    """``fn(c_in, c_out, h, w)``: the convolution multiply-adds of ShuffleNet V2's stride-2
    unit on a c_in x h x w input, compared with the counter on torchvision's unit."""
    for c_in, c_out, h, w in STRIDE2_CASES:
        want = torchvision_stride2_macs(c_in, c_out, h, w)
        got = call(fn, c_in, c_out, h, w, name="stride2_conv_macs")
        if close(got, want):
            continue
        slip = next(
            (why for v, why in _stride2_slips(c_in, c_out, h, w).items() if close(got, v)), ""
        )
        raise ExerciseError(
            f"stride2_conv_macs(c_in={c_in}, c_out={c_out}, h={h}, w={w}): expected {want:,}, "
            f"got {got:,}." + (f" It looks like {slip}." if slip else " Count the 5 convs.")
        )
    big = torchvision_stride2_macs(24, 116, 56, 56)
    return ok(
        f"right on {len(STRIDE2_CASES)} cases; torchvision's first unit of stage 2 (24 -> 116 "
        f"channels, 56x56 -> 28x28) does {big:,} conv multiply-adds"
    )


# --- The design task: the same arithmetic, faster --------------------------------------------

#: the speed the design task asks for, relative to the baseline (median of the repetitions)
TARGET_SPEEDUP = 1.3


def _design_static(stage: nn.Module, baseline: nn.Module) -> tuple[int, int, int, int]:
    """The checks that need no clock: shape, countability, MACs and receptive field."""
    require(isinstance(stage, nn.Module), f"my_stage must be an nn.Module, got {type(stage)}")
    x = torch.zeros(1, *gl.DESIGN_INPUT)
    with torch.no_grad():
        y = call(stage.eval(), x, name="my_stage")
    require(
        isinstance(y, torch.Tensor) and y.shape == x.shape,
        f"my_stage maps {tuple(x.shape)} to {tuple(getattr(y, 'shape', ()))}: the output must "
        "have the input's shape",
    )
    escapes = find_escapes(stage)
    require(not escapes, "layers the official counter cannot see: " + "; ".join(map(str, escapes)))
    macs, base_macs = (
        official_macs(stage, gl.DESIGN_INPUT),
        official_macs(baseline, gl.DESIGN_INPUT),
    )
    require(
        macs >= base_macs,
        f"my_stage does {macs:,} official MACs, fewer than the baseline's {base_macs:,}: the "
        "task is the same arithmetic, faster - not less arithmetic",
    )
    rf, base_rf = gl.receptive_field(stage), gl.receptive_field(baseline)
    require(
        rf >= base_rf,
        f"my_stage sees a {rf}x{rf} input window per output pixel, the baseline {base_rf}x"
        f"{base_rf}: keep at least as much spatial filtering (e.g. one 3x3 conv per unit)",
    )
    return macs, base_macs, rf, base_rf


def check_design(
    stage: nn.Module, repeats: int = 7, runs: int = 20, threads: int | None = 1, warmup: int = 5
) -> str:
    """Grade the design task: same input and output shape as :func:`guidelines.design_baseline`,
    every layer visible to the official counter, at least its official MACs and receptive
    field, and at least :data:`TARGET_SPEEDUP` times its speed on this machine (the two timed
    in turns; the median of ``repeats`` ratios)."""
    baseline = gl.design_baseline()
    macs, base_macs, rf, _ = _design_static(stage, baseline)
    ratios = gl.design_speed(stage, baseline, gl.DESIGN_INPUT, repeats, runs, warmup, threads)
    mid, lo, hi = statistics.median(ratios), min(ratios), max(ratios)
    measured = (
        f"{mid:.2f}x the baseline's speed (range [{lo:.2f}, {hi:.2f}] over {repeats} "
        f"repetitions, {threads or torch.get_num_threads()} thread(s))"
    )
    require(
        mid >= TARGET_SPEEDUP,
        f"my_stage runs at {measured}; the target is {TARGET_SPEEDUP}x. Time its layers "
        "(interleaved_latency) and look for what the baseline does badly: group 1x1 convs "
        "(G2), a depthwise conv and element-wise work over many channels (G4)",
    )
    return ok(
        f"design task met: {measured}, {macs:,} official MACs ({macs / base_macs - 1:+.1%} vs "
        f"the baseline's {base_macs:,}), receptive field {rf}x{rf}"
    )
