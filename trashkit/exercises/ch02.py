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


# --- Exercise 2.4: which model pays most per MAC? (predict before the latency study) ---------


def record_slowest_guess(prediction: str) -> str:
    """Check that the guess names a model of the study's zoo, before the study runs."""
    from ..complexity.study import zoo

    names = list(zoo())
    require(
        prediction in names, f"{prediction!r} is not a model of the study; choose one of {names}"
    )
    return ok(f"prediction recorded: {prediction}; the study below will tell")


def check_slowest_prediction(prediction: str, study, size: int) -> str:
    """Compare a predicted model name with the study's most expensive MACs at ``size``.

    Latency is noisy, so a wrong guess is explained, not rejected; only a name that is not in
    the study is an error.
    """
    g = study[study["size"] == size].sort_values("vs size median", ascending=False)
    names = list(g["model"])
    require(
        prediction in names, f"{prediction!r} is not a model of the study; choose one of {names}"
    )
    top = g.iloc[0]
    mine = g[g["model"] == prediction].iloc[0]
    rank = names.index(prediction) + 1
    if prediction == top["model"]:
        return ok(
            f"right: {prediction} pays {top['vs size median']:.2f}x the typical price "
            f"per MAC at {size}px ({top['ms per 100M MACs']:.1f} ms per 100M MACs)"
        )
    return ok(
        f"measured: {top['model']} pays the most per MAC ({top['vs size median']:.2f}x "
        f"the median at {size}px); your {prediction} ranks {rank} of {len(names)} at "
        f"{mine['vs size median']:.2f}x. Look at what {top['model']} is made of: many "
        "small layers and element-wise work do little arithmetic per byte moved"
    )
