"""Checks for chapter 2's exercises (FLOPs and MACs).

Each check tries the student's answer on cases a pencil can follow, and when it is wrong says
which case, what was expected, and which common slip the wrong number matches.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..complexity import formulas as fm
from .core import ExerciseError, call, close, ok, require

# --- Exercise 2.1: a linear layer (the matrix-vector product of the slide) ------------------

LINEAR_CASES = [(3, 3, False), (1, 1, False), (8, 1, False), (4, 2, True), (576, 6, True)]


def _linear_slips(fin: int, fout: int, bias: bool) -> dict[tuple[int, int], str]:
    """Wrong (MACs, FLOPs) pairs a student is likely to produce, with what each means."""
    b = fout if bias else 0
    macs, flops = fin * fout + b, fout * (2 * fin - 1) + b
    return {
        (fout * (fin - 1), flops): "your MACs count the additions (n - 1 per output), as the "
        "lecture slide does for the 3x3 case ('6'): a MAC is one "
        "multiply-and-accumulate, so count the multiplications",
        (macs, 2 * macs): "your FLOPs are 2 x MACs; a dot product of length n has n "
        "multiplications but only n - 1 additions",
        (macs - b, flops - b): "you left the bias out: it adds one addition per output "
        "(1 FLOP, and 1 MAC by ptflops' convention)",
        (macs, flops - b): "you counted the bias as a MAC but not as a FLOP",
        (fin * fout, fin * fout): "FLOPs equal to MACs: FLOPs count the additions too",
    }


def check_linear_counts(fn: Callable[[int, int, bool], tuple[int, int]]) -> str:
    """``fn(fin, fout, bias) -> (MACs, FLOPs)`` of ``nn.Linear(fin, fout, bias)`` on one
    vector, under the chapter's rules."""
    for fin, fout, bias in LINEAR_CASES:
        got = call(fn, fin, fout, bias, name="linear_counts")
        require(
            isinstance(got, tuple) and len(got) == 2,
            f"linear_counts({fin}, {fout}, {bias}) returned {got!r}: return a pair (MACs, FLOPs)",
        )
        want = fm.linear(fin, fout, bias)
        if tuple(map(int, got)) == (want.macs, want.flops):
            continue
        slip = _linear_slips(fin, fout, bias).get(tuple(map(int, got)), "")
        raise ExerciseError(
            f"nn.Linear({fin}, {fout}, bias={bias}) on one vector: expected "
            f"({want.macs} MACs, {want.flops} FLOPs), got {got}."
            + (
                f" Looks like {slip}."
                if slip
                else " Count per output: n multiplications, n - 1 additions, + 1 for a bias."
            )
        )
    return ok(
        "linear_counts: 3x3 matrix x 3-vector = 9 MACs, 15 FLOPs, and "
        f"{len(LINEAR_CASES) - 1} more layers right"
    )


# --- Exercise 2.2: a depthwise-separable block by hand ---------------------------------------

DW_CASES = [(2, 3, 4, 4, 3, 1), (8, 16, 8, 8, 3, 2), (32, 64, 56, 56, 3, 1), (16, 24, 14, 14, 5, 2)]


def dw_separable_reference(cin: int, cout: int, h: int, w: int, k: int = 3, stride: int = 1) -> int:
    """MACs of a k x k depthwise conv (padding k//2, no bias) then a 1x1 conv (no bias)."""
    dw = fm.conv2d(cin, cin, h, w, k, stride, k // 2, groups=cin)
    ho, wo = dw.out_shape[-2:]
    return dw.macs + fm.conv2d(cin, cout, ho, wo, 1).macs


def _dw_slips(cin: int, cout: int, h: int, w: int, k: int, stride: int) -> dict[int, str]:
    ho, wo = fm.conv_out(h, k, stride, k // 2), fm.conv_out(w, k, stride, k // 2)
    dw, pw = cin * ho * wo * k * k, cin * cout * ho * wo
    return {
        cin * cin * ho * wo * k * k + pw: "you priced the depthwise conv like a full conv "
        "(every output sees all cin inputs); in a depthwise "
        "conv each output sees ONE input channel",
        dw: "you left out the 1x1 pointwise conv",
        pw: "you left out the depthwise conv",
        cin * h * w * k * k + cin * cout * h * w: "you ignored the stride: the outputs are "
        f"{ho}x{wo}, not {h}x{w}",
        dw + cin * cout * h * w: "the pointwise conv runs on the depthwise conv's OUTPUT "
        f"({ho}x{wo}), not on the input size",
        2 * (dw + pw): "that is about 2x: you counted FLOPs (multiply AND add), not MACs",
        cout * ho * wo * k * k + pw: "the depthwise conv has cin output channels, not cout",
    }


def check_dw_separable(fn: Callable[..., int]) -> str:
    """``fn(cin, cout, h, w, k, stride) -> MACs`` of a depthwise-separable block."""
    for case in DW_CASES:
        got = call(fn, *case, name="dw_separable_macs")
        require(
            isinstance(got, int | float) and not isinstance(got, bool),
            f"dw_separable_macs{case} returned {got!r}: return a number of MACs",
        )
        want = dw_separable_reference(*case)
        if close(got, want, rel=0, abs_tol=0.5):
            continue
        cin, cout, h, w, k, s = case
        slip = _dw_slips(*case).get(round(got), "")
        raise ExerciseError(
            f"dw_separable_macs(cin={cin}, cout={cout}, h={h}, w={w}, k={k}, stride={s}): "
            f"expected {want}, got {got}."
            + (
                f" It looks like {slip}."
                if slip
                else " Count the two convs separately: depthwise = "
                "cin*Ho*Wo*k*k, pointwise = cin*cout*Ho*Wo."
            )
        )
    cin, cout, h, w, k, s = DW_CASES[2]
    full = fm.conv2d(cin, cout, h, w, k, s, k // 2).macs
    return ok(
        f"dw_separable_macs right on {len(DW_CASES)} blocks; at cin={cin}, cout={cout}, "
        f"{h}x{w} it costs {dw_separable_reference(*DW_CASES[2]) / full:.3f} of a full "
        f"3x3 conv (1/cout + 1/k^2 = {1 / cout + 1 / k**2:.3f})"
    )


# --- Exercise 2.3: predict two counters before running them ----------------------------------


def toy_model() -> nn.Module:
    """The exercise's model: conv -> BN -> hardswish -> global pool -> linear."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 6),
    )


TOY_INPUT = (3, 8, 8)


def toy_contributions() -> dict[str, tuple[int, int]]:
    """Per layer of :func:`toy_model`: (our analytic MACs, the official ptflops MACs)."""
    n = 8 * 8 * 8  # elements of the 8 x 8 x 8 feature map
    conv = fm.conv2d(3, 8, 8, 8, 3, padding=1).macs
    return {
        "conv": (conv, conv),
        "batchnorm": (n, 2 * n),
        "hardswish": (2 * n, 0),
        "global pool": (8, n),
        "linear": (8 * 6 + 6, 8 * 6 + 6),
    }


def _explain(counter: str, diff: int) -> str:
    """Name the layer that explains ``diff`` = measured - predicted for one counter."""
    col = 0 if counter == "analytic" else 1
    other_name = "official" if col == 0 else "analytic"
    parts = toy_contributions()
    for layer, both in parts.items():  # priced by the other counter's rule?
        if diff and both[col] - both[1 - col] == diff:
            return (
                f"you priced the {layer} the way the {other_name} counter does "
                f"({both[1 - col]} instead of {both[col]})"
            )
    for layer, both in parts.items():  # a layer left out, or counted twice?
        if both[col] and diff == both[col]:
            return f"your {counter} number is short of exactly the {layer}'s {both[col]} MACs"
        if both[col] and -diff == both[col]:
            return f"your {counter} number has the {layer}'s {both[col]} MACs once too often"
    table = ", ".join(f"{k} {v[col]}" for k, v in parts.items())
    return f"off by {diff}; the {counter} counter's layers: {table}"


def check_counter_prediction(prediction: dict[str, int]) -> str:
    """Compare predicted MACs of :func:`toy_model` with both counters, run here and now."""
    from ..complexity import count_layers, official_macs

    require(
        isinstance(prediction, dict) and {"analytic", "official"} <= set(prediction),
        "prediction must be a dict with the keys 'analytic' and 'official' (numbers)",
    )
    model = toy_model()
    measured = {
        "analytic": count_layers(model, TOY_INPUT).attrs["total"]["macs"],
        "official": official_macs(model, TOY_INPUT),
    }
    wrong = [
        f"{k}: predicted {prediction[k]}, measured {v} - {_explain(k, v - prediction[k])}"
        for k, v in measured.items()
        if not close(prediction[k], v, rel=0, abs_tol=0.5)
    ]
    if wrong:
        raise ExerciseError("Not quite. " + "; ".join(wrong))
    return ok(
        f"both right: analytic {measured['analytic']}, official {measured['official']} "
        f"- nearly equal totals, but for different reasons (BN, hardswish and the pool "
        f"are priced differently)"
    )


# --- Exercise 2.5: where does the activation memory peak? (predict before you run) ------------


def peak_toy() -> nn.Module:
    """Exercise 2.5's chain: a stem, then an inverted-residual block (expand, depthwise,
    project), then the head."""
    from collections import OrderedDict

    return nn.Sequential(
        OrderedDict(
            stem=nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
            expand=nn.Conv2d(8, 48, 1, bias=False),
            depthwise=nn.Conv2d(48, 48, 3, padding=1, groups=48, bias=False),
            project=nn.Conv2d(48, 16, 1, bias=False),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            classifier=nn.Linear(16, 6),
        )
    )


PEAK_INPUT = (3, 32, 32)


def _peak_slips(df, peak: dict) -> dict[int, str]:
    """Wrong element counts a student is likely to give, with what each means."""
    modules = df[df.in_numel > 0]
    outs = [int(PEAK_INPUT[0] * PEAK_INPUT[1] * PEAK_INPUT[2])] + [
        int(v) for v in modules.out_numel
    ]
    return {
        max(outs): "that is the largest single activation; while a layer runs, its input "
        "and its output are both in memory",
        sum(outs): "that is every activation added up; eager PyTorch frees a layer's input "
        "once nothing needs it any more, so only neighbours coexist",
        4 * peak["elements"]: "that is the peak in bytes (float32); give it in elements",
        peak["output"]: "that is only the output of the layer at the peak; add its input",
    }


def check_peak_prediction(prediction: dict) -> str:
    """Compare a predicted peak (layer name and elements) of :func:`peak_toy` with the
    counter's table, measured here and now."""
    from ..complexity import count_layers
    from ..complexity.analytic import peak_activation

    require(
        isinstance(prediction, dict) and {"layer", "elements"} <= set(prediction),
        "prediction must be a dict with the keys 'layer' (a layer's name) and 'elements'",
    )
    df = count_layers(peak_toy(), PEAK_INPUT)
    peak = peak_activation(df)
    names = [n for n in df.name if n]
    require(
        prediction["layer"] in names,
        f"{prediction['layer']!r} is not a layer of the toy; its layers: {names}",
    )
    got = prediction["elements"]
    require(
        isinstance(got, int | float) and not isinstance(got, bool),
        f"prediction['elements'] is {got!r}: give a number of elements",
    )
    if not close(got, peak["elements"], rel=0, abs_tol=0.5):
        slip = _peak_slips(df, peak).get(round(got) if close(got, round(got)) else -1, "")
        raise ExerciseError(
            f"peak activation: you predicted {got} elements, the counter measures "
            f"{peak['elements']}."
            + (f" It looks like {slip}." if slip else "")
            + " For each layer add the elements it reads to the elements it writes."
        )
    if prediction["layer"] != peak["name"]:
        r = df[df.name == prediction["layer"]].iloc[0]
        raise ExerciseError(
            f"the number is right but not the layer: {prediction['layer']} reads "
            f"{int(r.in_numel)} and writes {int(r.out_numel)} elements "
            f"({int(r.in_numel + r.out_numel)} together). Which layer reaches your number?"
        )
    return ok(
        f"right: the peak is at {peak['name']} ({peak['input']} in + {peak['output']} out = "
        f"{peak['elements']} elements, {peak['bytes'] / 1024:.0f} KiB in float32), not at the "
        "layer with the largest output alone"
    )


# --- Exercise 2.4: the width at which a 1x1 convolution becomes compute-bound ---------------

RIDGE_CASES = [(14, 14, 5.0), (7, 7, 2.0), (56, 56, 10.0), (28, 28, 1.5), (2, 2, 5.0)]


def ridge_width_reference(h: int, w: int, ridge: float, limit: int = 100_000) -> int | None:
    """Smallest c whose bias-free 1x1 conv c -> c on h x w (float32) does >= ``ridge`` MACs
    per byte moved, found by trying every c with :mod:`..complexity.formulas`."""
    from ..complexity import formulas as fm

    if fm.arithmetic_intensity(fm.conv2d(limit, limit, h, w, 1), 4) < ridge:
        return None
    return next(
        c for c in range(1, limit) if fm.arithmetic_intensity(fm.conv2d(c, c, h, w, 1), 4) >= ridge
    )


def _ridge_slips(h: int, w: int, ridge: float) -> dict[int | None, str]:
    """Answers of wrong intensity formulas, searched the same way, with what each means."""
    hw = h * w

    def first(intensity) -> int | None:
        return next((c for c in range(1, 20_000) if intensity(c) >= ridge), None)

    return {
        first(lambda c: hw * c * c / (4 * 2 * hw * c)): "your memory traffic leaves out the "
        "c x c weights (mem = hw(c1 + c2) + c1 c2)",
        first(lambda c: hw * c * c / (2 * hw * c + c * c)): "that is MACs per ELEMENT moved; "
        "a float32 element is 4 bytes",
        first(lambda c: 2 * hw * c * c / (4 * (2 * hw * c + c * c))): "you counted FLOPs "
        "(2 per multiply-add), not MACs",
    }


def check_ridge_width(fn: Callable[[int, int, float], int | None]) -> str:
    """``fn(h, w, ridge) -> c`` (or None when no width gets there), checked on five maps."""
    for h, w, ridge in RIDGE_CASES:
        got = call(fn, h, w, ridge, name="ridge_width")
        want = ridge_width_reference(h, w, ridge)
        if want is None:
            require(
                got is None,
                f"ridge_width({h}, {w}, {ridge}) returned {got!r}, but no width reaches "
                f"{ridge} MACs/byte on a {h}x{w} map: as c grows the intensity only approaches "
                f"hw/4 = {h * w / 4} (the weights dominate). Return None there.",
            )
            continue
        require(
            isinstance(got, int) and not isinstance(got, bool),
            f"ridge_width({h}, {w}, {ridge}) returned {got!r}: return a whole channel count",
        )
        if got == want:
            continue
        slip = _ridge_slips(h, w, ridge).get(got, "")
        raise ExerciseError(
            f"ridge_width({h}, {w}, {ridge}): expected {want} channels, got {got}."
            + (f" It looks like {slip}." if slip else "")
            + " Intensity = MACs / (4 bytes x (input + weights + output elements)); find the "
            "smallest c where it reaches the ridge."
        )
    return ok(
        f"ridge_width right on {len(RIDGE_CASES)} maps: the smaller the map, the wider a 1x1 "
        "convolution must be before the arithmetic units, not the memory, limit it"
    )


# --- The design task: as many MACs, less time ---------------------------------------------------

DESIGN_SIZE = 156
DESIGN_REFERENCE = "mobilenet_v3_small w0.5"
DESIGN_SHARE = 0.75  # spend at least this share of the reference's MACs and parameters
DESIGN_SPEEDUP = 3.0


def design_reference() -> nn.Module:
    """The design task's reference: torchvision's MobileNetV3-small at half width, 6 classes."""
    from ..complexity.study import zoo

    return zoo()[DESIGN_REFERENCE]().eval()


def _design_budget(model: nn.Module, ref: nn.Module) -> dict:
    """Shape, visibility, MACs and peak activation of a design against the reference."""
    import torch

    from ..complexity import check_countable, count_layers, official_macs
    from ..complexity.analytic import peak_activation

    size = (3, DESIGN_SIZE, DESIGN_SIZE)
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, *size))
    require(
        tuple(out.shape) == (1, 6),
        f"your network maps one {size} image to {tuple(out.shape)}; it must give 6 scores",
    )
    try:
        check_countable(model)
    except ValueError as err:
        raise ExerciseError(f"a layer hides from the official counter: {err}") from None
    macs, ref_macs = official_macs(model, DESIGN_SIZE), official_macs(ref, DESIGN_SIZE)
    require(
        DESIGN_SHARE * ref_macs <= macs <= ref_macs,
        f"official MACs {macs:,}: the task asks for {DESIGN_SHARE * ref_macs:,.0f} to "
        f"{ref_macs:,} (the reference's) - spend the budget, but not more",
    )
    params = sum(p.numel() for p in model.parameters())
    ref_params = sum(p.numel() for p in ref.parameters())
    require(
        params >= DESIGN_SHARE * ref_params,
        f"{params:,} parameters: keep at least {DESIGN_SHARE * ref_params:,.0f} "
        f"({DESIGN_SHARE:.0%} of the reference's {ref_params:,}); a network with nothing to "
        "learn is fast but useless",
    )
    peak = peak_activation(count_layers(model, size))["elements"]
    ref_peak = peak_activation(count_layers(ref, size))["elements"]
    require(
        peak <= ref_peak,
        f"peak activation {peak:,} elements, the reference's is {ref_peak:,}: shrink the largest "
        "input + output pair (downsample earlier, or fewer channels at full resolution)",
    )
    return {
        "macs": macs,
        "ref macs": ref_macs,
        "params": params,
        "ref params": ref_params,
        "peak": peak,
        "ref peak": ref_peak,
    }


def check_design(model: nn.Module, repeats: int = 5, runs: int = 10, threads: int = 1) -> str:
    """Grade the design task by measuring it: 6 outputs at 156 px, every layer visible to
    the official counter, official MACs between ``DESIGN_SHARE`` of the reference's and the
    reference's, at least that share of its parameters, a peak activation no larger than
    its, and a median batch-1 latency at least ``DESIGN_SPEEDUP`` times lower than its (the
    two timed in turns, after an untimed turn that warms both up)."""
    from ..complexity import time_in_turns

    ref = design_reference()
    budget = _design_budget(model, ref)
    size = (3, DESIGN_SIZE, DESIGN_SIZE)
    pair = {"reference": (ref, size), "yours": (model, size)}
    time_in_turns(pair, 1, 1, 3, threads=threads)  # warm-up, untimed
    turns, lat = time_in_turns(pair, repeats, runs, 3, threads=threads)
    med = turns.groupby("model")["median ms"].median()
    speedup = med["reference"] / med["yours"]
    require(
        speedup >= DESIGN_SPEEDUP,
        f"measured: yours {med['yours']:.2f} ms, the reference {med['reference']:.2f} ms "
        f"(median of {repeats} turns x {runs} runs, {lat.threads} thread): {speedup:.2f}x, the "
        f"task asks for {DESIGN_SPEEDUP}x. Fewer, larger layers do more MACs per byte moved",
    )
    return ok(
        f"design accepted: {budget['macs']:,} official MACs (reference {budget['ref macs']:,}), "
        f"{budget['params']:,} parameters (reference {budget['ref params']:,}), peak "
        f"activation {budget['peak']:,} elements (reference {budget['ref peak']:,}), "
        f"{med['yours']:.2f} ms vs {med['reference']:.2f} ms: {speedup:.1f}x faster "
        f"[{lat.device}, {lat.threads} thread, torch {lat.torch}]"
    )
