"""Chapter 8 (metric learning): checks that say what is wrong, not just "False"."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .core import call, close, ok, require

_CASES = ((0.6, 4.0, 0.5), (0.8, 2.276, 0.1), (-0.3, 16.0, 0.3), (0.0, 1.0, 0.2))


def _arcface(cos: float, s: float, m: float) -> float:
    return s * math.cos(math.acos(cos) + m)


def _diagnose_logit(got: float, cos: float, s: float, m: float) -> str:
    """Name the usual slip behind a wrong ArcFace logit."""
    theta = math.acos(cos)
    slips = {
        "s * (cos(theta) - m): that is CosFace's additive *cosine* margin, ArcFace adds "
        "m to the angle": s * (cos - m),
        "cos(theta + m) without the scale s": math.cos(theta + m),
        "s * cos(theta): the margin is missing": s * cos,
        "s * cos(theta * m): ArcFace adds the margin to the angle, it does not "
        "multiply it (that is SphereFace)": s * math.cos(theta * m),
        "s * cos(theta - m): the margin makes the true class *harder*, so the angle grows": s
        * math.cos(theta - m),
    }
    for why, value in slips.items():
        if close(got, value, rel=1e-6, abs_tol=1e-6):
            return f"you computed {why}"
    return "compute theta = acos(cos_true) first, then s * cos(theta + m)"


def check_arcface_logit(arcface_logit) -> str:
    """``arcface_logit(cos_true, s, m)`` must return ``s * cos(acos(cos_true) + m)``."""
    for cos, s, m in _CASES:
        got = call(arcface_logit, cos, s, m, name="arcface_logit")
        want = _arcface(cos, s, m)
        require(
            close(got, want, rel=1e-6, abs_tol=1e-9),
            f"arcface_logit({cos}, {s}, {m}) returned {got!r}, expected {want:.6f}: "
            f"{_diagnose_logit(float(got), cos, s, m)}.",
        )
    return ok(
        f"arcface_logit matches s*cos(theta + m) on {len(_CASES)} cases, "
        f"e.g. cos 0.6, s 4, m 0.5 -> {_arcface(0.6, 4.0, 0.5):.4f}"
    )


def check_margin_prediction(loss_goes: str, prediction_changes: bool, measured: dict) -> str:
    """Predict before you run: the margin raises the *training loss* of a correctly
    classified image, but the model's *prediction* does not change (the margin lives in the
    loss; the network outputs s*cos without it)."""
    require(
        loss_goes in ("up", "down", "same"),
        f"loss_goes must be 'up', 'down' or 'same' (got {loss_goes!r})",
    )
    require(
        isinstance(prediction_changes, bool),
        f"prediction_changes must be True or False (got {prediction_changes!r})",
    )
    lines = [
        f"measured: loss {measured['loss_without']:.4f} without the margin, "
        f"{measured['loss_with']:.4f} with it; prediction "
        f"{'changed' if measured['prediction_changed'] else 'did not change'}"
    ]
    actual = "up" if measured["loss_with"] > measured["loss_without"] else "down"
    if loss_goes != actual:
        lines.append(
            f"the loss went {actual}, not {loss_goes}: the margin lowers the true "
            "class's logit (s*cos(theta + m) < s*cos(theta)), so its probability "
            "falls and -log p rises"
        )
    if prediction_changes != measured["prediction_changed"]:
        lines.append(
            "the prediction is model(x).argmax(): the network returns s*cos(theta) "
            "for every class in train and eval mode alike; the margin is applied "
            "only inside ArcFaceLoss, where the label is known"
        )
    require(len(lines) == 1, "; ".join(lines) + ".")
    return ok(lines[0] + " — as you predicted.")


def _unit(degrees) -> torch.Tensor:
    rad = torch.tensor([math.radians(d) for d in degrees])
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def check_nearest_class_mean(nearest_class_mean) -> str:
    """``nearest_class_mean(train_vectors, train_labels, queries, n_classes)`` -> class per
    query: the class whose (re-normalised) mean training embedding has the largest cosine."""
    # 2-d unit vectors at these angles: class 1 is spread widely, so its mean is short (0.45)
    train = _unit([-5, 0, 5, 10, 90, 170, 265, 270, 275])
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    queries = _unit([50, 0, 130, 270, 80, 200])
    got = np.asarray(call(nearest_class_mean, train, labels, queries, 3, name="nearest_class_mean"))
    sums = torch.zeros(3, 2).index_add_(0, torch.as_tensor(labels), train)
    want = (queries @ F.normalize(sums, dim=1).T).argmax(1).numpy()
    require(
        got.shape == want.shape,
        f"nearest_class_mean returned shape {got.shape}, expected one class per query {want.shape}",
    )
    if not (got == want).all():
        raw = (queries @ (sums / 3).T).argmax(1).numpy()
        hint = (
            "your predictions match the cosine to the *un-normalised* means: a mean of "
            "unit vectors is shorter than 1 (0.45 for the widely spread class 1 here), so "
            "normalise it before comparing"
            if (raw == got).all()
            else "average the training vectors of each class, normalise each mean to "
            "length 1, and take the argmax of queries @ means.T"
        )
        require(
            False,
            f"for queries at 50, 0, 130, 270, 80, 200 degrees you predicted "
            f"{got.tolist()}, expected {want.tolist()}: {hint}.",
        )
    return ok(
        f"nearest class mean agrees on all {len(want)} queries (the query at 50 degrees "
        "belongs to the spread class 1 only once its mean is normalised)"
    )


def check_search_cost(macs_factor: float, latency_factor: float, measured: dict) -> str:
    """Predict before you run: going from ``n`` to ``10 n`` stored embeddings multiplies the
    brute-force search's MACs by exactly 10 (checked); its measured time usually by less at
    small ``n`` (fixed per-call overheads) and by about 10 once the search is a large matrix
    product. The time depends on the machine, so that part is explained, not graded."""
    require(
        close(macs_factor, measured["macs_ratio"], rel=0.05),
        f"your MACs factor {macs_factor} is off (measured x{measured['macs_ratio']:.1f}): "
        f"the search computes one {measured['dim']}-long dot product per stored vector, "
        "n x d MACs, so 10 times the vectors is 10 times the MACs.",
    )
    ratio = measured["time_ratio"]
    verdict = "close to" if 0.5 * ratio <= latency_factor <= 2 * ratio else "more than 2x away from"
    why = (
        "time grew more slowly than MACs: at this size a call is dominated by fixed costs "
        "(Python, dispatch, top-k), not by the multiply-accumulates"
        if ratio < 7
        else "time grew about as fast as MACs, or faster: the stored vectors "
        f"({measured['n_large'] * measured['dim'] * 4 / 1e6:.0f} MB of float32) outgrow a "
        "core's private caches (typically 0.5-2 MB), so every query streams them from a "
        "slower level of memory"
    )
    return ok(
        f"MACs x{measured['macs_ratio']:.0f} as predicted; your time factor "
        f"{latency_factor} is {verdict} the measured x{ratio:.1f} "
        f"({measured['n_small']:,} -> {measured['n_large']:,} stored): {why}. MACs "
        "predict time only loosely (chapter 2)."
    )
